"""The pure fleet: determinism, what each chaos mode looks like in the events, quarantine, cascades."""

from __future__ import annotations

import numpy as np
import pytest

from schemas import INTENTIONS, VITALS, GroundTruth, Intention, Vitals, decode
from simulator import Scenario, Simulation, TickBatch, load_scenario

RESOURCES = [{"name": "gpu", "capacity_per_agent": 3.0}, {"name": "db", "capacity_per_agent": 3.0}]


def make(chaos=(), agents=60, duration=60, seed=5, dependencies=2) -> Scenario:
    return Scenario.model_validate({
        "name": "unit", "seed": seed, "duration": duration,
        "agents": {"count": agents, "profiles": {"steady": 0.7, "bursty": 0.3}, "dependencies": dependencies},
        "resources": RESOURCES, "chaos": list(chaos),
    })


def run(sim: Simulation, quarantine: dict[int, list[tuple[str, bool]]] | None = None) -> list[TickBatch]:
    batches = []
    while not sim.done:
        batches.append(sim.step((quarantine or {}).get(sim.tick, [])))
    return batches


def intentions(batches: list[TickBatch]) -> list[Intention]:
    return [decode(Intention, raw) for b in batches for _, raw in b.intentions]


def vitals(batches: list[TickBatch]) -> list[Vitals]:
    return [decode(Vitals, raw) for b in batches for _, raw in b.vitals]


def truth(batches: list[TickBatch]) -> list[GroundTruth]:
    return [decode(GroundTruth, raw) for b in batches for _, raw in b.truth]


def second(event, scenario: Scenario) -> float:
    return (event.occurred_at - scenario.start).total_seconds()


def infected(batches: list[TickBatch]) -> str:
    starts = [t for t in truth(batches) if t.phase == "start"]
    assert len(starts) == 1
    return starts[0].agent_id


def mean_vital(events: list[Vitals], agent: str, metric: str, scenario: Scenario, start: float, end: float) -> float:
    values = [getattr(v, metric) for v in events if v.agent_id == agent and start < second(v, scenario) <= end]
    assert values
    return float(np.mean(values))


# --- determinism ---------------------------------------------------------------------------------------------------


def test_the_same_seed_and_scenario_give_the_same_event_stream():
    scenario = make([{"at": 10, "count": 2, "mode": "hoarder", "duration": 20}])
    first, again = run(Simulation(scenario, "r", gate=False)), run(Simulation(scenario, "r", gate=False))
    assert [(b.intentions, b.vitals, b.truth) for b in first] == [(b.intentions, b.vitals, b.truth) for b in again]


def test_another_seed_gives_another_stream():
    a = run(Simulation(make(seed=1), "r", gate=False))
    b = run(Simulation(make(seed=2), "r", gate=False))
    assert [x.intentions for x in a] != [x.intentions for x in b]


def test_another_run_id_changes_nothing_but_the_run_id():
    scenario = make([{"at": 10, "count": 1, "mode": "flood", "duration": 20}])
    one, two = run(Simulation(scenario, "run-one", gate=False)), run(Simulation(scenario, "run-two", gate=False))
    for extract in (intentions, vitals, truth):
        left, right = extract(one), extract(two)
        assert left and [e.model_dump(exclude={"run_id"}) for e in left] == [e.model_dump(exclude={"run_id"}) for e in right]
        assert {e.run_id for e in right} == {"run-two"}


def test_events_are_valid_unique_in_simulated_time_and_in_per_agent_order():
    scenario = make(duration=30)
    batches = run(Simulation(scenario, "r", gate=False))
    vs, ins = vitals(batches), intentions(batches)
    assert len(vs) == 60 * 30
    assert {second(v, scenario) for v in vs} == {float(s) for s in range(1, 31)}
    assert len({e.event_id for e in [*vs, *ins]}) == len(vs) + len(ins)
    assert all(0 <= second(i, scenario) < 30 for i in ins)
    last: dict[str, float] = {}
    for b in batches:
        for key, raw in [*b.intentions, *b.vitals]:
            spec = VITALS if b'"event_type":"vitals"' in raw else INTENTIONS
            event = decode(spec.model, raw)
            assert key == spec.key_of(event)
            assert second(event, scenario) >= last.get(event.agent_id, 0.0)
            last[event.agent_id] = second(event, scenario)


