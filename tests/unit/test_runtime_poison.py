"""Poison never stops a processor: the dead-letter builder, the produce-error rule, per-event isolation,
the ingress rule on event time. Pure parts only; the real broker is in tests/integration."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import KafkaError
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from processors.runtime import OutMessage, Processor, Step
from processors.runtime.deadletter import RAW_KEPT_BYTES, dead_letter, run_id_of
from processors.runtime.delivery import deliver
from processors.runtime.errors import BrokerUnavailable, PermanentFailure, ProduceRefused
from processors.runtime.ingress import EventTimeGuard, EventTimeRule
from processors.runtime.isolation import step_each
from processors.runtime.kafka import produce_error_kind
from schemas import DEADLETTER, VITALS, DeadLetter, Event, Vitals, decode, encode

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
run_ids = st.one_of(st.none(), st.text(max_size=300), st.just("a\tb"), st.just("\ud800"), st.just("x" * 257))


def _json_bytes(value: object) -> bytes:
    return json.dumps(value).encode()


messages = st.one_of(
    st.binary(max_size=2048),
    json_values.map(_json_bytes),
    st.builds(lambda r, v: _json_bytes({"run_id": r, "v": v}), run_ids, json_values),
    st.integers(1, 3000).map(lambda depth: b"[" * depth),
    st.none(),
)


@settings(max_examples=300, deadline=None)
@given(
    value=messages,
    key=st.none() | st.binary(max_size=2048),
    run_id=run_ids,
    error=st.text(max_size=5000) | st.just("\udcff bad surrogate"),
    partition=st.integers(-5, 2**40),
    offset=st.integers(-5, 2**63),
    timestamp=st.none() | st.floats() | st.integers(-(2**70), 2**70),
    processor=st.sampled_from(["baseline", "trust", "", "a b"]),
)
def test_the_dead_letter_builder_never_raises_and_its_letter_always_serializes_and_decodes(
    value, key, run_id, error, partition, offset, timestamp, processor
) -> None:
    guessed = run_id_of(value)
    letter = dead_letter(
        processor,
        topic="agent.vitals",
        partition=partition,
        offset=offset,
        value=value,
        key=key,
        error=error,
        timestamp=timestamp,
        run_id=run_id or guessed,
    )
    wire = encode(letter)
    assert decode(DeadLetter, wire) == letter
    assert len(wire) < 200_000
    raw = value or b""
    assert letter.raw_value_length == len(raw) and letter.raw_value_sha256 == hashlib.sha256(raw).hexdigest()
    assert base64.b64decode(letter.raw_value_b64) == raw[:RAW_KEPT_BYTES]


def test_the_34_byte_message_that_crashed_the_baseline_worker_is_an_ordinary_dead_letter() -> None:
    raw = b'{"run_id":"a\\tb","garbage":true}'
    assert run_id_of(raw) is None  # "a\tb" is not a run id: the letter goes to the worker's run
    letter = dead_letter(
        "baseline", topic="agent.vitals", partition=0, offset=7, value=raw, key=None, error="x", timestamp=1.7e9,
        run_id="a\tb",
    )  # fmt: skip
    assert letter.run_id == "live" and base64.b64decode(letter.raw_value_b64) == raw


def test_an_oversized_value_is_cut_with_its_length_and_digest_kept() -> None:
    raw = b'{"run_id":"r1","junk":"' + b"x" * 900_000 + b'"}'
    letter = dead_letter(
        "trust", topic="agent.intentions", partition=1, offset=2, value=raw, key=b"k" * 5000, error="too big",
        timestamp=1.7e9, run_id=run_id_of(raw),
    )  # fmt: skip
    assert letter.truncated and letter.run_id == "r1"
    assert letter.raw_value_length == len(raw) and letter.raw_value_sha256 == hashlib.sha256(raw).hexdigest()
    assert len(encode(letter)) < 100_000


@given(st.binary(max_size=512) | json_values.map(_json_bytes))
def test_guessing_the_run_of_any_message_never_raises_and_yields_a_valid_run_id_or_none(raw: bytes) -> None:
    guessed = run_id_of(raw)
    assert guessed is None or (guessed.strip() == guessed and 0 < len(guessed) <= 256 and " " not in guessed)


def test_deeply_nested_json_is_no_run_and_no_crash() -> None:
    assert run_id_of(b"[" * 100_000) is None and run_id_of(b'{"run_id":' * 5000) is None


# --- the produce-error rule ------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (KafkaError.MSG_SIZE_TOO_LARGE, "poison"),
        (KafkaError.INVALID_RECORD, "poison"),
        (KafkaError.INVALID_TIMESTAMP, "poison"),
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, "forbidden"),
        (KafkaError.CLUSTER_AUTHORIZATION_FAILED, "forbidden"),
        (KafkaError._AUTHENTICATION, "forbidden"),
        (KafkaError._TRANSPORT, "transient"),
        (KafkaError._MSG_TIMED_OUT, "transient"),
        (KafkaError.NOT_LEADER_FOR_PARTITION, "transient"),
    ],
)
def test_produce_errors_are_classified_by_the_written_rule(code: int, kind: str) -> None:
    assert produce_error_kind(KafkaError(code)) == kind


class ScriptedSender:
    """A sender whose broker refuses messages by rule (the rule under test is in `deliver`, not here)."""

    def __init__(self, refuse) -> None:  # noqa: ANN001
        self.refuse = refuse
        self.written: list[OutMessage] = []

    async def __call__(self, batch: Sequence[OutMessage]) -> None:
        refused = {i: r for i, m in enumerate(batch) if (r := self.refuse(m)) is not None}
        self.written += [m for i, m in enumerate(batch) if i not in refused]
        if refused:
            raise ProduceRefused(refused)


def test_a_message_refused_as_poison_is_replaced_by_a_dead_letter_and_never_retried() -> None:
    big = OutMessage("immune.trust", b"a1", b'{"run_id":"r1","x":"' + b"y" * 2_000_000 + b'"}')
    fine = OutMessage("immune.trust", b"a2", b"{}")
    send = ScriptedSender(lambda m: ("poison", "Broker: Message size too large") if len(m.value) > 1_000_000 else None)
    letters = asyncio.run(deliver(send, [big, fine], "trust"))
    assert [m.value for m in send.written[:1]] == [b"{}"]
    (letter,) = letters
    assert letter.source_topic == "immune.trust" and letter.run_id == "r1" and "too large" in letter.error
    assert letter.raw_value_length == len(big.value) and letter.truncated
    assert send.written[1].topic == DEADLETTER.name


def test_a_refused_dead_letter_is_resent_without_its_bytes_and_a_second_refusal_stops_the_worker() -> None:
    letter = dead_letter(
        "baseline", topic="agent.vitals", partition=0, offset=1, value=b"z" * 1000, key=None, error="bad",
        timestamp=None, run_id="r",
    )  # fmt: skip
    msg = OutMessage(DEADLETTER.name, b"agent.vitals", encode(letter))
    send = ScriptedSender(lambda m: ("poison", "too large") if b"enp6" in m.value else None)
    (smaller,) = asyncio.run(deliver(send, [msg], "baseline"))
    assert smaller.event_id == letter.event_id and smaller.raw_value_b64 == "" and smaller.raw_value_length == 1000
    with pytest.raises(PermanentFailure):
        asyncio.run(deliver(ScriptedSender(lambda m: ("poison", "invalid record")), [msg], "baseline"))


def test_a_forbidden_write_stops_the_worker_and_a_transient_one_is_left_to_the_retry_helper() -> None:
    msg = OutMessage("immune.quarantine", b"a", b"{}")
    with pytest.raises(ProduceRefused) as refused:
        asyncio.run(deliver(ScriptedSender(lambda m: ("forbidden", "Topic authorization failed")), [msg], "q"))
    assert isinstance(refused.value, PermanentFailure) and refused.value.forbidden

    async def down(_batch: Sequence[OutMessage]) -> None:
        raise RuntimeError("broker down")

    with pytest.raises(BrokerUnavailable):
        asyncio.run(deliver(down, [msg], "q"))


# --- per-event isolation --------------------------------------------------------------------


class Count(BaseModel):
    seen: list[str] = []


def _counting_step(entity: str, state: Count | None, events: Sequence[Event]) -> Step[Count]:
    state = state or Count()
    for e in events:
        state.seen.append(e.event_id)  # mutates its input on purpose: a half-done failure must not leak
        if "poison" in e.event_id:
            raise OverflowError("date value out of range")
    return Step(state=state, history=[f"saw {len(events)}"])


def _vitals(event_id: str) -> Vitals:
    return Vitals(
        event_id=event_id, occurred_at=datetime(2026, 1, 1, tzinfo=UTC), producer="sim", agent_id="a", latency_ms=1,
        error_rate=0, queue_depth=0, cpu=0, requests_per_s=0,
    )  # fmt: skip


@given(st.lists(st.booleans(), max_size=12))
def test_one_bad_event_costs_only_itself(bad: list[bool]) -> None:
    processor = Processor("count", (VITALS,), Count, lambda e: ("a",), _counting_step)
    events = [_vitals(f"{'poison' if b else 'ok'}-{i}") for i, b in enumerate(bad)]
    start = Count(seen=["before"])
    step, failed = step_each(processor, "a", start, events)
    assert [i for i, _ in failed] == [i for i, b in enumerate(bad) if b]
    good = [e.event_id for e, b in zip(events, bad, strict=True) if not b]
    assert (step.state.seen if step.state else start.seen) == ["before", *good]
    assert start.seen == ["before"]  # the stored state was never touched


# --- the ingress rule on event time ---------------------------------------------------------

RULE = EventTimeRule(max_skew_s=30, max_age_s=10 * 365.25 * 86400)
NOW = datetime(2026, 12, 2, 7, tzinfo=UTC).timestamp()


@given(st.floats(-1e12, 1e12, allow_nan=False), st.floats(1e9, 2e9))
def test_an_event_enters_only_within_the_skew_ahead_and_the_age_behind_its_broker_time(at: float, broker: float) -> None:
    why = RULE.judge(at, broker)
    assert (why == "future") == (at - broker > 30)
    assert (why == "past") == (broker - at > RULE.max_age_s)


def test_replays_old_event_times_with_new_broker_times_enter_and_2100_does_not() -> None:
    assert RULE.judge(datetime(2026, 1, 1, tzinfo=UTC).timestamp(), NOW) is None  # a replay from January
    assert RULE.judge(NOW + 30, NOW) is None
    assert RULE.judge(datetime(2100, 1, 1, tzinfo=UTC).timestamp(), NOW) == "future"
    assert RULE.judge(datetime(1, 1, 1, tzinfo=UTC).timestamp(), NOW) == "past"
    assert RULE.judge(datetime(2100, 1, 1, tzinfo=UTC).timestamp(), None) is None  # nothing to judge against
    assert EventTimeRule(30, 0).judge(datetime(1, 1, 1, tzinfo=UTC).timestamp(), NOW) is None


def test_rejections_are_counted_per_agent_with_a_bounded_set_of_labels() -> None:
    from prometheus_client import REGISTRY

    guard = EventTimeGuard("test-guard", RULE, agent_labels=2)
    for i in range(5):
        event = _vitals(f"v{i}").model_copy(
            update={"agent_id": f"liar-{i}", "occurred_at": datetime(2100, 1, 1, tzinfo=UTC)}
        )
        assert "ahead of the broker timestamp" in (guard.check(event, NOW) or "")
    assert guard.check(_vitals("fine").model_copy(update={"occurred_at": datetime.fromtimestamp(NOW, UTC)}), NOW) is None

    def count(agent: str) -> float | None:
        return REGISTRY.get_sample_value(
            "chorus_event_time_rejected_total", {"processor": "test-guard", "agent": agent, "why": "future"}
        )

    assert count("liar-0") == 1 and count("liar-1") == 1 and count("liar-2") is None and count("_other") == 3


def test_the_ingress_rule_is_built_from_the_settings() -> None:
    from processors.runtime import Settings
    from processors.runtime.app import event_time_rule

    assert event_time_rule(Settings(max_clock_skew_s=5)) == EventTimeRule(5, Settings().max_event_age_s)
    assert Settings().max_clock_skew_s == 30 and timedelta(seconds=Settings().max_event_age_s).days >= 3650
