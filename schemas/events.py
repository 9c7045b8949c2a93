"""One pydantic model per event. These are the product's public contracts: change
them only compatibly (new optional fields), or bump `schema_version`."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .envelope import Event, Id, Priority, Probability, Score, UtcDatetime

NonNegative = Annotated[float, Field(ge=0.0)]
Positive = Annotated[float, Field(gt=0.0)]

Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[Severity, ...] = ("low", "medium", "high", "critical")

Metric = Literal["latency_ms", "error_rate", "queue_depth", "cpu", "requests_per_s"]

InfectionMode = Literal["hoarder", "flood", "latency", "errors", "deceptive", "defiant"]


class _Part(BaseModel):
    """A nested part of an event: strict like the envelope."""

    model_config = ConfigDict(extra="forbid", frozen=True)


# --- what agents publish -------------------------------------------------------------


class Intention(Event):
    """An agent announces that it wants to acquire, or is releasing, an amount of a resource."""

    event_type: Literal["intention"] = "intention"
    agent_id: Id
    action: Literal["acquire", "release"]
    resource: Id
    amount: Positive = Field(description="Units of the resource's capacity.")
    priority: Priority = 5
    hold_s: Positive | None = Field(default=None, description="How long the agent means to hold an acquisition.")


class Vitals(Event):
    """An agent's health sample for one tick."""

    METRICS: ClassVar[tuple[Metric, ...]] = ("latency_ms", "error_rate", "queue_depth", "cpu", "requests_per_s")

    event_type: Literal["vitals"] = "vitals"
    agent_id: Id
    latency_ms: NonNegative = Field(description="Mean latency of the agent's calls in the tick, ms.")
    error_rate: Probability = Field(description="Share of the tick's calls that failed.")
    queue_depth: NonNegative = Field(description="Work waiting or in flight (the SDK: most calls in flight at once).")
    cpu: Probability = Field(description="CPU use as a share of the machine (0-1).")
    requests_per_s: NonNegative = Field(description="Calls per second over the tick.")
    upstream_degraded: Probability | None = Field(
        default=None,
        description="How degraded the agent's upstream dependencies look to it (0 healthy, 1 down); unset if unknown.",
    )


# --- what the processors decide -------------------------------------------------------


class Anomaly(Event):
    """A sustained deviation of one agent's metric from its learned baseline."""

    event_type: Literal["anomaly"] = "anomaly"
    agent_id: Id
    metric: Metric
    value: float
    mean: float
    stddev: NonNegative
    zscore: float
    severity: Severity
    sustained_samples: int = Field(ge=1, description="Consecutive deviating samples that raised it.")
    surprise: NonNegative | None = Field(
        default=None,
        description="-log10 of the probability of a value at least this extreme under the learned model: "
        "the severity is banded from it (None from producers that do not compute it).",
    )
    upstream_degraded: Probability | None = Field(
        default=None, description="The sample's upstream_degraded: a symptom a degraded upstream may explain."
    )


class MetricBaseline(_Part):
    count: int = Field(ge=0)
    mean: float
    stddev: NonNegative


class BaselineSnapshot(Event):
    """An agent's learned baselines; the compacted topic keeps the latest per agent."""

    event_type: Literal["baseline_snapshot"] = "baseline_snapshot"
    agent_id: Id
    metrics: dict[Metric, MetricBaseline]
    frozen: bool = Field(description="True while the agent is anomalous: its baseline is not learning.")
    anomalous_metrics: tuple[Metric, ...] = ()
    relearned: tuple[Metric, ...] = Field(
        default=(), description="Metrics whose baseline this sample restarted after a lasting shift (new normal)."
    )


# "attributed": an anomaly the fleet's state explains (contention, a degraded upstream); it costs nothing
# and the change (before == after) says who or what was blamed instead.
TrustReason = Literal["anomaly", "conflict", "hoarding", "good_behaviour", "released", "operator", "attributed"]


class TrustChange(Event):
    """A change of an agent's trust score (0 to 100) with its reason and cause."""

    event_type: Literal["trust_change"] = "trust_change"
    agent_id: Id
    before: Score
    after: Score
    reason: TrustReason
    detail: str = ""
    signed_by: Id | None = Field(default=None, description="Key id of the operator whose signed command caused it.")

    @property
    def delta(self) -> float:
        return self.after - self.before


