"""The whole immune system on a simulated fleet: real broker, real Redis, the four
processors as separate processes, the simulator gated by quarantine."""

from __future__ import annotations

import pytest

from chorus.evaluation import score
from chorus.pipeline import run_scenario
from simulator import load_scenario
from tests.services import Services

pytestmark = pytest.mark.integration

# Short runs: the hoarder starts at t=15 s; 45 s leaves it 30 s to be caught.
SPEED = 3.0
# The hoarder claims 8% of gpu-pool per acquisition and the pool scales with the fleet. At
# 60 agents its first window's demand is only ~60x a typical claimant's, the range a healthy
# agent's one-off window reaches in a fleet that small, so it was named in its second window,
# ~9.3 s after onset with no room for the pipeline's lag. At 100 agents (the scenario has
# 200) it stands out in its first window, as it does at full size.
HOARDER_AGENTS = 100


def test_the_hoarder_is_quarantined_within_10_s_of_onset_and_no_healthy_agent_is(
    services: Services, run_id: str
) -> None:
    scenario = load_scenario("hoarder").with_overrides(agents=HOARDER_AGENTS, duration=45)
    result = run_scenario(scenario, run_id, services.kafka, services.redis_url, speed=SPEED, watch_admitted=True)
    outcome = score(result.view.truth, result.view.decisions, result.view.admitted.values())

    assert len(outcome.infected) == 1
    assert outcome.recall == 1.0, f"time to quarantine: {outcome.time_to_quarantine_s}"
    assert outcome.false_quarantines == ()
    assert outcome.gate_leaks == 0
    assert result.view.admitted, "the gate admitted nothing: healthy agents were starved by the immune system"


def test_a_clean_fleet_has_nobody_quarantined(services: Services, run_id: str) -> None:
    scenario = load_scenario("clean").with_overrides(agents=60, duration=40)
    result = run_scenario(scenario, run_id, services.kafka, services.redis_url, speed=SPEED)

    assert [d for d in result.view.decisions if d.action != "release"] == []
    assert result.summary.produced["agent.vitals"] > 0
