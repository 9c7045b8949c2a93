"""The conflict fast path: hawk/dove arithmetic, prediction of one window, windows on event time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.conflict.game import at_least_two, equilibrium_escalation, hawk_dove, mixed
from processors.conflict.predict import ConflictParams, Window, predict
from processors.conflict.windows import WindowBuffer
from schemas import ConflictPrediction, Intention, decode, encode

T0 = datetime(2026, 1, 1, tzinfo=UTC)
WINDOW = Window("run", "gpu", T0, T0 + timedelta(seconds=5))


def claim(
    n: int,
    agent: str,
    amount: float,
    *,
    priority: int = 5,
    hold: float | None = 1.0,
    at: float | None = None,
    action: str = "acquire",
    resource: str = "gpu",
) -> Intention:
    return Intention(
        event_id=f"i-{n}",
        occurred_at=T0 + timedelta(seconds=n * 0.01 if at is None else at),
        producer="sim",
        run_id="run",
        agent_id=agent,
        action=action,
        resource=resource,
        amount=amount,
        priority=priority,
        hold_s=hold,
    )


def fair_fleet(amount: float, agents: int = 5, rounds: int = 4) -> list[Intention]:
    return [claim(i, f"a{i % agents}", amount) for i in range(agents * rounds)]


def with_hoarder(fleet: list[Intention], amount: float, claims: int = 5) -> list[Intention]:
    return fleet + [claim(1000 + i, "hog", amount, priority=9, hold=30) for i in range(claims)]


# --- hawk/dove -------------------------------------------------------------------------


def test_mixed_equilibrium_is_value_over_cost_when_fighting_costs_more_than_the_prize() -> None:
    assert equilibrium_escalation(1.0, 4.0) == pytest.approx(0.25)


def test_hawk_is_dominant_when_the_prize_is_worth_the_fight() -> None:
    assert equilibrium_escalation(1.0, 0.5) == 1.0


def test_deadlock_needs_two_hawks_and_starvation_a_hawk_and_a_dove() -> None:
    assert at_least_two([1.0, 1.0, 0.0]) == pytest.approx(1.0)
    assert at_least_two([1.0, 0.0, 0.0]) == pytest.approx(0.0)
    assert mixed([1.0, 0.0]) == pytest.approx(1.0)
    assert mixed([0.0, 0.0]) == pytest.approx(0.0)
    assert at_least_two([0.5, 0.5]) == pytest.approx(0.25)


def test_conflict_cost_grows_with_load_so_escalation_at_equilibrium_falls() -> None:
    assert hawk_dove(2.0, 2.0, [0.1, 0.1]).p_escalate < hawk_dove(1.0, 2.0, [0.1, 0.1]).p_escalate


@given(st.lists(st.floats(0, 1), min_size=0, max_size=30))
def test_deadlock_and_starvation_are_probabilities(ps: list[float]) -> None:
    assert 0.0 <= at_least_two(ps) <= 1.0
    assert 0.0 <= mixed(ps) <= 1.0


# --- one window --------------------------------------------------------------------------


def test_a_hoarder_on_an_overloaded_resource_is_high_risk_and_named_most_aggressive() -> None:
    p = predict(WINDOW, 100.0, with_hoarder(fair_fleet(5.0), 40.0))
    assert p is not None
    assert p.risk > 0.7
    assert p.most_aggressive == "hog"
    assert p.failure_mode == "hoarding"
    assert p.affected[0].agent_id == "hog" and p.affected[0].aggressiveness > 0.5
    assert any("hog" in action for action in p.recommended_actions)


def test_a_fair_fleet_under_overload_is_contention_without_an_aggressor() -> None:
    p = predict(WINDOW, 100.0, fair_fleet(10.0))
    assert p is not None
    assert p.most_aggressive is None
    assert p.risk <= 0.7
    assert all(a.aggressiveness == 0.0 for a in p.affected)


def test_demand_well_within_capacity_carries_no_risk() -> None:
    p = predict(WINDOW, 1000.0, with_hoarder(fair_fleet(1.0), 10.0))
    assert p is not None and p.risk == 0.0 and p.failure_mode == "none"


def test_more_claims_give_more_confidence() -> None:
    few = predict(WINDOW, 10.0, fair_fleet(5.0, rounds=1))
    many = predict(WINDOW, 10.0, fair_fleet(5.0, rounds=6))
    assert few is not None and many is not None and few.confidence < many.confidence


def test_a_window_of_releases_only_predicts_nothing() -> None:
    assert predict(WINDOW, 10.0, [claim(1, "a", 5.0, action="release")]) is None


def test_the_prediction_takes_id_and_time_from_its_causes_never_the_clock() -> None:
    claims = with_hoarder(fair_fleet(5.0), 40.0)
    p = predict(WINDOW, 100.0, claims)
    assert p is not None
    assert p.occurred_at == max(c.occurred_at for c in claims)
    assert set(p.causation_ids) <= {c.event_id for c in claims}
    assert p.causation_ids[0].startswith("i-10")  # the aggressor's claims come first


def test_the_prediction_survives_the_wire() -> None:
    p = predict(WINDOW, 100.0, with_hoarder(fair_fleet(5.0), 40.0))
    assert p is not None and decode(ConflictPrediction, encode(p)) == p


claims_strategy = st.lists(
    st.builds(
        lambda n, agent, amount, prio, hold: claim(n, f"a{agent}", amount, priority=prio, hold=hold),
        st.integers(0, 400),
        st.integers(0, 12),
        st.floats(0.1, 100),
        st.integers(1, 10),
        st.one_of(st.none(), st.floats(0.1, 60)),
    ),
    min_size=1,
    max_size=60,
    unique_by=lambda c: c.event_id,
)


@settings(max_examples=150, deadline=None)
@given(claims_strategy, st.floats(1, 500), st.randoms(use_true_random=False))
def test_the_prediction_is_deterministic_and_independent_of_arrival_order(claims, capacity, rnd) -> None:
    shuffled = list(claims)
    rnd.shuffle(shuffled)
    assert predict(WINDOW, capacity, claims) == predict(WINDOW, capacity, shuffled)


@settings(max_examples=150, deadline=None)
@given(claims_strategy, st.floats(1, 500))
def test_shares_add_up_and_the_named_aggressor_is_the_most_aggressive_claimant(claims, capacity) -> None:
    p = predict(WINDOW, capacity, claims, ConflictParams())
    assert p is not None
    held = [c.amount * (5.0 if c.hold_s is None else min(c.hold_s, 20.0)) / 5.0 for c in claims]
    assert p.demand == pytest.approx(sum(held))  # Little's law, holds capped at 4 windows
    if len(p.affected) == len({c.agent_id for c in claims}):
        assert sum(a.share for a in p.affected) == pytest.approx(1.0)
    top = max(a.aggressiveness for a in p.affected)
    if p.most_aggressive is not None:
        assert p.affected[0].agent_id == p.most_aggressive and p.affected[0].aggressiveness == top


@settings(max_examples=100, deadline=None)
@given(claims_strategy, st.floats(1, 500), st.floats(1.01, 4))
def test_more_load_on_the_same_claims_never_lowers_the_risk(claims, capacity, factor) -> None:
    low, high = predict(WINDOW, capacity * factor, claims), predict(WINDOW, capacity, claims)
    assert low is not None and high is not None
    assert high.risk >= low.risk - 1e-12


# --- windows -----------------------------------------------------------------------------


def test_windows_close_only_when_event_time_passes_their_end_plus_lateness() -> None:
    buf = WindowBuffer(size_s=5, lateness_s=1)
    assert buf.add(claim(1, "a", 1, at=1.0))
    assert list(buf.close_due()) == []
    buf.add(claim(2, "a", 1, at=5.9))  # next window; watermark 5.9 < 5 + 1
    assert list(buf.close_due()) == []
    buf.add(claim(3, "b", 1, at=6.0))
    closed = list(buf.close_due())
    assert [(w.resource, w.start, [c.event_id for c in cs]) for w, cs in closed] == [("gpu", T0, ["i-1"])]


def test_a_claim_for_a_closed_window_is_reported_late() -> None:
    buf = WindowBuffer(size_s=5, lateness_s=0)
    buf.add(claim(1, "a", 1, at=12.0))
    list(buf.close_due())
    assert buf.add(claim(2, "a", 1, at=1.0)) is False


def test_windows_are_per_resource_and_run() -> None:
    buf = WindowBuffer(size_s=5)
    buf.add(claim(1, "a", 1, at=1.0, resource="gpu"))
    buf.add(claim(2, "a", 1, at=1.5, resource="db"))
    buf.add(claim(3, "a", 1, at=30.0, resource="db"))
    assert sorted(w.resource for w, _ in buf.close_due()) == ["db", "gpu"]
    assert buf.open_windows == 1


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 100), min_size=1, max_size=50), st.floats(0.5, 10), st.floats(0, 3))
def test_every_buffered_claim_comes_out_exactly_once_in_its_own_window(times, size, lateness) -> None:
    buf = WindowBuffer(size_s=size, lateness_s=lateness)
    accepted, out = [], []
    for n, at in enumerate(times):
        c = claim(n, "a", 1, at=at)
        if buf.add(c):
            accepted.append(c.event_id)
        for w, cs in buf.close_due():
            assert all(w.start <= c.occurred_at < w.end for c in cs)
            out.extend(c.event_id for c in cs)
    buf.watermark = T0 + timedelta(days=1)
    out.extend(c.event_id for _, cs in buf.close_due() for c in cs)
    assert sorted(out) == sorted(accepted)
