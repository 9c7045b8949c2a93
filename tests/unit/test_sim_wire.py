"""The simulator's hand-formatted JSON is byte-for-byte what the codec writes."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from schemas import Intention, Vitals, decode, derive_event_id, encode
from simulator.wire import Clock, EventIds, Templates, json_str

# The engine rounds every float to at most 4 decimals before formatting.
unbounded = st.floats(0, 1e9, allow_nan=False).map(lambda x: round(x, 4))
unit = st.floats(0, 1, allow_nan=False).map(lambda x: round(x, 4))
ids = st.text(st.characters(blacklist_categories=("Zs", "Cc", "Zl", "Zp", "Cs")), min_size=1, max_size=20)


@given(st.integers(0, 10**10), ids, ids, unbounded, unit, unbounded, unit, unbounded)
def test_vitals_bytes_equal_the_codecs(at_ms, run_id, agent, latency, errors, queue, cpu, rps):
    clock = Clock(datetime(2026, 1, 1, tzinfo=UTC))
    raw = Templates(run_id).vitals("e-1", clock.iso_ms(at_ms), json_str(agent), latency, errors, queue, cpu, rps)
    event = decode(Vitals, raw)
    assert encode(event) == raw
    assert (event.run_id, event.agent_id, event.latency_ms) == (run_id, agent, latency)
    assert event.occurred_at == clock.at(at_ms / 1000)


@given(st.integers(0, 10**8), ids, ids, st.booleans(), st.floats(0.1, 1e6).map(lambda x: round(x, 1)), st.integers(1, 10))
def test_intention_bytes_equal_the_codecs(at_ms, agent, resource, release, amount, priority):
    clock = Clock(datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC))
    hold = None if release else 2.5
    action = "release" if release else "acquire"
    raw = Templates("run").intention(
        "e-2", clock.iso_ms(at_ms), json_str(agent), action, json_str(resource), amount, priority, hold
    )
    event = decode(Intention, raw)
    assert encode(event) == raw
    assert (event.action, event.resource, event.amount, event.hold_s) == (action, resource, amount, hold)


@given(st.lists(ids, min_size=1, max_size=4))
def test_fast_event_ids_equal_derive_event_id(parts):
    assert EventIds("fp").make(*parts) == derive_event_id("simulator", "fp", *parts)
