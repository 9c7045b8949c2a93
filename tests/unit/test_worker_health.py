"""Liveness and readiness verdicts (processors/runtime/health.py): pure, so every case is cheap to state."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from processors.runtime.health import HealthState, WorkerHealth, verdict

STALL = 30.0


def consuming(**changes: object) -> HealthState:
    state = HealthState(consuming=True, loop_turned=100.0, assigned=4)
    for name, value in changes.items():
        setattr(state, name, value)
    return state


def test_an_idle_worker_whose_loop_turns_is_live_and_ready_however_long_since_its_last_event() -> None:
    assert verdict(consuming(loop_turned=10_000.0), now=10_001.0, stall_s=STALL).ready


def test_a_batch_in_flight_past_the_limit_is_not_live_nor_ready() -> None:
    v = verdict(consuming(batch_since=100.0, loop_turned=100.0), now=100.0 + STALL + 1, stall_s=STALL)
    assert not v.live and not v.ready and "in flight" in v.reasons[0]


def test_a_batch_in_flight_within_the_limit_is_live() -> None:
    assert verdict(consuming(batch_since=100.0), now=100.0 + STALL - 1, stall_s=STALL).live


def test_a_loop_that_stopped_turning_is_not_live() -> None:
    assert not verdict(consuming(loop_turned=100.0), now=100.0 + STALL + 1, stall_s=STALL).live


def test_starting_up_is_live_but_not_ready() -> None:
    v = verdict(HealthState(), now=1e6, stall_s=STALL)
    assert v.live and not v.ready and "not consuming" in v.reasons[0]


def test_no_partitions_or_a_failing_service_is_not_ready_but_live() -> None:
    assert verdict(consuming(assigned=0), now=100.0, stall_s=STALL).live
    assert not verdict(consuming(assigned=0), now=100.0, stall_s=STALL).ready
    v = verdict(consuming(failing={"redis": "connection refused"}), now=100.0, stall_s=STALL)
    assert v.live and not v.ready and v.reasons == ("redis failing: connection refused",)
    assert not verdict(consuming(), now=100.0, stall_s=STALL, extra_failures={"redis": "timeout"}).ready


def test_the_faust_engine_reports_no_turns_or_assignment_and_is_judged_on_its_batches() -> None:
    state = HealthState(consuming=True, loop_turned=None, assigned=None)
    assert verdict(state, now=1e9, stall_s=STALL).ready


def test_the_record_follows_the_shells_reports() -> None:
    now = [0.0]
    health = WorkerHealth(clock=lambda: now[0])
    health.redis_check = lambda: None
    assert health.verdict().live and not health.verdict().ready
    health.consuming(STALL, reports_turns=True, reports_assignment=True)
    health.assigned(8)
    assert health.verdict(probe_services=True).ready
    now[0] = 1.0
    health.turned()
    health.batch_started()
    health.failing("redis", "gone")
    now[0] = 1.0 + STALL - 0.5
    assert health.verdict().live and not health.verdict().ready
    assert health.seconds_in_flight() == STALL - 0.5
    now[0] = 1.0 + STALL + 1
    assert not health.verdict().live
    health.batch_done()
    health.turned()
    assert health.verdict().ready and health.seconds_in_flight() == 0.0
    health.redis_check = lambda: "ping failed: refused"
    assert not health.verdict(probe_services=True).ready and health.verdict().ready


@given(
    batch_age=st.floats(0, 1e4),
    turn_age=st.floats(0, 1e4),
    stall=st.floats(0.1, 1e3),
    assigned=st.integers(0, 64),
    failing=st.booleans(),
)
def test_live_exactly_when_nothing_is_stuck_and_ready_implies_live(
    batch_age: float, turn_age: float, stall: float, assigned: int, failing: bool
) -> None:
    now = 0.0  # so that now - (now - age) == age exactly
    state = HealthState(
        consuming=True,
        loop_turned=now - turn_age,
        batch_since=now - batch_age,
        assigned=assigned,
        failing={"redis": "x"} if failing else {},
    )
    v = verdict(state, now, stall)
    assert v.live == (batch_age <= stall and turn_age <= stall)
    assert not v.ready or v.live
    assert v.ready == (v.live and assigned > 0 and not failing)
