"""The event contracts: what round-trips, what is rejected, and what subscribers see."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas import (
    REGISTRY,
    ConflictPrediction,
    DecodeError,
    Event,
    Intention,
    OperatorCommand,
    TrustChange,
    Vitals,
    decode,
    derive_event_id,
    encode,
    topic,
)
from tests.strategies import EVENTS, any_event

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def intention(**overrides) -> dict:
    fields = {
        "event_id": "e-1",
        "occurred_at": "2026-01-01T12:00:00Z",
        "producer": "test",
        "agent_id": "agent-1",
        "action": "acquire",
        "resource": "gpu",
        "amount": 2,
    }
    return {**fields, **overrides}


def raw(fields: dict) -> bytes:
    return json.dumps(fields).encode()


@given(any_event)
def test_every_event_round_trips_through_json(event: Event) -> None:
    assert decode(type(event), encode(event)) == event


@given(any_event)
def test_encoded_events_are_plain_json_with_the_envelope(event: Event) -> None:
    document = json.loads(encode(event))
    assert {"event_id", "event_type", "schema_version", "occurred_at", "run_id", "causation_ids", "producer"} <= set(document)
    assert document["occurred_at"].endswith("Z")


@given(any_event)
def test_timestamps_are_normalised_to_utc(event: Event) -> None:
    assert event.occurred_at.utcoffset().total_seconds() == 0


def test_every_event_model_has_a_strategy_and_a_topic() -> None:
    assert {spec.model for spec in REGISTRY} == set(EVENTS)


def test_a_valid_intention_decodes() -> None:
    event = decode(Intention, raw(intention()))
    assert (event.agent_id, event.amount, event.priority, event.run_id) == ("agent-1", 2.0, 5, "live")


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"agent_id": ""}, "agent_id"),
        ({"agent_id": "has space"}, "agent_id"),
        ({"event_id": ""}, "event_id"),
        ({"amount": 0}, "amount"),
        ({"amount": -3}, "amount"),
        ({"priority": 0}, "priority"),
        ({"priority": 11}, "priority"),
        ({"occurred_at": "2026-01-01T12:00:00"}, "occurred_at"),
        ({"action": "steal"}, "action"),
        ({"surprise": 1}, "surprise"),
        ({"event_type": "vitals"}, "event_type"),
        ({"schema_version": 2}, "schema_version"),
    ],
)
def test_invalid_intentions_are_rejected_naming_the_field(overrides: dict, complaint: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(Intention, raw(intention(**overrides)))
    assert complaint in caught.value.reason


@given(st.binary())
def test_arbitrary_bytes_never_escape_as_anything_but_a_decode_error_that_keeps_them(data: bytes) -> None:
    try:
        decode(Intention, data)
    except DecodeError as exc:
        assert exc.raw == data


def test_a_null_value_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="null"):
        decode(Vitals, None)


@pytest.mark.parametrize("score", [-0.1, 100.1])
def test_trust_scores_stay_within_0_and_100(score: float) -> None:
    with pytest.raises(ValueError, match="after"):
        TrustChange(event_id="t", occurred_at=NOW, producer="trust", agent_id="a", before=50, after=score, reason="anomaly")


@pytest.mark.parametrize("field", ["risk", "confidence"])
@pytest.mark.parametrize("value", [-0.01, 1.01])
def test_risk_and_confidence_stay_within_0_and_1(field: str, value: float) -> None:
    fields = dict(event_id="c", occurred_at=NOW, producer="conflict", resource="gpu", window_start=NOW, window_end=NOW,
                  capacity=4, demand=9, risk=0.5, confidence=0.5, failure_mode="contention")  # fmt: skip
    with pytest.raises(ValueError, match=field):
        ConflictPrediction(**{**fields, field: value})


def test_set_trust_needs_a_score_and_other_commands_refuse_one() -> None:
    common = dict(event_id="o", occurred_at=NOW, producer="cli", agent_id="a", operator="ops")
    with pytest.raises(ValueError, match="set_trust"):
        OperatorCommand(**common, command="set_trust")
    with pytest.raises(ValueError, match="set_trust"):
        OperatorCommand(**common, command="release", trust=50)
    assert OperatorCommand(**common, command="set_trust", trust=50).trust == 50


def test_derived_event_ids_are_deterministic_and_depend_on_every_part() -> None:
    assert derive_event_id("trust", "e-1") == derive_event_id("trust", "e-1")
    assert derive_event_id("trust", "e-1") != derive_event_id("baseline", "e-1")
    assert derive_event_id("trust", "e-1", "e-2") != derive_event_id("trust", "e-1e-2")


def test_every_topic_is_keyed_by_a_field_of_its_model() -> None:
    for spec in REGISTRY:
        assert spec.key_field in spec.model.model_fields, spec.name


def test_baselines_and_memory_are_compacted_and_the_rest_are_not() -> None:
    assert {spec.name for spec in REGISTRY if spec.cleanup_policy == "compact"} == {"immune.baselines", "immune.memory"}


def test_an_unknown_topic_name_lists_the_known_ones() -> None:
    with pytest.raises(KeyError, match="agent.intentions"):
        topic("agent.intention")
