"""The topic registry: the single source of truth for every topic Chorus uses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .envelope import Event
from .events import (
    Anomaly,
    BaselineSnapshot,
    ConflictPrediction,
    DeadLetter,
    Diagnosis,
    GroundTruth,
    HealingAction,
    HealingOutcome,
    ImmuneMemory,
    Intention,
    IntentionHeld,
    OperatorCommand,
    QuarantineDecision,
    TrustChange,
    Vitals,
)

DEFAULT_PARTITIONS = 8
# Part of the contract: keys are placed with murmur2, as Kafka's Java client and aiokafka (so Faust)
# do. librdkafka's default (crc32) would put one agent on different partition numbers in different
# topics and break co-partitioning. confluent-kafka producers set {"partitioner": PARTITIONER}.
PARTITIONER = "murmur2_random"
WEEK_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key_field: str
    model: type[Event]
    description: str
    partitions: int = DEFAULT_PARTITIONS
    replication: int = 1
    cleanup_policy: Literal["delete", "compact"] = "delete"
    retention_ms: int = WEEK_MS
    # LogAppendTime on the topics agents write: the record timestamp is then the broker's clock,
    # which the ingress rule on event time compares occurred_at with (a producer chooses CreateTime).
    timestamp_type: Literal["CreateTime", "LogAppendTime"] = "CreateTime"

    def config(self) -> dict[str, str]:
        """Broker-side topic configuration."""
        cfg = {"cleanup.policy": self.cleanup_policy, "message.timestamp.type": self.timestamp_type}
        if self.cleanup_policy == "delete":
            cfg["retention.ms"] = str(self.retention_ms)
        return cfg

    def key_of(self, event: Event) -> bytes:
        return str(getattr(event, self.key_field)).encode()


INTENTIONS = TopicSpec(
    "agent.intentions",
    "agent_id",
    Intention,
    "What agents intend to do with resources.",
    timestamp_type="LogAppendTime",
)
VITALS = TopicSpec(
    "agent.vitals", "agent_id", Vitals, "Agents' health samples, one per tick.", timestamp_type="LogAppendTime"
)
ADMITTED = TopicSpec(
    "agent.intentions.admitted", "agent_id", Intention, "Intentions the quarantine gate let through, in per-agent order."
)
HELD = TopicSpec(
    "agent.intentions.held",
    "agent_id",
    IntentionHeld,
    "The gate's verdict on each intention it held back (its agent is quarantined).",
)
ANOMALIES = TopicSpec("immune.anomalies", "agent_id", Anomaly, "Sustained deviations from an agent's baseline.")
BASELINES = TopicSpec(
    "immune.baselines", "agent_id", BaselineSnapshot, "Latest learned baseline per agent.", cleanup_policy="compact"
)
TRUST = TopicSpec("immune.trust", "agent_id", TrustChange, "Every trust score change, with reason and cause.")
CONFLICTS = TopicSpec("immune.conflicts", "resource", ConflictPrediction, "Predicted conflicts per resource and window.")
QUARANTINE = TopicSpec("immune.quarantine", "agent_id", QuarantineDecision, "Quarantine, release and pending decisions.")
# Commands expire by the broker's clock: a producer must not be able to backdate a replayed one.
COMMANDS = TopicSpec(
    "immune.commands",
    "agent_id",
    OperatorCommand,
    "Signed operator overrides from the chorus CLI.",
    timestamp_type="LogAppendTime",
)
DEADLETTER = TopicSpec(
    "immune.deadletter", "source_topic", DeadLetter, "Messages a processor could not use.", retention_ms=4 * WEEK_MS
)
DIAGNOSES = TopicSpec("immune.diagnoses", "agent_id", Diagnosis, "What the healer thinks ails a quarantined agent.")
HEALING = TopicSpec(
    "immune.healing", "agent_id", HealingAction, "Healing commands to agents, pending approvals, exhausted policies."
)
RECOVERY = TopicSpec(
    "immune.recovery", "agent_id", HealingOutcome, "Verified cures and failed healing actions; quarantine releases on cures."
)
MEMORY = TopicSpec(
    "immune.memory", "condition", ImmuneMemory, "What healing learned per condition.", cleanup_policy="compact"
)
TRUTH = TopicSpec("sim.truth", "agent_id", GroundTruth, "The simulator's infections; read by evaluation only.")

REGISTRY: tuple[TopicSpec, ...] = (
    INTENTIONS,
    VITALS,
    ADMITTED,
    HELD,
    ANOMALIES,
    BASELINES,
    TRUST,
    CONFLICTS,
    QUARANTINE,
    COMMANDS,
    DEADLETTER,
    TRUTH,
    DIAGNOSES,
    HEALING,
    RECOVERY,
    MEMORY,
)

_BY_NAME = {spec.name: spec for spec in REGISTRY}


def topic(name: str) -> TopicSpec:
    """The spec of a registered topic; KeyError names the known ones."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown topic {name!r}; known: {', '.join(_BY_NAME)}") from None
