"""Scoring the healing loop against ground truth."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chorus.healing_score import score_healing
from schemas import GroundTruth, HealingAction, HealingOutcome, QuarantineDecision

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def truth(agent: str, t: float, phase: str, cured_by: str | None = None) -> GroundTruth:
    return GroundTruth(event_id=f"g-{agent}-{phase}-{t}", occurred_at=at(t), producer="sim", agent_id=agent,
                       infection_id=f"inf-{agent}", mode="hoarder", phase=phase, scenario="s", cured_by=cured_by)  # fmt: skip


def decision(agent: str, t: float, action: str) -> QuarantineDecision:
    return QuarantineDecision(event_id=f"q-{agent}-{action}-{t}", occurred_at=at(t), producer="quarantine",
                              agent_id=agent, action=action, reason="recovered" if action == "release" else "low_trust")  # fmt: skip


def issued(agent: str, t: float, n: int) -> HealingAction:
    return HealingAction(event_id=f"h-{agent}-{n}", occurred_at=at(t), producer="healing", agent_id=agent,
                         condition="resource_hoarding", action="restart", status="issued", attempt=n, diagnosis_id="d")  # fmt: skip


def cured(agent: str, t: float, quarantine_id: str) -> HealingOutcome:
    return HealingOutcome(event_id=f"o-{agent}-{t}", occurred_at=at(t), producer="healing", agent_id=agent,
                          condition="resource_hoarding", action="reset_state", outcome="cured", attempt=2,
                          diagnosis_id="d", quarantine_id=quarantine_id)  # fmt: skip


def test_times_actions_waves_and_releases_of_agents_still_infected() -> None:
    qa, qb, qc = decision("a", 12, "quarantine"), decision("b", 13, "quarantine"), decision("c", 112, "quarantine")
    score = score_healing(
        [truth("a", 10, "start"), truth("a", 30, "end", "reset_state"), truth("b", 10, "start"),
         truth("c", 110, "start"), truth("c", 120, "end", "restart")],
        [qa, qb, qc, decision("a", 40, "release"), decision("b", 50, "release"), decision("c", 125, "release")],
        [issued("a", 16, 1), issued("a", 26, 2), cured("a", 40, qa.event_id), issued("b", 17, 1),
         issued("c", 116, 1), cured("c", 125, qc.event_id)],
    )  # fmt: skip
    report = score.report()
    assert report["released_uncured_agents"] == ["b"]  # b's infection never ended: its release was premature
    assert (report["infections"], report["cured"]) == (3, 2)
    assert report["time_to_cure_s"] == {"p50": 20.5, "max": 28.0}
    assert report["actions_per_cure"] == 1.5
    assert [(w["infections"], w["actions_per_cure"]) for w in report["waves"]] == [(2, 2.0), (1, 1.0)]