class AffectedAgent(_Part):
    agent_id: Id
    demand: NonNegative
    share: Probability = Field(description="The agent's share of the window's total demand.")
    fair_share: Probability
    priority: Priority
    aggressiveness: Probability


class Equilibrium(_Part):
    """The game-theoretic reading of the claim (hawk/dove by default)."""

    model: str = "hawk_dove"
    resource_value: NonNegative
    conflict_cost: NonNegative
    p_escalate: Probability = Field(description="Mixed Nash equilibrium probability of escalating (playing hawk).")
    p_deadlock: Probability
    p_starvation: Probability


FailureMode = Literal["none", "contention", "starvation", "deadlock", "hoarding"]


class ConflictPrediction(Event):
    """A predicted conflict over one resource in one event-time window."""

    event_type: Literal["conflict_prediction"] = "conflict_prediction"
    resource: Id
    window_start: UtcDatetime
    window_end: UtcDatetime
    capacity: Positive
    demand: NonNegative
    risk: Probability
    confidence: Probability
    failure_mode: FailureMode
    affected: tuple[AffectedAgent, ...] = ()
    most_aggressive: Id | None = None
    equilibrium: Equilibrium | None = None
    recommended_actions: tuple[str, ...] = ()
    source: Literal["fast_path", "gemini"] = "fast_path"
    analysis: str | None = Field(default=None, description="Gemini's analysis, on enriched predictions only.")

    @model_validator(mode="after")
    def _window_ordered(self) -> Self:
        if self.window_end < self.window_start:
            raise ValueError("window_end is before window_start")
        return self


QuarantineAction = Literal["quarantine", "release", "pending_approval"]
QuarantineReason = Literal[
    "low_trust", "conflict_aggressor", "critical_anomaly", "operator", "term_expired", "recovered"
]


class QuarantineDecision(Event):
    """Quarantine or release of one agent, or a quarantine waiting for an operator."""

    event_type: Literal["quarantine_decision"] = "quarantine_decision"
    agent_id: Id
    action: QuarantineAction
    reason: QuarantineReason
    until: UtcDatetime | None = Field(default=None, description="Event time at which the term ends (quarantines).")
    offense_count: int = Field(default=0, ge=0)
    trust: Score | None = None
    detail: str = ""
    signed_by: Id | None = Field(default=None, description="Key id of the operator whose signed command caused it.")


class IntentionHeld(Event):
    """The gate's verdict on an intention it held back because its agent is quarantined.

    Every intention the gate reads gets exactly one verdict: admitted intentions are re-published
    unchanged on `agent.intentions.admitted`, held ones get this event on `agent.intentions.held`
    (same key, so the same partition number), so an agent waiting for its intention's fate reads
    two partitions. Added in schema version 1 as a new topic: nothing existing changed.
    """

    event_type: Literal["intention_held"] = "intention_held"
    agent_id: Id
    intention_id: Id = Field(description="event_id of the held intention.")
    action: Literal["acquire", "release"]
    resource: Id
    decision_id: Id | None = Field(default=None, description="The quarantine decision that holds the agent.")
    reason: QuarantineReason | None = None
    until: UtcDatetime | None = Field(default=None, description="Event time at which the term ends, if it has one.")


class OperatorCommand(Event):
    """An operator's override, written by the `chorus` CLI and signed with the operator's Ed25519 key.

    The signature covers every other field (`occurred_at` is the signing time, `nonce` makes it
    unique); trust and quarantine act only on commands whose signature verifies against a trusted
    key, that are fresh by the broker's clock and whose nonce they have not seen before.
    """

    event_type: Literal["operator_command"] = "operator_command"
    agent_id: Id
    command: Literal["quarantine", "release", "approve", "reject", "set_trust", "heal"]
    trust: Score | None = Field(default=None, description="The new score, for set_trust only.")
    operator: Id
    note: str = ""
    nonce: Id | None = Field(default=None, description="Unique per command: a replayed command is refused.")
    key_id: Id | None = Field(default=None, description="Id of the Ed25519 key that signed the command.")
    signature: str | None = Field(default=None, description="Ed25519 signature, base64, over the canonical bytes.")

    @model_validator(mode="after")
    def _trust_only_for_set_trust(self) -> Self:
        if (self.command == "set_trust") != (self.trust is not None):
            raise ValueError("trust is required for set_trust and not allowed otherwise")
        return self


