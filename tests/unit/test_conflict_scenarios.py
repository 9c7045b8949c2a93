"""The conflict fast path and the quarantine book on the simulator's own scenarios, in process.

The simulated fleet (seeded, no broker) produces its intentions tick by tick; they go
through the conflict step per resource and the predictions and intentions through the
quarantine book, in event-time order. No trust processor here: this checks what the
conflict path alone decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from processors.conflict.step import ConflictConfig, ResourceWindows, step
from processors.quarantine import QuarantineBook, QuarantinePolicy
from schemas import ConflictPrediction, GroundTruth, Intention, QuarantineDecision, decode
from simulator import Simulation, load_scenario

# The infections that show in claims; the others (latency, errors, flood) are baseline's to find.
CLAIM_MODES = ("hoarder", "deceptive", "defiant")


@dataclass
class Outcome:
    quarantined: list[QuarantineDecision]
    predictions: list[ConflictPrediction]
    infected_at: dict[str, float]  # agent -> event time (epoch s) its infection started
    modes: dict[str, str]  # agent -> infection mode


def replay(name: str) -> Outcome:
    scenario = load_scenario(name)
    sim = Simulation(scenario, "scenario", gate=False)
    cfg = ConflictConfig(capacities={r.name: r.capacity_for(scenario.agents.count) for r in scenario.resources})
    book = QuarantineBook(QuarantinePolicy(), "scenario")
    windows: dict[str, ResourceWindows | None] = {}
    out = Outcome([], [], {}, {})
    while not sim.done:
        batch = sim.step()
        for _, raw in batch.truth:
            truth = decode(GroundTruth, raw)
            if truth.phase == "start":
                out.infected_at.setdefault(truth.agent_id, truth.occurred_at.timestamp())
                out.modes.setdefault(truth.agent_id, truth.mode)
        intentions = [decode(Intention, raw) for _, raw in batch.intentions]
        for resource in sorted({i.resource for i in intentions}):
            result = step(resource, windows.get(resource), [i for i in intentions if i.resource == resource], cfg)
            windows[resource] = result.state or windows.get(resource)
            for output in result.outputs:
                out.predictions.append(output.event)  # type: ignore[arg-type]
                out.quarantined += [d for d in book.handle(output.event).decisions if d.action == "quarantine"]
        for intention in intentions:
            book.handle(intention)
    return out


def test_a_clean_fleet_has_nobody_quarantined_and_no_aggressor_named() -> None:
    out = replay("clean")
    assert out.quarantined == []
    assert all(p.most_aggressive is None for p in out.predictions)


@pytest.mark.parametrize("name", ["hoarder", "cascade", "mixed"])
def test_claim_hoarders_are_quarantined_within_10_s_of_simulated_time_and_no_healthy_agent_is(name: str) -> None:
    out = replay(name)
    assert out.quarantined, "nobody was quarantined"
    healthy = [d.agent_id for d in out.quarantined if d.agent_id not in out.infected_at]
    assert healthy == []
    first: dict[str, float] = {}
    for d in out.quarantined:
        first.setdefault(d.agent_id, d.occurred_at.timestamp() - out.infected_at[d.agent_id])
    claimers = [agent for agent, mode in out.modes.items() if mode in CLAIM_MODES]
    assert claimers
    assert {agent: first.get(agent) for agent in claimers} == {agent: pytest.approx(5, abs=5) for agent in claimers}
