"""The agent SDK's pure parts: partitioner, what a client knows from the decisions, the call meter; and the
gate's explicit held verdict."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from chorus.agent import CallStats, Follower, Meter
from processors.quarantine import QuarantinePolicy
from processors.quarantine.step import step
from schemas import (
    ADMITTED,
    HELD,
    Intention,
    IntentionHeld,
    OperatorCommand,
    QuarantineDecision,
    murmur2,
    partition_for,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@given(st.binary(max_size=64))
def test_murmur2_is_kafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key) & 0xFFFFFFFF
    assert 0 <= partition_for(key, 8) < 8


def test_importing_the_sdk_pulls_in_neither_the_cli_nor_faust() -> None:
    probe = "import sys, chorus.agent; print(sorted(m for m in ('faust', 'click', 'numpy', 'redis', 'fastapi') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def decision(n: int, agent: str, action: str) -> QuarantineDecision:
    return QuarantineDecision(
        event_id=f"d{n}",
        occurred_at=T0 + timedelta(seconds=n),
        run_id="run",
        producer="quarantine",
        agent_id=agent,
        action=action,  # type: ignore[arg-type]
        reason="operator",
    )


decisions = st.lists(
    st.tuples(
        st.integers(0, 30),
        st.sampled_from(["a", "b", "other"]),
        st.sampled_from(["quarantine", "release", "pending_approval"]),
    ),
    max_size=40,
)


@given(decisions)
def test_a_client_is_held_exactly_when_its_latest_quarantine_or_release_says_so(stream) -> None:
    """Re-emitted decisions (same id, again later: a processor's redelivery) change nothing."""
    follower = Follower({"a", "b"}, "run")
    firsts: dict[str, QuarantineDecision] = {}
    for n, agent, action in stream:
        d = decision(n, agent, action) if f"d{n}" not in firsts else firsts[f"d{n}"]
        firsts.setdefault(d.event_id, d)
        follower.decide(d)
    for agent in ("a", "b"):
        applied = []
        seen = set()
        for n, _who, _ in stream:
            d = firsts[f"d{n}"]
            if d.event_id not in seen:
                seen.add(d.event_id)
                if d.agent_id == agent and d.action != "pending_approval":
                    applied.append(d)
        expected = bool(applied) and applied[-1].action == "quarantine"
        assert follower.status[agent].quarantined == expected
    assert "other" not in follower.status


def test_other_runs_and_unexpected_verdicts_resolve_nothing() -> None:
    follower = Follower({"a"}, "run")
    mine = intention("i1", "a")
    follower.expect(mine)
    assert follower.admitted(intention("i2", "a")) is None
    assert follower.admitted(mine.model_copy(update={"run_id": "other"})) is None
    assert follower.decide(decision(1, "a", "quarantine").model_copy(update={"run_id": "other"})) is None
    assert follower.admitted(mine) == "i1"
    assert follower.admitted(mine) is None  # one verdict per intention
    assert follower.waiting == 0


def intention(event_id: str, agent: str, t: float = 0.0) -> Intention:
    return Intention(
        event_id=event_id,
        occurred_at=T0 + timedelta(seconds=t),
        run_id="run",
        producer="sdk",
        agent_id=agent,
        action="acquire",
        resource="gpu",
        amount=1.0,
    )


def test_the_gate_gives_every_intention_exactly_one_verdict_and_names_the_decision_of_a_hold() -> None:
    quarantine = OperatorCommand(
        event_id="c1",
        occurred_at=T0 + timedelta(seconds=1),
        run_id="run",
        producer="op",
        agent_id="a",
        command="quarantine",
        operator="x",
    )
    events = [
        intention("i1", "a", 0),
        intention("i2", "b", 0.5),
        quarantine,
        intention("i3", "a", 2),
        intention("i4", "b", 2),
    ]
    outputs = step("fleet", None, events, {}, QuarantinePolicy()).outputs
    admitted = [o.event.event_id for o in outputs if o.topic is ADMITTED]
    held = [o.event for o in outputs if o.topic is HELD]
    [decided] = [o.event for o in outputs if isinstance(o.event, QuarantineDecision)]
    assert admitted == ["i1", "i2", "i4"]
    assert [h.intention_id for h in held] == ["i3"]
    [h] = held
    assert isinstance(h, IntentionHeld) and h.decision_id == decided.event_id and h.reason == "operator"
    assert h.causation_ids == ("i3", decided.event_id) and h.occurred_at == events[3].occurred_at
    # Deterministic: the same input gives the same verdict id.
    again = [o.event for o in step("fleet", None, events, {}, QuarantinePolicy()).outputs if o.topic is HELD]
    assert again == held


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@given(st.lists(st.tuples(st.floats(0, 2, allow_nan=False), st.booleans()), max_size=30))
def test_a_tick_reports_its_calls_errors_mean_latency_and_depth(calls) -> None:
    clock = Clock()
    stats = CallStats(clock)
    started = [stats.begin() for _ in calls]  # all in flight at once
    for (latency, failed), t0 in zip(calls, started, strict=True):
        clock.now = t0 + latency
        stats.end(t0, failed)
        clock.now = 0.0
    clock.now = 10.0
    sample = stats.take()
    assert sample.calls == len(calls) and sample.errors == sum(f for _, f in calls)
    assert sample.queue_depth == len(calls)
    assert sample.requests_per_s == pytest.approx(len(calls) / 10.0)
    if calls:
        assert sample.latency_ms == pytest.approx(sum(lat for lat, _ in calls) / len(calls) * 1000)
        assert sample.error_rate == pytest.approx(sample.errors / len(calls))
    empty = stats.take()
    assert empty.calls == 0 and empty.error_rate == 0.0 and empty.latency_ms == sample.latency_ms  # carried over


def test_the_meter_counts_raised_calls_as_errors_and_lets_them_through_from_any_thread() -> None:
    meter = Meter(CallStats())

    @meter
    def work(fail: bool) -> str:
        if fail:
            raise ValueError("no")
        return "ok"

    def many() -> None:
        for i in range(100):
            with contextlib.suppress(ValueError):
                work(i % 10 == 0)

    threads = [threading.Thread(target=many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with pytest.raises(KeyError), meter.call():
        raise KeyError("x")
    sample = meter.stats.take()
    assert sample.calls == 401 and sample.errors == 41


def test_the_committed_wire_contract_is_what_the_schemas_generate() -> None:
    from pathlib import Path

    from chorus.agent.contract import render

    committed = (Path(__file__).resolve().parents[2] / "docs" / "wire-contract.md").read_text()
    assert committed == render(), "regenerate: python -m chorus.agent.contract > docs/wire-contract.md"
