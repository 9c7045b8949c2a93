"""The msgspec fast path (schemas/wire.py) accepts nothing pydantic rejects, and gives the same event.

Fuzzed from valid messages with fields dropped, added and replaced by hostile values (ids with
whitespace, out-of-range and non-finite numbers, strings for numbers, odd timestamps): whenever the
fast path alone accepts, pydantic accepts the same bytes and builds an equal event with the same
JSON; `decode` (fast path, then pydantic) accepts exactly what pydantic accepts.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import DecodeError, Intention, Vitals, decode
from schemas.wire import DECLINED, FAST

VALID = {
    Vitals: {
        "event_id": "v-1",
        "occurred_at": "2026-01-01T12:00:00Z",
        "producer": "sim",
        "agent_id": "agent-1",
        "latency_ms": 100.5,
        "error_rate": 0.01,
        "queue_depth": 3,
        "cpu": 0.4,
        "requests_per_s": 20.0,
    },
    Intention: {
        "event_id": "i-1",
        "occurred_at": "2026-01-01T12:00:00+02:00",
        "producer": "sim",
        "agent_id": "agent-1",
        "action": "acquire",
        "resource": "gpu",
        "amount": 2,
        "hold_s": 5,
    },
}

TIMES = st.sampled_from(
    [
        "2026-01-01T12:00:00Z", "2026-01-01T12:00:00", "2026-01-01T12:00:00+02:00", "2026-01-01T12:00:00-0130",
        "2026-01-01 12:00:00Z", "2026-01-01t12:00:00z", "2026-01-01T12:00:00.1234567Z", "2026-01-01T12:00:00.5Z",
        "2026-01-01T24:00:00Z", "2026-02-30T12:00:00Z", "2026-01-01T12:00:60Z", "2026-01-01", "12:00:00Z",
        "2026-01-01T12:00Z", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-01-01T12:00:00+24:00", "2026-01-01T12:00:00+23:59", "\u0662026-01-01T12:00:00Z",
    ]
)  # fmt: skip
IDS = st.one_of(
    st.text(min_size=0, max_size=4),
    st.sampled_from(["a b", "a\tb", "a\u3000b", "a\u0085b", "a\u200bb", "a\x1cb", "a\u180eb", "x" * 256, "x" * 257]),
)
NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, 1, 1.0, -0.0, 1e308, 5e-324, 10, 11, 0.5, 2**64]),
)
RAW_NUMBERS = st.sampled_from(["1e999", "-1e999", "NaN", "Infinity", "1.0e0", "01", "1.", "-0", "5E-1"])
VALUES = st.one_of(st.none(), st.booleans(), NUMBERS, IDS, TIMES, st.lists(IDS, max_size=3),
                   st.sampled_from(["vitals", "intention", "acquire", "release", "1", "0.5", "live"]))  # fmt: skip


@st.composite
def messages(draw: st.DrawFn, model: type) -> bytes:
    fields = dict(VALID[model])
    names = [*model.model_fields, "extra"]
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(names))
        if draw(st.booleans()):
            fields.pop(name, None)
        else:
            fields[name] = draw(VALUES)
    text = json.dumps(fields)
    if draw(st.booleans()):  # numbers only raw JSON can spell
        name = draw(st.sampled_from([n for n, f in model.model_fields.items() if f.annotation in (float, int)]))
        fields[name] = "__RAW__"
        text = json.dumps(fields).replace('"__RAW__"', draw(RAW_NUMBERS))
    return text.encode()


def _pydantic(model: type, raw: bytes):
    try:
        return model.model_validate_json(raw)
    except ValidationError:
        return None


@pytest.mark.parametrize("model", [Vitals, Intention])
def test_valid_messages_take_the_fast_path(model: type) -> None:
    raw = json.dumps(VALID[model]).encode()
    event = FAST[model](raw)
    assert type(event) is model
    assert event == model.model_validate_json(raw)


@pytest.mark.parametrize("model", [Vitals, Intention])
@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
@example(data=None)
def test_fast_path_accepts_only_what_pydantic_accepts_with_equal_values(
    model: type, data: st.DataObject | None
) -> None:
    raw = json.dumps(VALID[model]).encode() if data is None else data.draw(messages(model))
    expected = _pydantic(model, raw)
    try:
        fast = FAST[model](raw)
    except DECLINED:
        fast = None
    if fast is not None:
        assert expected is not None, raw
        assert fast == expected, raw
        assert fast.model_dump_json() == expected.model_dump_json(), raw
        assert fast.occurred_at.tzinfo == expected.occurred_at.tzinfo
    try:
        decoded = decode(model, raw)
    except DecodeError as exc:
        assert expected is None, raw
        assert exc.reason and exc.raw == raw  # pydantic's words for the dead letter, the bytes kept
    else:
        assert expected is not None and decoded == expected, raw


def test_duplicate_keys_decide_like_pydantic() -> None:
    raw = json.dumps(VALID[Vitals])[:-1].encode() + b', "cpu": 0.9}'
    assert decode(Vitals, raw) == Vitals.model_validate_json(raw)


def test_bad_input_is_a_clear_error() -> None:
    raw = json.dumps({**VALID[Vitals], "agent_id": "a b"}).encode()
    with pytest.raises(DecodeError, match="agent_id"):
        decode(Vitals, raw)


def test_a_time_out_of_range_in_utc_is_a_dead_letter_not_a_crash() -> None:
    # Year 1 east of UTC has no UTC value: it used to escape pydantic as an OverflowError and fail the batch.
    raw = json.dumps({**VALID[Vitals], "occurred_at": "0001-01-01T00:00:00+01:00"}).encode()
    with pytest.raises(DecodeError, match="out of range in UTC"):
        decode(Vitals, raw)


def test_a_fast_decoded_event_copies_like_a_validated_one() -> None:
    raw = json.dumps(VALID[Vitals]).encode()
    fast, slow = FAST[Vitals](raw), Vitals.model_validate_json(raw)
    assert fast.model_copy(update={"cpu": 0.9}) == slow.model_copy(update={"cpu": 0.9})
    assert fast.model_dump() == slow.model_dump()
