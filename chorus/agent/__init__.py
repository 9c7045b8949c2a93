"""The client SDK for real agents: report intentions and vitals to Chorus, await the gate, obey quarantine.

Importable on its own: it needs the Kafka client, the schemas and the settings model, nothing
of the CLI. See docs/agents.md for the guide and docs/wire-contract.md for other languages.

    from chorus.agent import Agent, Quarantined

    async with Agent("worker-7") as agent:
        try:
            async with agent.hold("gpu-pool", 2, hold_s=30):
                ...
        except Quarantined as held:
            ...
"""

from .agent import Agent
from .connection import Connection
from .errors import AgentError, BufferFull, Closed, DeliveryFailed, GateTimeout, Quarantined, Undelivered
from .follow import AgentStatus, Follower
from .meter import CallStats, Meter, Sample
from .sync import SyncAgent

__all__ = [
    "Agent",
    "AgentError",
    "AgentStatus",
    "BufferFull",
    "CallStats",
    "Closed",
    "Connection",
    "DeliveryFailed",
    "Follower",
    "GateTimeout",
    "Meter",
    "Quarantined",
    "Sample",
    "SyncAgent",
    "Undelivered",
]
