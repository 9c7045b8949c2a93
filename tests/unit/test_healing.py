"""The healing loop's pure parts: diagnosis, the case's verified recovery, immune memory's order."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.healing.diagnosis import AnomalySeen, ConflictSeen, diagnose
from processors.healing.memory import Stats, ranked
from processors.healing.policy import DEFAULT_ACTIONS, HealingPolicy, load_policy
from schemas import Diagnosis, HealingAction, HealingOutcome
from tests.healing_ward import (
    NORMAL,
    Ward,
    anomaly,
    at,
    attributed,
    baseline,
    claim,
    command,
    conflict,
    quarantine,
    release,
    vitals,
)

POLICY = HealingPolicy(action_timeout_s=10, verify_samples=3, diagnosis_delay_s=2, defiance_grace_s=3)
SICK_CPU = 0.6


def run_patient(ward: Ward, agent: str, t0: float, cures: dict[str, float], *, until: float = 200) -> float:
    """Quarantine a hoarder at t0 and tick its vitals; it turns healthy `cures[action]` s after an action that cures it."""
    ward.feed(baseline(agent, t0 - 20), conflict(agent, t0 - 2, t0 - 7), anomaly(agent, t0 - 1, "cpu", SICK_CPU))
    ward.feed(quarantine(agent, t0))
    healthy_from = float("inf")
    t = t0
    while t < t0 + until:
        t += 1
        outs = ward.feed(vitals(agent, t, cpu=NORMAL["cpu"] if t >= healthy_from else SICK_CPU))
        for e in outs:
            if isinstance(e, HealingAction) and e.agent_id == agent and e.status == "issued" and e.action in cures:
                healthy_from = min(healthy_from, t + cures[e.action])
            if isinstance(e, HealingOutcome) and e.agent_id == agent and e.outcome == "cured":
                ward.feed(release(agent, t))
                return t
    return t


def actions_for(ward: Ward, agent: str) -> list[str]:
    return [e.action for e in ward.of(HealingAction) if e.agent_id == agent and e.status == "issued"]


def test_a_hoarder_is_diagnosed_healed_verified_and_memory_makes_the_next_cure_cheaper() -> None:
    ward = Ward(POLICY)
    run_patient(ward, "h1", 30, {"reset_state": 2})
    d = [e for e in ward.of(Diagnosis) if e.agent_id == "h1"]
    assert [x.condition for x in d] == ["resource_hoarding"]
    assert actions_for(ward, "h1") == ["restart", "throttle", "reset_state"]
    outcomes = [(e.action, e.outcome) for e in ward.of(HealingOutcome) if e.agent_id == "h1"]
    assert outcomes == [("restart", "failed"), ("throttle", "failed"), ("reset_state", "cured")]
    cured = ward.of(HealingOutcome)[-1]
    assert cured.samples == POLICY.verify_samples and cured.time_to_cure_s is not None
    # The second hoarder: memory puts the action that cured first.
    run_patient(ward, "h2", 300, {"reset_state": 2})
    assert actions_for(ward, "h2") == ["reset_state"]
    record = {r.action: (r.cured, r.failed) for r in ward.memory("resource_hoarding")[-1].actions}
    assert record == {"restart": (0, 1), "throttle": (0, 1), "reset_state": (2, 0)}
    assert ward.states["agent:h2"].agent.case is None  # closed by the release


def test_a_cured_agent_infected_again_is_diagnosed_from_what_it_shows_now() -> None:
    # Found in `chorus eval --scenario healing`: a hoarder cured in wave 1 flooded in wave 2, inside the
    # evidence horizon, and its old aggressive claims made the flood a hoarding (three actions to a cure).
    ward = Ward(POLICY)
    cured_at = run_patient(ward, "h1", 30, {"reset_state": 2})
    t = cured_at + 20  # well within the evidence horizon of the wave-1 claims
    ward.feed(anomaly("h1", t, "requests_per_s", 15 * NORMAL["requests_per_s"]), quarantine("h1", t + 1, "critical_anomaly"))
    for k in range(2, 2 + int(POLICY.diagnosis_delay_s) + 2):
        ward.feed(vitals("h1", t + k, requests_per_s=15 * NORMAL["requests_per_s"]))
    assert [d.condition for d in ward.of(Diagnosis) if d.agent_id == "h1"] == ["resource_hoarding", "request_flood"]


def test_no_cure_without_a_baseline_to_compare_with() -> None:
    ward = Ward(POLICY)
    ward.feed(conflict("x", 8, 3), anomaly("x", 9, "cpu", SICK_CPU), quarantine("x", 10))
    for t in range(11, 80):
        ward.feed(vitals("x", t))
    assert not [e for e in ward.of(HealingOutcome) if e.outcome == "cured"]


def test_a_severe_case_waits_for_approval_and_a_rejected_one_stays_held_until_healed_by_hand() -> None:
    ward = Ward(POLICY)
    # Aggressive claims with healthy vitals: deception, a severe condition.
    ward.feed(baseline("d", 0), conflict("d", 18, 13), quarantine("d", 20))
    for t in range(21, 40):
        ward.feed(vitals("d", t))
    (diag,) = ward.of(Diagnosis)
    assert diag.condition == "deception" and diag.severe
    assert [(a.action, a.status) for a in ward.of(HealingAction)] == [("reset_state", "pending_approval")]
    assert not ward.of(HealingOutcome)
    ward.feed(command("d", 40, "reject"))
    for t in range(41, 120):
        ward.feed(vitals("d", t))
    assert [o.outcome for o in ward.of(HealingOutcome)] == ["rejected"]
    assert ward.states["agent:d"].agent.case.status == "rejected"
    ward.feed(command("d", 120, "heal"))
    for t in range(121, 130):
        ward.feed(vitals("d", t))
    assert [(o.action, o.outcome) for o in ward.of(HealingOutcome)] == [("reset_state", "rejected"), ("manual", "cured")]


def test_an_approved_action_of_an_operator_verified_condition_is_unverified_not_cured() -> None:
    ward = Ward(POLICY)
    ward.feed(baseline("d", 0), conflict("d", 18, 13), quarantine("d", 20))
    for t in range(21, 25):
        ward.feed(vitals("d", t))
    ward.feed(command("d", 25, "approve"))
    for t in range(26, 40):
        ward.feed(vitals("d", t))
    assert [(o.action, o.outcome) for o in ward.of(HealingOutcome)] == [("reset_state", "unverified")]
    # ... and the next action waits for approval again.
    assert [(a.action, a.status) for a in ward.of(HealingAction)][-1] == ("rollback", "pending_approval")


def test_claiming_while_held_is_rediagnosed_as_defiance() -> None:
    ward = Ward(POLICY)
    ward.feed(baseline("z", 0), anomaly("z", 9, "latency_ms", 2000.0), quarantine("z", 10, "critical_anomaly"))
    for t in range(11, 15):
        ward.feed(vitals("z", t, latency_ms=2000.0))
    assert ward.of(Diagnosis)[-1].condition == "latency_fault"
    ward.feed(conflict("z", 16, 15))
    last = ward.of(Diagnosis)[-1]
    assert (last.condition, last.previous) == ("defiance", "latency_fault")
    assert ward.of(HealingAction)[-1].status == "pending_approval"


@pytest.mark.parametrize(("blamed_on_the_fleet", "condition"), [(True, "deception"), (False, "resource_hoarding")])
def test_a_symptom_trust_blamed_on_the_fleet_is_no_evidence_of_the_agents_own_condition(
    blamed_on_the_fleet: bool, condition: str
) -> None:
    """A deceptive hoarder starved by contention a minute earlier is not a loaded hoarder: were it diagnosed
    as one, its healthy-looking vitals would verify a cure and release it, hoarding again."""
    ward = Ward(POLICY)
    starved = anomaly("d", 1, "queue_depth", 20.0)
    ward.feed(baseline("d", 0), starved)
    if blamed_on_the_fleet:
        ward.feed(attributed("d", 1, starved.event_id))
    ward.feed(conflict("d", 60, 55), quarantine("d", 61))
    for t in range(62, 66):
        ward.feed(vitals("d", t))
    assert ward.of(Diagnosis)[-1].condition == condition


# --- diagnosis ------------------------------------------------------------------------------------


def _a(metric: str, ratio: float, delta: float = 0.0, z: float = 10.0) -> AnomalySeen:
    return AnomalySeen(id=f"a-{metric}-{ratio}", at=at(5), metric=metric, zscore=z, ratio=ratio, delta=delta)


def test_diagnosis_names_each_infection_pattern() -> None:
    since = at(10)
    claim = ConflictSeen(id="c", at=at(8), window_start=at(3), aggressor=True)
    late = ConflictSeen(id="c2", at=at(14), window_start=at(11), aggressor=False)
    assert diagnose(since, "conflict_aggressor", [], [claim, late], []).condition == "defiance"
    assert diagnose(since, "conflict_aggressor", [_a("cpu", 2)], [claim], []).condition == "resource_hoarding"
    assert diagnose(since, "conflict_aggressor", [], [claim], []).condition == "deception"
    assert diagnose(since, "low_trust", [_a("requests_per_s", 20)], [], []).condition == "request_flood"
    assert diagnose(since, "low_trust", [_a("latency_ms", 50), _a("error_rate", 10, 0.3)], [], []).condition == "latency_fault"
    assert diagnose(since, "low_trust", [_a("latency_ms", 5), _a("error_rate", 50, 0.7)], [], []).condition == "error_burst"
    assert diagnose(since, "low_trust", [], [], []).condition == "unknown"


@given(st.permutations([_a("cpu", 2), _a("latency_ms", 5), _a("error_rate", 9, 0.5), _a("queue_depth", 3)]))
def test_diagnosis_does_not_depend_on_the_order_evidence_arrived_in(evidence) -> None:
    first = diagnose(at(10), "low_trust", evidence, [], [])
    assert first == diagnose(at(10), "low_trust", sorted(evidence, key=lambda a: a.id), [], [])


# --- properties -----------------------------------------------------------------------------------

KINDS = ("restart", "reset_state", "throttle", "rollback")
stats_st = st.dictionaries(
    st.sampled_from(KINDS), st.builds(Stats, cured=st.integers(0, 5), failed=st.integers(0, 5)), max_size=4
)


@given(st.permutations(KINDS).map(lambda p: tuple(p[:3])), stats_st)
def test_a_failed_action_is_never_chosen_first_while_an_untried_one_remains(actions, stats) -> None:
    first = ranked(actions, stats, {})[0]
    s = stats.get(first, Stats())
    untried = [a for a in actions if stats.get(a, Stats()).tried == 0]
    if untried:
        assert not (s.failed >= 1 and s.failed >= s.cured)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["restart", "throttle", "reset_state"]), min_size=1, max_size=3, unique=True),
       st.integers(1, 4))  # fmt: skip
def test_through_the_loop_a_failed_action_is_not_first_again_for_the_condition(curing, patients) -> None:
    """Whatever cures hoarding, no later hoarder starts with an action that has only failed while an untried one
    remains."""
    ward = Ward(POLICY)
    cures = {a: 2.0 for a in curing}
    for n in range(patients):
        agent = f"p{n}"
        before = {r.action: r for r in (ward.memory("resource_hoarding") or [None])[-1].actions} if ward.memory("resource_hoarding") else {}  # noqa: E501
        run_patient(ward, agent, 100 + 300 * n, cures, until=150)
        first = actions_for(ward, agent)[0]
        untried = [a for a in DEFAULT_ACTIONS["resource_hoarding"] if a not in before or before[a].tried == 0]
        if untried and first in before:
            assert not (before[first].failed >= 1 and before[first].cured <= before[first].failed)


vital_seq = st.lists(st.booleans(), min_size=5, max_size=60)


SICK = {"cpu": 0.95, "latency_ms": NORMAL["latency_ms"] * 30, "requests_per_s": NORMAL["requests_per_s"] * 30}


@settings(max_examples=80, deadline=None)
@given(vital_seq, st.lists(st.integers(0, 59), max_size=4), st.sampled_from(sorted(SICK)))
def test_no_cure_without_enough_consecutive_normal_samples_after_the_action(healthy, claims_at, metric) -> None:
    ward = Ward(POLICY)
    ward.feed(baseline("a", 0), anomaly("a", 9, metric, SICK[metric]), quarantine("a", 10, "low_trust"))
    streak, claimed, action_id = 0, False, None
    for i, ok in enumerate(healthy):
        t = 11 + i
        issued = [e for e in ward.published if isinstance(e, HealingAction) and e.status == "issued"]
        if issued and issued[-1].event_id != action_id:
            action_id, streak, claimed = issued[-1].event_id, 0, False
        if i in claims_at:
            ward.feed(conflict("a", t, t - 1, aggressor=False))
            # a claim counts once the agent surely knows it is held (the grace after the quarantine at 10)
            held_from = at(10) + timedelta(seconds=POLICY.defiance_grace_s)
            claimed = claimed or (bool(issued) and at(t - 1) >= max(issued[-1].occurred_at, held_from))
        outs = ward.feed(vitals("a", t, **({} if ok else {metric: SICK[metric]})))
        streak = streak + 1 if ok and issued and at(t) > issued[-1].occurred_at and not claimed else 0
        for e in outs:
            if isinstance(e, HealingOutcome) and e.outcome == "cured":
                assert streak >= POLICY.verify_samples


@settings(max_examples=80, deadline=None)
@given(vital_seq, st.integers(1, POLICY.verify_samples), st.booleans(),
       st.lists(st.sampled_from(["approve", "reject", "release", "quarantine"]), max_size=3))  # fmt: skip
def test_a_defiant_agent_is_never_cured_without_an_operator_heal(healthy, every, via_conflicts, commands) -> None:
    """A defiant agent claims while held (here at least once every `verify_samples` seconds, as the simulator's
    does several times a second); whatever its vitals and whatever else operators do, only `heal` could cure it."""
    ward = Ward(POLICY)
    ward.feed(baseline("d", 0), quarantine("d", 10, "low_trust"))
    for i, ok in enumerate(healthy):
        t = 11 + i
        if i % every == 0:
            ward.feed(conflict("d", t, t - 0.5) if via_conflicts else claim("d", t - 0.5))
        if commands and i % 7 == 3:
            ward.feed(command("d", t, commands.pop()))
        ward.feed(vitals("d", t, **({} if ok else {"cpu": SICK_CPU})))
    assert not [e for e in ward.of(HealingOutcome) if e.outcome == "cured"]


def test_claims_while_held_are_defiance_at_once() -> None:
    ward = Ward(POLICY)
    # A claim within the grace (the fleet had not heard yet) is not defiance; one after it is.
    ward.feed(baseline("z", 0), quarantine("z", 10, "low_trust"), claim("z", 10.5), claim("z", 13.5))
    for t in range(11, 16):
        ward.feed(vitals("z", t))
    assert [d.condition for d in ward.of(Diagnosis)] == ["defiance"]


def test_policy_overrides_merge_into_the_defaults() -> None:
    policy = load_policy('{"actions": {"request_flood": ["throttle"]}, "verify_samples": 7}')
    assert policy.actions["request_flood"] == ("throttle",)
    assert policy.actions["resource_hoarding"] == DEFAULT_ACTIONS["resource_hoarding"]
    assert policy.verify_samples == 7


def test_claims_before_the_quarantine_reached_the_agent_are_not_defiance() -> None:
    ward = Ward(POLICY)
    ward.feed(baseline("f", 0), anomaly("f", 9, "requests_per_s", 300.0), quarantine("f", 10, "critical_anomaly"))
    ward.feed(*[claim("f", 10 + k / 4) for k in range(1, 12)])  # the fleet hears of it ~3 s late
    cured_from = None
    for t in range(11, 60):
        outs = ward.feed(vitals("f", t, **({} if cured_from and t >= cured_from else {"requests_per_s": 300.0})))
        if any(isinstance(e, HealingAction) and e.action == "throttle" for e in outs):
            cured_from = t + 2
    assert [d.condition for d in ward.of(Diagnosis)] == ["request_flood"]
    assert [(o.action, o.outcome) for o in ward.of(HealingOutcome)] == [("restart", "failed"), ("throttle", "cured")]
