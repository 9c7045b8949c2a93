"""How states are stored: what is read back is what was written, whichever codec, and old states still read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.baseline import AgentBaseline, BaselineConfig, step
from processors.baseline.logic import season_bucket
from processors.runtime.statecodec import StateCodec, as_json
from processors.trust.logic import TrustState
from schemas import Vitals

CFG = BaselineConfig(warmup=3)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
BASELINE = StateCodec(AgentBaseline)

# The baseline's state as the pydantic model of the previous release stored it (one metric of it).
STORED_AS_JSON = (
    b'{"metrics":{"latency_ms":{"count":5,"mean":100.8,"m2":2.8000000000000007,"fast":100.79,'
    b'"rdev":0.7249999999999993,"l_exceed":0.0454090455,"l_excess":0.37,"j_exceed":0.0454090455,"j_excess":0.37,'
    b'"deviating":0,"normal":0,"anomalous":false,"severity":null,"streak_ids":[],"peak_level":0.0,"peak_jump":0.0,'
    b'"s_exceed":0.0455,"s_excess":0.37,"peak_season":0.0,"s_run":0,"quiet":0,"reported":null,'
    b'"season":{"0":[1.0,20454.0,1.0,100.0,0.0],"1":[1.0,20454.0,1.0,101.0,0.0]},"bursts":[]}},'
    b'"samples":5,"since_snapshot":2,"held":false}'
)


def vitals(i: int, latency: float) -> Vitals:
    return Vitals(
        event_id=f"v{i}", occurred_at=T0 + timedelta(minutes=30 * i), run_id="r", causation_ids=(), producer="sim",
        agent_id="a1", latency_ms=latency, error_rate=0.01, queue_depth=1.0, cpu=0.5, requests_per_s=10.0,
    )  # fmt: skip


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e9, allow_nan=False), min_size=1, max_size=60))
def test_a_baseline_state_reads_back_exactly_as_written(latencies: list[float]) -> None:
    state = step("a1", None, [vitals(i, x) for i, x in enumerate(latencies)], CFG).state
    assert BASELINE.decode(BASELINE.encode(state)) == state


def test_a_baseline_state_stored_as_json_before_is_still_read() -> None:
    state = BASELINE.decode(STORED_AS_JSON)
    latency = state.metrics["latency_ms"]
    assert (state.samples, latency.count, latency.m2) == (5, 5, 2.8000000000000007)
    # its time-of-day buckets, packed
    assert season_bucket(latency, 0, CFG) == (1.0, 20454.0, 1.0, 100.0, 0.0)
    assert season_bucket(latency, 1, CFG) == (1.0, 20454.0, 1.0, 101.0, 0.0)
    assert season_bucket(latency, 2, CFG) is None
    # and stepping from it stores the new format, which reads back the same
    stepped = step("a1", state, [vitals(5, 100.0)], CFG).state
    assert not BASELINE.encode(stepped).startswith(b"{")
    assert BASELINE.decode(BASELINE.encode(stepped)) == stepped


def test_either_format_reads_as_json() -> None:
    state = BASELINE.decode(STORED_AS_JSON)
    assert json.loads(as_json(STORED_AS_JSON))["metrics"]["latency_ms"]["m2"] == 2.8000000000000007
    assert json.loads(as_json(BASELINE.encode(state)))["metrics"]["latency_ms"]["m2"] == 2.8000000000000007


@pytest.mark.parametrize(
    "raw", [b"\x93garbage", b'{"metrics": 5}', b'{"metrics": {"not_a_metric": {}}}', b"", b"\xc1"]
)
def test_bytes_that_are_not_a_state_are_a_clear_error(raw: bytes) -> None:
    with pytest.raises(ValueError, match="stored state does not fit AgentBaseline"):
        BASELINE.decode(raw)


def test_a_pydantic_state_is_stored_as_its_json() -> None:
    codec = StateCodec(TrustState)
    state = TrustState(score=72.5)
    raw = codec.encode(state)
    assert raw == state.model_dump_json().encode()
    assert codec.decode(raw) == state
    with pytest.raises(ValueError, match="stored state does not fit TrustState"):
        codec.decode(b"[1, 2]")


def test_a_state_model_must_be_a_pydantic_model_or_a_dataclass() -> None:
    with pytest.raises(TypeError):
        StateCodec(dict)
