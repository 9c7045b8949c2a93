"""The conflict processor's per-resource step: windows kept as state, predicted at close or early."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.conflict.step import ConflictConfig, ResourceWindows, step
from schemas import ConflictPrediction, Intention

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CFG = ConflictConfig(window_s=5, lateness_s=1, capacities={"gpu": 50}, min_risk=0.3, early_risk=0.8, early_min_claims=5)
NO_EARLY = ConflictConfig(window_s=5, lateness_s=1, capacities={"gpu": 50}, min_risk=0.3, early_risk=1.0)


def claim(
    n: int, agent: str, t: float, amount: float = 2.0, priority: int = 5, action: str = "acquire", hold: float = 2.0
) -> Intention:
    return Intention(
        event_id=f"i{n}",
        occurred_at=T0 + timedelta(seconds=t),
        producer="sim",
        run_id="run",
        agent_id=agent,
        action=action,
        resource="gpu",
        amount=amount,
        priority=priority,
        hold_s=hold,
    )


def hoarding(start: float = 0.0) -> list[Intention]:
    fair = [claim(int(start * 100) + n, f"a{n % 5}", start + 0.1 * n) for n in range(10)]
    hog = [
        claim(int(start * 100) + 50 + n, "hog", start + 0.1 * n + 0.05, amount=30, priority=10, hold=90)
        for n in range(4)
    ]
    return sorted(fair + hog, key=lambda c: c.occurred_at)


def run(
    events: list[Intention], cfg: ConflictConfig, batch: int = 1000
) -> tuple[list[ConflictPrediction], ResourceWindows | None]:
    state: ResourceWindows | None = None
    out: list[ConflictPrediction] = []
    for i in range(0, len(events), batch):
        result = step("gpu", state, events[i : i + batch], cfg)
        out += [o.event for o in result.outputs]  # type: ignore[misc]
        if result.state is not None:
            # as the runtime does: the state goes through Redis as JSON between batches
            state = ResourceWindows.model_validate_json(result.state.model_dump_json())
    return out, state


def test_a_window_is_predicted_once_event_time_passes_its_end_plus_lateness() -> None:
    out, state = run(hoarding(), NO_EARLY)
    assert out == [] and state is not None and len(state.open) == 1
    out, _ = run(hoarding() + [claim(999, "a1", 6.5)], NO_EARLY)
    [p] = out
    assert p.most_aggressive == "hog" and p.risk > 0.7 and p.window_start == T0


def test_a_hoarder_is_predicted_early_before_the_window_closes_and_only_once() -> None:
    out, state = run(hoarding(), CFG, batch=3)
    [p] = out
    assert p.most_aggressive == "hog" and p.risk >= 0.8
    assert state is not None and len(state.predicted) == 1  # remembered across batches
    out, _ = run(hoarding() + [claim(999, "a1", 6.5)], CFG, batch=3)
    assert len(out) == 1


def test_early_predictions_do_not_depend_on_how_the_claims_were_batched() -> None:
    events = hoarding() + hoarding(5.0) + [claim(999, "a1", 20.0)]
    assert run(events, CFG, batch=1)[0] == run(events, CFG, batch=4)[0] == run(events, CFG, batch=1000)[0]


def test_a_calm_window_publishes_nothing_but_is_closed() -> None:
    calm = [claim(n, f"a{n % 5}", 0.1 * n, amount=1) for n in range(10)] + [claim(99, "a1", 7.0, amount=1)]
    out, state = run(calm, CFG)
    assert out == [] and state is not None and list(state.open) != [0]


def test_late_claims_are_counted_not_merged() -> None:
    _, state = run([claim(1, "a", 10.0), claim(2, "a", 1.0)], CFG)
    assert state is not None and state.late == 1


def test_a_redelivered_claim_is_counted_once() -> None:
    once, _ = run(hoarding() + [claim(999, "a1", 6.5)], NO_EARLY)
    twice, _ = run(hoarding() + hoarding() + [claim(999, "a1", 6.5)], NO_EARLY)
    assert once == twice


def test_releases_move_event_time_but_are_not_demand() -> None:
    out, _ = run(hoarding() + [claim(999, "a1", 6.5, action="release")], NO_EARLY)
    [p] = out
    assert p.demand == 10 * 2 * 2 / 5 + 4 * 30 * 20 / 5  # holds count up to 4 windows (Little's law)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.floats(0, 30), st.floats(0.5, 40), st.integers(1, 10)), min_size=1, max_size=40
    ),
    st.integers(1, 10),
)
def test_any_batching_gives_the_same_predictions(claims, batch) -> None:
    # in arrival order, out of event-time order included (late claims)
    events = [claim(n, f"a{agent}", t, amount, prio) for n, (agent, t, amount, prio) in enumerate(claims)]
    events.append(claim(10_000, "a0", 100.0))
    assert run(events, CFG, batch=batch)[0] == run(events, CFG, batch=1000)[0]
