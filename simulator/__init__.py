"""The simulated fleet: agents with behaviour profiles, a resource manager, a chaos injector
and ground truth, described by scenario files and run against Kafka (`chorus simulate`)."""

from .chaos import MODES
from .engine import Simulation, TickBatch
from .errors import BrokerUnreachable, ScenarioError, SimulatorError
from .kafka_io import FleetLink
from .profiles import PROFILES, Profile
from .resources import Claim, Lease, ResourceManager
from .runner import Progress, RunSummary, run
from .scenario import (
    AgentsSpec,
    ChaosSpec,
    ResourceSpec,
    Scenario,
    agent_id,
    builtin_scenarios,
    load_scenario,
    parse_scenario,
)

__all__ = [
    "MODES",
    "PROFILES",
    "AgentsSpec",
    "BrokerUnreachable",
    "ChaosSpec",
    "Claim",
    "FleetLink",
    "Lease",
    "Profile",
    "Progress",
    "ResourceManager",
    "ResourceSpec",
    "RunSummary",
    "Scenario",
    "ScenarioError",
    "Simulation",
    "SimulatorError",
    "TickBatch",
    "agent_id",
    "builtin_scenarios",
    "load_scenario",
    "parse_scenario",
    "run",
]
