"""Simulated agents obey healing actions: the right action cures with its probability and delay,
the cure is ground truth on sim.truth, nothing but an operator cures defiance."""

from __future__ import annotations

from schemas import GroundTruth, decode
from simulator import Scenario, Simulation

RESOURCES = [{"name": "gpu", "capacity_per_agent": 3.0}]


def make(mode: str, healing: dict | None = None) -> Scenario:
    data = {
        "name": "heal", "seed": 3, "duration": 40,
        "agents": {"count": 20, "profiles": {"steady": 1.0}},
        "resources": RESOURCES, "chaos": [{"at": 2, "mode": mode, "agents": ["agent-00004"]}],
    }  # fmt: skip
    if healing is not None:
        data["healing"] = healing
    return Scenario.model_validate(data)


def run(sim: Simulation, actions: dict[int, list[tuple[str, str]]]) -> list[GroundTruth]:
    truth = []
    while not sim.done:
        batch = sim.step(healing=actions.get(sim.tick, []))
        truth += [decode(GroundTruth, raw) for _, raw in batch.truth]
    return truth


def ends(truth: list[GroundTruth]) -> list[tuple[float, str | None]]:
    return [((t.occurred_at - truth[0].occurred_at).total_seconds(), t.cured_by) for t in truth if t.phase == "end"]


def test_the_right_action_cures_after_the_delay_and_says_so_on_the_truth() -> None:
    sure = {"cures": {"reset_state": {"hoarder": 1.0}, "restart": {"latency": 1.0}}, "delay": 3.0}
    sim = Simulation(make("hoarder", sure), "r")
    truth = run(sim, {10: [("agent-00004", "restart")], 20: [("agent-00004", "reset_state")]})
    assert ends(truth) == [(21.0, "reset_state")]  # 20 + 3 ticks, minus the onset at 2
    assert sim.mode[4] == 0


def test_nothing_but_an_operator_cures_defiance_with_the_default_responses() -> None:
    every = [("agent-00004", a) for a in ("restart", "throttle", "reset_state", "rollback")]
    sim = Simulation(make("defiant"), "r")
    assert ends(run(sim, {t: every for t in range(5, 30)})) == []
    sim = Simulation(make("defiant"), "r")
    assert [c for _, c in ends(run(sim, {10: [("agent-00004", "manual")]}))] == ["manual"]


def test_actions_that_cure_nothing_change_nothing_in_the_run() -> None:
    """Healing draws from generators of its own: an action that cures nothing leaves the run byte-identical."""
    outputs = []
    for actions in ({}, {8: [("agent-00004", "throttle")], 9: [("agent-00007", "restart")]}):
        sim = Simulation(make("hoarder"), "r")
        out = []
        while not sim.done:
            batch = sim.step(healing=actions.get(sim.tick, []))
            out += batch.intentions + batch.vitals + batch.truth
        outputs.append(out)
    assert outputs[0] == outputs[1]


def test_a_probability_below_one_sometimes_fails() -> None:
    half = {"cures": {"reset_state": {"hoarder": 0.5}}, "delay": 0.0}
    cured = 0
    for seed in range(30):
        scenario = make("hoarder", half).model_copy(update={"seed": seed})
        sim = Simulation(scenario, "r")
        cured += bool(ends(run(sim, {5: [("agent-00004", "reset_state")]})))
    assert 5 < cured < 25