# --- chaos signatures ------------------------------------------------------------------------------------------------


def test_truth_records_each_infections_start_and_end_with_agent_mode_and_time():
    scenario = make([{"at": 10, "agents": ["agent-00004", "agent-00009"], "mode": "errors", "duration": 15}])
    records = truth(run(Simulation(scenario, "r", gate=False)))
    assert sorted((t.agent_id, t.phase, second(t, scenario), t.mode) for t in records) == [
        ("agent-00004", "end", 25.0, "errors"), ("agent-00004", "start", 10.0, "errors"),
        ("agent-00009", "end", 25.0, "errors"), ("agent-00009", "start", 10.0, "errors"),
    ]
    assert len({t.infection_id for t in records}) == 2 and {t.scenario for t in records} == {"unit"}


def test_an_infection_outlasting_the_run_has_only_a_start():
    records = truth(run(Simulation(make([{"at": 50, "count": 1, "mode": "latency"}]), "r", gate=False)))
    assert [t.phase for t in records] == ["start"]


def test_a_hoarder_claims_big_shares_at_top_priority_and_ends_up_holding_most_of_its_resource():
    scenario = make([{"at": 10, "count": 1, "mode": "hoarder", "duration": 40, "resource": "gpu"}])
    sim = Simulation(scenario, "r", gate=False)
    batches = run(sim)
    agent = infected(batches)
    claims = [i for i in intentions(batches) if i.agent_id == agent and i.action == "acquire" and 10 <= second(i, scenario) < 50]
    capacity = 3.0 * 60
    assert len(claims) >= 40
    assert all(c.priority == 10 and c.resource == "gpu" and c.amount >= 0.08 * capacity - 0.1 for c in claims)
    assert sim.manager.held(sim.index[agent], 0) > 0.5 * capacity


def test_a_flooder_issues_about_twenty_times_its_usual_intentions():
    scenario = make([{"at": 30, "count": 3, "mode": "flood", "duration": 30}])
    batches = run(Simulation(scenario, "r", gate=False))
    flooders = {t.agent_id for t in truth(batches)}
    acquisitions = [i for i in intentions(batches) if i.agent_id in flooders and i.action == "acquire"]
    before = sum(second(i, scenario) < 30 for i in acquisitions)
    during = sum(second(i, scenario) >= 30 for i in acquisitions)
    assert during >= 8 * max(before, 5)


@pytest.mark.parametrize(("mode", "metric", "check"), [
    ("latency", "latency_ms", lambda before, during: during >= 5 * before),
    ("errors", "error_rate", lambda before, during: during >= before + 0.3),
    ("flood", "requests_per_s", lambda before, during: during >= 10 * before),
])
def test_a_sick_agent_shows_its_mode_in_its_vitals(mode, metric, check):
    scenario = make([{"at": 30, "count": 1, "mode": mode, "duration": 30}])
    batches = run(Simulation(scenario, "r", gate=False))
    agent, vs = infected(batches), vitals(batches)
    assert check(mean_vital(vs, agent, metric, scenario, 0, 30), mean_vital(vs, agent, metric, scenario, 31, 60))


def test_a_deceptive_agent_claims_aggressively_while_its_vitals_stay_normal():
    scenario = make([{"at": 30, "count": 1, "mode": "deceptive", "duration": 30, "resource": "gpu"}])
    batches = run(Simulation(scenario, "r", gate=False))
    agent, vs = infected(batches), vitals(batches)
    for metric in Vitals.METRICS:
        before = [getattr(v, metric) for v in vs if v.agent_id == agent and second(v, scenario) <= 30]
        during = mean_vital(vs, agent, metric, scenario, 31, 60)
        assert min(before) - 0.01 <= during <= max(before) + 0.01, metric
    claims = [i for i in intentions(batches) if i.agent_id == agent and i.action == "acquire" and second(i, scenario) >= 30]
    assert len(claims) >= 30 and all(c.priority == 9 and c.amount >= 0.06 * 180 - 0.1 for c in claims)


