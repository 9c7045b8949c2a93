"""Hypothesis strategies for valid events of every type."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import strategies as st

from schemas import (
    CONDITIONS,
    SEVERITIES,
    ActionRecord,
    AffectedAgent,
    Anomaly,
    BaselineSnapshot,
    ConflictPrediction,
    DeadLetter,
    Diagnosis,
    Equilibrium,
    Event,
    GroundTruth,
    HealingAction,
    HealingOutcome,
    ImmuneMemory,
    Intention,
    IntentionHeld,
    MetricBaseline,
    OperatorCommand,
    QuarantineDecision,
    TrustChange,
    Vitals,
)

ids = st.text(
    alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_categories=("Zs", "Cc")), min_size=1, max_size=24
)
# Any aware timestamp; the model normalises it to UTC.
timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])
)
finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e9, max_value=1e9)
non_negative = st.floats(min_value=0, max_value=1e9, allow_nan=False)
positive = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False)
unit = st.floats(min_value=0, max_value=1, allow_nan=False)
scores = st.floats(min_value=0, max_value=100, allow_nan=False)
priorities = st.integers(min_value=1, max_value=10)
metrics = st.sampled_from(Vitals.METRICS)
conditions = st.sampled_from(CONDITIONS)
healing_kinds = st.sampled_from(["restart", "reset_state", "throttle", "rollback", "manual"])


def _envelope() -> dict:
    return {
        "event_id": ids,
        "occurred_at": timestamps,
        "run_id": ids,
        "causation_ids": st.lists(ids, max_size=3).map(tuple),
        "producer": ids,
    }


def _event(model: type[Event], **fields) -> st.SearchStrategy[Event]:
    return st.builds(model, **_envelope(), **fields)


affected = st.builds(
    AffectedAgent, agent_id=ids, demand=non_negative, share=unit, fair_share=unit, priority=priorities, aggressiveness=unit
)
equilibria = st.builds(
    Equilibrium, resource_value=non_negative, conflict_cost=non_negative, p_escalate=unit, p_deadlock=unit, p_starvation=unit
)


@st.composite
def conflict_predictions(draw) -> ConflictPrediction:
    start = draw(timestamps)
    return draw(
        _event(
            ConflictPrediction,
            resource=ids,
            window_start=st.just(start),
            window_end=st.just(start + timedelta(seconds=draw(st.integers(0, 600)))),
            capacity=positive,
            demand=non_negative,
            risk=unit,
            confidence=unit,
            failure_mode=st.sampled_from(["none", "contention", "starvation", "deadlock", "hoarding"]),
            affected=st.lists(affected, max_size=4).map(tuple),
            most_aggressive=st.none() | ids,
            equilibrium=st.none() | equilibria,
            recommended_actions=st.lists(st.text(max_size=40), max_size=3).map(tuple),
            source=st.sampled_from(["fast_path", "gemini"]),
            analysis=st.none() | st.text(max_size=80),
        )
    )


@st.composite
def operator_commands(draw) -> OperatorCommand:
    command = draw(st.sampled_from(["quarantine", "release", "approve", "reject", "set_trust", "heal"]))
    trust = draw(scores) if command == "set_trust" else None
    return draw(_event(OperatorCommand, agent_id=ids, command=st.just(command), trust=st.just(trust), operator=ids, note=st.text(max_size=40)))


EVENTS: dict[type[Event], st.SearchStrategy[Event]] = {
    Intention: _event(
        Intention,
        agent_id=ids,
        action=st.sampled_from(["acquire", "release"]),
        resource=ids,
        amount=positive,
        priority=priorities,
        hold_s=st.none() | positive,
    ),
    Vitals: _event(
        Vitals, agent_id=ids, latency_ms=non_negative, error_rate=unit, queue_depth=non_negative, cpu=unit, requests_per_s=non_negative
    ),
    Anomaly: _event(
        Anomaly,
        agent_id=ids,
        metric=metrics,
        value=finite,
        mean=finite,
        stddev=non_negative,
        zscore=finite,
        severity=st.sampled_from(SEVERITIES),
        sustained_samples=st.integers(1, 100),
    ),
    BaselineSnapshot: _event(
        BaselineSnapshot,
        agent_id=ids,
        metrics=st.dictionaries(metrics, st.builds(MetricBaseline, count=st.integers(0, 10**6), mean=finite, stddev=non_negative)),
        frozen=st.booleans(),
        anomalous_metrics=st.lists(metrics, max_size=2).map(tuple),
    ),
    TrustChange: _event(
        TrustChange,
        agent_id=ids,
        before=scores,
        after=scores,
        reason=st.sampled_from(["anomaly", "conflict", "hoarding", "good_behaviour", "released", "operator"]),
        detail=st.text(max_size=40),
    ),
    ConflictPrediction: conflict_predictions(),
    QuarantineDecision: _event(
        QuarantineDecision,
        agent_id=ids,
        action=st.sampled_from(["quarantine", "release", "pending_approval"]),
        reason=st.sampled_from(["low_trust", "conflict_aggressor", "critical_anomaly", "operator", "term_expired", "recovered"]),
        until=st.none() | timestamps,
        offense_count=st.integers(0, 50),
        trust=st.none() | scores,
        detail=st.text(max_size=40),
    ),
    IntentionHeld: _event(
        IntentionHeld,
        agent_id=ids,
        intention_id=ids,
        action=st.sampled_from(["acquire", "release"]),
        resource=ids,
        decision_id=st.none() | ids,
        reason=st.none() | st.sampled_from(["low_trust", "conflict_aggressor", "critical_anomaly", "operator"]),
        until=st.none() | timestamps,
    ),
    OperatorCommand: operator_commands(),
    DeadLetter: _event(
        DeadLetter,
        source_topic=ids,
        partition=st.integers(0, 1000),
        offset=st.integers(0, 2**62),
        raw_value_b64=st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
        raw_key_b64=st.none() | st.just("YQ=="),
        error=st.text(min_size=1, max_size=60),
    ),
    GroundTruth: _event(
        GroundTruth,
        agent_id=ids,
        infection_id=ids,
        mode=st.sampled_from(["hoarder", "flood", "latency", "errors", "deceptive", "defiant"]),
        phase=st.sampled_from(["start", "end"]),
        scenario=ids,
        cured_by=st.none() | ids,
    ),
    Diagnosis: _event(
        Diagnosis,
        agent_id=ids,
        condition=conditions,
        confidence=unit,
        quarantine_id=ids,
        previous=st.none() | conditions,
        severe=st.booleans(),
        detail=st.text(max_size=40),
    ),
    HealingAction: _event(
        HealingAction,
        agent_id=ids,
        condition=conditions,
        action=healing_kinds,
        status=st.sampled_from(["issued", "pending_approval", "exhausted"]),
        attempt=st.integers(1, 10),
        diagnosis_id=ids,
        deadline=st.none() | timestamps,
        operator=st.none() | ids,
    ),
    HealingOutcome: _event(
        HealingOutcome,
        agent_id=ids,
        condition=conditions,
        action=healing_kinds,
        outcome=st.sampled_from(["cured", "failed", "unverified", "rejected"]),
        attempt=st.integers(1, 10),
        diagnosis_id=ids,
        action_id=st.none() | ids,
        quarantine_id=ids,
        time_to_cure_s=st.none() | non_negative,
        samples=st.integers(0, 100),
    ),
    ImmuneMemory: _event(
        ImmuneMemory,
        condition=conditions,
        actions=st.lists(
            st.builds(ActionRecord, action=healing_kinds, tried=st.integers(0, 99), cured=st.integers(0, 99),
                      failed=st.integers(0, 99), mean_time_to_cure_s=st.none() | non_negative),
            max_size=4,
        ).map(tuple),
        order=st.lists(healing_kinds, max_size=4).map(tuple),
    ),
}

any_event = st.one_of(*EVENTS.values())
