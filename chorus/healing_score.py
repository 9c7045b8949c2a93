"""Scoring the healing loop against the simulator's ground truth. Pure: no I/O, no clock.

Per infected agent: its first quarantine at or after its infection's onset, the first
verified cure of that quarantine (a `cured` HealingOutcome), and the healing actions
issued to it in between. Released uncured = releases of an agent whose infection was
still active (per sim.truth) at the release's event time; must be 0. Infections are
grouped into waves by onset (a gap of more than WAVE_GAP_S starts a new wave), so a run
with two waves of the same infections shows what immune memory changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from schemas import Event, GroundTruth, HealingAction, HealingOutcome, QuarantineDecision

WAVE_GAP_S = 30.0


@dataclass(frozen=True)
class Cure:
    agent_id: str
    mode: str
    onset: datetime
    quarantined_at: datetime | None
    cured_at: datetime | None  # verified
    actions: int  # healing actions issued between quarantine and verified cure (or the end of the run)
    truly_cured: bool  # the simulator's truth ended the infection before the verified cure


@dataclass(frozen=True)
class HealingScore:
    cases: tuple[Cure, ...]
    released_uncured: tuple[str, ...]
    waves: tuple[tuple[Cure, ...], ...]

    @staticmethod
    def figures(cases: Iterable[Cure]) -> dict:
        cases = list(cases)
        cured = [c for c in cases if c.cured_at is not None and c.quarantined_at is not None]
        times = np.array([(c.cured_at - c.quarantined_at).total_seconds() for c in cured])  # type: ignore[operator]
        return {
            "infections": len(cases),
            "quarantined": sum(c.quarantined_at is not None for c in cases),
            "cured": len(cured),
            "share_cured": len(cured) / len(cases) if cases else None,
            "time_to_cure_s": {
                "p50": float(np.percentile(times, 50)) if times.size else None,
                "max": float(times.max()) if times.size else None,
            },
            "actions_per_cure": float(np.mean([c.actions for c in cured])) if cured else None,
            "verified_but_not_truly_cured": sum(not c.truly_cured for c in cured),
        }

    def report(self) -> dict:
        return {
            **self.figures(self.cases),
            "released_uncured": len(self.released_uncured),
            "released_uncured_agents": list(self.released_uncured),
            "waves": [self.figures(w) for w in self.waves],
        }


def infections(truth: Iterable[GroundTruth]) -> dict[str, list[tuple[datetime, datetime | None, str, str | None]]]:
    """Per agent, its infections: (start, end or None, mode, cured_by)."""
    spans: dict[str, list[tuple[datetime, datetime | None, str, str | None]]] = {}
    for t in sorted(truth, key=lambda t: (t.occurred_at, t.phase != "end")):
        mine = spans.setdefault(t.agent_id, [])
        if t.phase == "start":
            mine.append((t.occurred_at, None, t.mode, None))
        elif mine and mine[-1][1] is None:
            start, _, mode, _ = mine[-1]
            mine[-1] = (start, t.occurred_at, mode, t.cured_by)
    return spans


def score_healing(truth: Iterable[GroundTruth], decisions: Iterable[QuarantineDecision], healing: Iterable[Event]) -> HealingScore:
    spans = infections(truth)
    decisions = sorted(decisions, key=lambda d: d.occurred_at)
    healing = list(healing)
    cured = sorted((e for e in healing if isinstance(e, HealingOutcome) and e.outcome == "cured"), key=lambda e: e.occurred_at)
    issued = [e for e in healing if isinstance(e, HealingAction) and e.status == "issued"]
    cases = []
    for agent, mine in sorted(spans.items()):
        for start, end, mode, _cured_by in mine:
            q = next((d for d in decisions if d.agent_id == agent and d.action == "quarantine" and d.occurred_at >= start), None)
            cure = None if q is None else next((o for o in cured if o.agent_id == agent and o.quarantine_id == q.event_id), None)
            upto = cure.occurred_at if cure is not None else None
            actions = 0 if q is None else sum(
                1 for a in issued
                if a.agent_id == agent and a.occurred_at >= q.occurred_at and (upto is None or a.occurred_at <= upto)
            )  # fmt: skip
            truly = cure is not None and end is not None and end <= cure.occurred_at
            cases.append(Cure(agent, mode, start, q.occurred_at if q else None, upto, actions, truly))
    released_uncured = []
    for d in decisions:
        if d.action != "release":
            continue
        for start, end, _mode, _ in spans.get(d.agent_id, ()):
            if start <= d.occurred_at and (end is None or end > d.occurred_at):
                released_uncured.append(d.agent_id)
                break
    return HealingScore(tuple(cases), tuple(released_uncured), _waves(cases))


def _waves(cases: list[Cure]) -> tuple[tuple[Cure, ...], ...]:
    waves: list[list[Cure]] = []
    last: datetime | None = None
    for c in sorted(cases, key=lambda c: c.onset):
        if last is None or (c.onset - last).total_seconds() > WAVE_GAP_S:
            waves.append([])
        waves[-1].append(c)
        last = c.onset
    return tuple(tuple(w) for w in waves)