def test_a_quarantined_agent_falls_silent_until_released_but_keeps_reporting_vitals():
    scenario = make()
    sim = Simulation(scenario, "r", gate=False)
    agent = "agent-00011"
    batches = run(sim, {10: [(agent, True)], 40: [(agent, False)]})
    times = [second(i, scenario) for i in intentions(batches) if i.agent_id == agent]
    assert any(t < 10 for t in times) and any(t >= 40 for t in times)
    assert not any(10 <= t < 40 for t in times)
    assert sum(v.agent_id == agent for v in vitals(batches)) == 60


def test_a_defiant_agent_ignores_its_quarantine():
    scenario = make([{"at": 5, "agents": ["agent-00011"], "mode": "defiant"}])
    batches = run(Simulation(scenario, "r", gate=False), {10: [("agent-00011", True), ("agent-00012", True)]})
    late = [i.agent_id for i in intentions(batches) if second(i, scenario) >= 10]
    assert late.count("agent-00011") >= 60
    assert "agent-00012" not in late


def test_quarantine_decisions_for_unknown_agents_are_counted_not_fatal():
    sim = Simulation(make(duration=2), "r", gate=False)
    sim.step([("agent-99999", True)])
    assert sim.ignored_inputs == 1


def test_quarantining_one_agent_leaves_the_others_random_draws_alone():
    scenario = make(duration=20)
    free = intentions(run(Simulation(scenario, "r", gate=False)))
    held = intentions(run(Simulation(scenario, "r", gate=False), {5: [("agent-00011", True)]}))

    def others(events: list[Intention]) -> list[tuple]:
        return [(e.agent_id, e.occurred_at, e.amount) for e in events if e.agent_id != "agent-00011" and e.action == "acquire"]

    assert others(free) == others(held)


# --- resources and cascades --------------------------------------------------------------------------------------------


def _degraded_share(name: str) -> tuple[float, Simulation, set[str]]:
    scenario = load_scenario(name).with_overrides(duration=70)
    sim = Simulation(scenario, "r", gate=False)
    batches = run(sim)
    sick = {t.agent_id for t in truth(batches)}
    vs = vitals(batches)
    degraded = set()
    for agent in sim.ids:
        if agent in sick:
            continue
        if mean_vital(vs, agent, "latency_ms", scenario, 50, 70) > 1.5 * mean_vital(vs, agent, "latency_ms", scenario, 0, 14):
            degraded.add(agent)
    return len(degraded) / (sim.n - len(sick)), sim, degraded


def test_without_an_immune_system_one_hoarder_degrades_a_share_of_healthy_agents_and_it_spreads():
    share, sim, degraded = _degraded_share("hoarder")
    clean_share, _, _ = _degraded_share("clean")
    assert share >= 0.15
    assert clean_share <= 0.02
    gpu = sim.resource_index["gpu-pool"]
    # Damage reaches agents that do not even use the hoarded resource, through their dependencies.
    assert any(sim.primary[sim.index[a]] != gpu for a in degraded)


def test_with_the_gate_only_admitted_intentions_are_granted():
    scenario = make(duration=5)
    gated = Simulation(scenario, "r", gate=True)
    first = gated.step()
    assert first.intentions and first.granted == 0 and first.denied == 0
    admitted = [decode(Intention, raw) for _, raw in first.intentions if b'"acquire"' in raw]
    second_tick = gated.step(admitted=admitted)
    assert second_tick.granted == len(admitted) > 0
    assert gated.step(admitted=[admitted[0].model_copy(update={"agent_id": "stranger"})]).granted == 0
    assert gated.ignored_inputs == 1


def test_count_based_chaos_infects_only_healthy_agents():
    scenario = make([{"at": 5, "count": 30, "mode": "latency"}, {"at": 6, "count": 30, "mode": "errors"}])
    records = truth(run(Simulation(scenario, "r", gate=False)))
    latency = {t.agent_id for t in records if t.mode == "latency"}
    errors = {t.agent_id for t in records if t.mode == "errors"}
    assert len(latency) == len(errors) == 30 and not latency & errors


