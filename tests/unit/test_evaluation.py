"""Scoring decisions against ground truth: recall, precision, false quarantines, gate leaks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from chorus.evaluation import score
from schemas import GroundTruth, Intention, QuarantineDecision

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def infected(agent: str, seconds: float, phase: str = "start") -> GroundTruth:
    return GroundTruth(event_id=f"t-{agent}-{phase}", occurred_at=at(seconds), producer="sim", agent_id=agent,
                       infection_id=f"i-{agent}", mode="hoarder", phase=phase, scenario="test")  # fmt: skip


def decision(agent: str, seconds: float, action: str = "quarantine") -> QuarantineDecision:
    return QuarantineDecision(event_id=f"q-{agent}-{seconds}-{action}", occurred_at=at(seconds), producer="quarantine",
                              agent_id=agent, action=action, reason="low_trust")  # fmt: skip


def admitted(agent: str, seconds: float) -> Intention:
    return Intention(event_id=f"a-{agent}-{seconds}", occurred_at=at(seconds), producer="sim", agent_id=agent,
                     action="acquire", resource="gpu", amount=1)  # fmt: skip


def test_an_infected_agent_quarantined_within_ten_seconds_counts_for_recall_and_precision() -> None:
    result = score([infected("a", 5)], [decision("a", 12)], [])
    assert result.time_to_quarantine_s == {"a": 7.0}
    assert (result.recall, result.precision, result.false_quarantines) == (1.0, 1.0, ())


def test_a_late_quarantine_is_a_hit_for_precision_but_a_miss_for_recall() -> None:
    result = score([infected("a", 5)], [decision("a", 30)], [])
    assert (result.recall, result.precision) == (0.0, 1.0)
    assert result.ttq_stats()["max"] == 25.0


def test_a_healthy_agent_quarantined_is_a_false_quarantine() -> None:
    result = score([infected("a", 5)], [decision("a", 6), decision("b", 7)], [])
    assert result.false_quarantines == ("b",)
    assert result.precision == 0.5


def test_a_quarantine_before_the_infection_began_is_false() -> None:
    result = score([infected("a", 50)], [decision("a", 10)], [])
    assert result.false_quarantines == ("a",)
    assert result.recall == 0.0


def test_a_clean_run_has_no_recall_and_no_precision_to_speak_of() -> None:
    result = score([], [], [admitted("a", 1)])
    assert (result.recall, result.precision, result.gate_leaks) == (None, None, 0)
    assert result.ttq_stats() == {"p50": None, "p95": None, "max": None}


def test_intentions_admitted_while_quarantined_are_leaks_and_others_are_not() -> None:
    decisions = [decision("a", 10), decision("a", 20, "release")]
    leaks = [admitted("a", 15)]
    fine = [admitted("a", 5), admitted("a", 25), admitted("b", 15)]
    assert score([], decisions, leaks + fine).gate_leaks == 1


@given(
    st.lists(st.tuples(st.sampled_from("abcd"), st.integers(0, 60)), max_size=6),
    st.lists(st.tuples(st.sampled_from("abcde"), st.integers(0, 60), st.sampled_from(["quarantine", "release"])), max_size=10),
)
def test_recall_and_precision_are_ratios_and_every_quarantine_is_a_hit_or_false(infections, decisions) -> None:
    result = score([infected(a, s) for a, s in infections], [decision(a, s, act) for a, s, act in decisions], [])
    for ratio in (result.recall, result.precision):
        assert ratio is None or 0.0 <= ratio <= 1.0
    assert set(result.time_to_quarantine_s) | set(result.false_quarantines) == set(result.quarantined)
    assert all(seconds >= 0 for seconds in result.time_to_quarantine_s.values())


def test_a_quarantine_after_the_infection_ended_is_false_and_catches_nothing() -> None:
    truth = [infected("a", 5), infected("a", 40, "end")]
    result = score(truth, [decision("a", 45)], [])
    assert result.false_quarantines == ("a",) and result.late_quarantines == ("a",)
    assert (result.recall, result.precision) == (0.0, 0.0)


def test_an_infection_is_caught_only_while_active() -> None:
    truth = [infected("a", 5), infected("a", 40, "end")]
    result = score(truth, [decision("a", 8), decision("a", 20, "release"), decision("a", 50)], [])
    assert result.time_to_quarantine_s == {"a": 3.0} and result.recall == 1.0
    assert result.false_quarantines == ("a",)  # the second quarantine came after the infection ended


def test_pending_approvals_are_counted_healthy_and_infected() -> None:
    truth = [infected("a", 5)]
    pend = [decision("a", 6, "pending_approval"), decision("b", 6, "pending_approval")]
    result = score(truth, pend, [])
    assert (result.pending_infected, result.pending_healthy) == (1, 1)
    assert result.quarantined == ()


def test_intentions_admitted_between_onset_and_quarantine_are_leaked() -> None:
    truth = [infected("a", 5), infected("a", 60, "end")]
    admitted_ = [admitted("a", 4), admitted("a", 6), admitted("a", 9), admitted("a", 15), admitted("b", 7)]
    result = score(truth, [decision("a", 10)], admitted_)
    assert result.leaked_intentions == 2  # at 6 and 9: after onset, before the quarantine
    assert result.gate_leaks == 1  # at 15, while quarantined
