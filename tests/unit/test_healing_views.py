"""Healing in the operator's story (`chorus explain`, the API's /agents/AGENT): diagnoses, actions,
outcomes, and what immune memory learned about the agent's conditions."""

from __future__ import annotations

from chorus import views
from chorus.ledger import Ledger
from chorus.operator_view import explain_lines
from processors.healing.memory import MemoryState, Stats, snapshot
from processors.healing.policy import HealingPolicy
from tests.healing_ward import RUN, Ward, anomaly, baseline, conflict, quarantine, release, vitals


def test_explain_tells_the_healing_and_the_memory_of_the_agents_condition() -> None:
    ward = Ward(HealingPolicy(action_timeout_s=10, verify_samples=3, diagnosis_delay_s=2, defiance_grace_s=3))
    ward.feed(baseline("h", 0), conflict("h", 8, 3), anomaly("h", 9, "cpu", 0.6), quarantine("h", 10))
    for t in range(11, 60):
        ward.feed(vitals("h", t, cpu=0.6 if t < 40 else 0.3))
    ward.feed(release("h", 60))
    ledger = Ledger(RUN)
    for i, e in enumerate(ward.published):
        ledger.add("t", 0, i, 1000 + i, e)
    story = views.explain(RUN, "h", ledger.of_agent("h"), [], lambda _i: None, None, ledger.memory())
    assert any("diagnosis resource_hoarding" in line for line in story.healing)
    assert any("restart failed" in line for line in story.healing)
    assert {r.action: r.failed for r in story.memory["resource_hoarding"]}["restart"] == 1
    text = "\n".join(explain_lines(story))
    assert "healing (" in text and "immune memory of resource_hoarding" in text


def test_the_latest_memory_per_condition_wins() -> None:
    policy = HealingPolicy()
    state = MemoryState(stats={"restart": Stats(failed=1)})
    ward = Ward(policy)
    ward.feed(baseline("x", 0))
    ledger = Ledger(RUN)
    first = ward.feed(quarantine("x", 1))  # nothing published yet; memory events come from outcomes
    assert first == []
    ledger.add("t", 0, 0, 1, snapshot_of(policy, state, "o1"))
    state.stats["restart"].cured = 5
    ledger.add("t", 0, 1, 2, snapshot_of(policy, state, "o2"))
    assert {r.action: r.cured for r in ledger.memory()["resource_hoarding"].actions}["restart"] == 5


def snapshot_of(policy, state, cause_id):  # noqa: ANN001, ANN201
    from schemas import HealingOutcome

    cause = HealingOutcome(event_id=cause_id, occurred_at=vitals("x", 1).occurred_at, producer="healing",
                           run_id=RUN, agent_id="x", condition="resource_hoarding", action="restart",
                           outcome="cured", attempt=1, diagnosis_id="d", quarantine_id="q")  # fmt: skip
    return snapshot("resource_hoarding", state, policy, cause)