def test_an_agent_reinfected_by_a_later_entry_has_its_first_infection_closed_in_the_truth():
    scenario = make([{"at": 5, "agents": ["agent-00003"], "mode": "latency"},
                     {"at": 20, "agents": ["agent-00003"], "mode": "errors", "duration": 10}])
    records = truth(run(Simulation(scenario, "r", gate=False)))
    assert [(t.mode, t.phase, second(t, scenario)) for t in records] == [
        ("latency", "start", 5.0), ("latency", "end", 20.0), ("errors", "start", 20.0), ("errors", "end", 30.0),
    ]


def test_the_degraded_healthy_count_sees_the_hoarders_victims_and_nobody_in_a_clean_fleet():
    share, sim, degraded_by_vitals = _degraded_share("hoarder")
    _, clean, _ = _degraded_share("clean")
    # The engine's own count agrees in size with what the vitals show, and a clean fleet has none.
    assert sim.degraded_healthy >= len(degraded_by_vitals) * 0.8 > 0
    assert clean.degraded_healthy == 0


def test_a_quarantined_agent_loses_what_it_holds_at_once():
    sim = Simulation(make(chaos=[{"at": 2, "count": 1, "mode": "hoarder"}]), "r", gate=False)
    hoarder = infected([sim.step() for _ in range(8)])
    index = sim.index[hoarder]
    assert any(holder == index for holder, _ in sim.manager.holdings())
    sim.step(quarantine=[(hoarder, True)])
    assert not any(holder == index for holder, _ in sim.manager.holdings())


# --- intensity dials ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "dial", "metric", "ratio"), [
    ("latency", {"factor": 2.0}, "latency_ms", (1.5, 3.0)),
    ("flood", {"factor": 3.0}, "requests_per_s", (2.0, 4.5)),
])
def test_a_dialled_down_infection_is_milder(mode, dial, metric, ratio):
    scenario = make([{"at": 30, "count": 1, "mode": mode, "duration": 30, **dial}], dependencies=0)
    batches = run(Simulation(scenario, "r", gate=False))
    agent, vs = infected(batches), vitals(batches)
    before = mean_vital(vs, agent, metric, scenario, 0, 30)
    during = mean_vital(vs, agent, metric, scenario, 31, 60)
    assert ratio[0] * before <= during <= ratio[1] * before


def test_a_ramped_infection_grows_to_full_strength_over_its_ramp():
    scenario = make([{"at": 20, "count": 1, "mode": "errors", "duration": 40, "error_rise": 0.4, "ramp_s": 20}])
    batches = run(Simulation(scenario, "r", gate=False))
    agent, vs = infected(batches), vitals(batches)
    early = mean_vital(vs, agent, "error_rate", scenario, 20, 25)
    late = mean_vital(vs, agent, "error_rate", scenario, 45, 60)
    assert early < late - 0.2


def test_a_dial_that_does_not_fit_the_mode_is_a_clear_error():
    with pytest.raises(ValueError, match="error_rise does not apply to mode latency"):
        make([{"at": 1, "count": 1, "mode": "latency", "error_rise": 0.1}])


def test_dependents_fail_over_from_a_quarantined_upstream_after_the_delay():
    # Everyone depends on the slow agent's neighbourhood in a tightly coupled fleet; with the slow agent
    # quarantined at t=20, its dependents stop inheriting its trouble failover_s later, and not before.
    def upstream_seen(failover):
        scenario = make([{"at": 10, "agents": ["agent-00003"], "mode": "latency"}], agents=20, dependencies=3)
        scenario = scenario.model_copy(update={"agents": scenario.agents.model_copy(update={"failover_s": failover})})
        sim = Simulation(scenario, "r", gate=False)
        batches = run(sim, {20: [("agent-00003", True)]})
        dependents = [i for i in range(20) if 3 in sim.upstream[i]]
        late = [v for v in vitals(batches) if second(v, scenario) > 40 and int(v.agent_id[-5:]) in dependents]
        return max(v.upstream_degraded for v in late)

    assert upstream_seen(None) > 0.2
    assert upstream_seen(10.0) < 0.2