class DeadLetter(Event):
    """A message a processor could not use, kept whole for an operator."""

    event_type: Literal["dead_letter"] = "dead_letter"
    source_topic: Id
    partition: int = Field(ge=0)
    offset: int = Field(ge=0)
    raw_value_b64: str = Field(
        description="The message value, base64; empty for a null value; only its first bytes when truncated."
    )
    raw_key_b64: str | None = None
    error: str = Field(min_length=1)
    # Added compatibly (optional): a dead letter must stay far below the broker's message size
    # limit, so an oversized value is cut and identified by its length and digest instead.
    raw_value_length: int | None = Field(default=None, ge=0, description="Length of the whole value, in bytes.")
    raw_value_sha256: str | None = Field(default=None, description="SHA-256 (hex) of the whole value.")
    truncated: bool = Field(default=False, description="True when the value or key kept here is only a prefix.")


class GroundTruth(Event):
    """The simulator's record of an infection starting or ending. Only evaluation reads it."""

    event_type: Literal["ground_truth"] = "ground_truth"
    agent_id: Id
    infection_id: Id
    mode: InfectionMode
    phase: Literal["start", "end"]
    scenario: Id
    cured_by: Id | None = Field(
        default=None, description="On an end: the healing action that cured it (None: the schedule ended it)."
    )


# --- healing: diagnosis, actions, verified recovery, immune memory ------------------------

Condition = Literal[
    "resource_hoarding", "request_flood", "latency_fault", "error_burst", "deception", "defiance", "unknown"
]
CONDITIONS: tuple[Condition, ...] = (
    "resource_hoarding", "request_flood", "latency_fault", "error_burst", "deception", "defiance", "unknown"
)
HealingKind = Literal["restart", "reset_state", "throttle", "rollback", "manual"]


class Diagnosis(Event):
    """What the healer thinks is wrong with a quarantined agent, and the evidence (causation_ids)."""

    event_type: Literal["diagnosis"] = "diagnosis"
    agent_id: Id
    condition: Condition
    confidence: Probability
    quarantine_id: Id = Field(description="The quarantine decision this case belongs to.")
    previous: Condition | None = Field(default=None, description="The condition this diagnosis replaces, if any.")
    severe: bool = Field(default=False, description="Severe conditions need an operator's approval before an action.")
    source: Literal["fast_path", "gemini"] = "fast_path"
    detail: str = ""


class HealingAction(Event):
    """A healing command for one agent (issued), one waiting for an operator, or the end of the policy's list."""

    event_type: Literal["healing_action"] = "healing_action"
    agent_id: Id
    condition: Condition
    action: HealingKind
    status: Literal["issued", "pending_approval", "exhausted"]
    attempt: int = Field(ge=1, description="1 for the first action of the case, 2 for the next...")
    diagnosis_id: Id
    deadline: UtcDatetime | None = Field(default=None, description="Event time by which the cure must be verified.")
    operator: Id | None = Field(default=None, description="The operator who approved or ordered it.")
    detail: str = ""


class HealingOutcome(Event):
    """What a healing action achieved: a verified cure (the agent may be released), a failure, or neither."""

    event_type: Literal["healing_outcome"] = "healing_outcome"
    agent_id: Id
    condition: Condition
    action: HealingKind
    outcome: Literal["cured", "failed", "unverified", "rejected"]
    attempt: int = Field(ge=1)
    diagnosis_id: Id
    action_id: Id | None = None
    quarantine_id: Id
    time_to_cure_s: NonNegative | None = Field(default=None, description="Quarantine to verified cure, event time.")
    samples: int = Field(default=0, ge=0, description="Consecutive vitals samples within baseline at the verdict.")
    detail: str = ""


class ActionRecord(_Part):
    action: HealingKind
    tried: int = Field(ge=0)
    cured: int = Field(ge=0)
    failed: int = Field(ge=0)
    mean_time_to_cure_s: NonNegative | None = None


class ImmuneMemory(Event):
    """What healing has learned about one condition: each action's record. Compacted: the latest per condition."""

    event_type: Literal["immune_memory"] = "immune_memory"
    condition: Condition
    actions: tuple[ActionRecord, ...]
    order: tuple[HealingKind, ...] = Field(description="The order the next case of this condition would try.")
