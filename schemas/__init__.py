"""Chorus event contracts: models, topic registry, JSON codec, JSON Schema export."""

from .codec import decode, encode
from .envelope import DEFAULT_RUN_ID, Event, Id, Priority, Probability, Score, UtcDatetime, derive_event_id
from .errors import ChorusError, DecodeError
from .events import (
    SEVERITIES,
    AffectedAgent,
    Anomaly,
    BaselineSnapshot,
    ConflictPrediction,
    DeadLetter,
    Equilibrium,
    FailureMode,
    GroundTruth,
    InfectionMode,
    Intention,
    Metric,
    MetricBaseline,
    OperatorCommand,
    QuarantineAction,
    QuarantineDecision,
    QuarantineReason,
    Severity,
    TrustChange,
    TrustReason,
    Vitals,
)
from .export import export_schemas, json_schema
from .topics import (
    ADMITTED,
    ANOMALIES,
    BASELINES,
    COMMANDS,
    CONFLICTS,
    DEADLETTER,
    INTENTIONS,
    QUARANTINE,
    REGISTRY,
    TRUST,
    TRUTH,
    VITALS,
    TopicSpec,
    topic,
)

__all__ = [name for name in dir() if not name.startswith("_")]
