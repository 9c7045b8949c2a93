"""Scoring a run's decisions against the simulator's ground truth. Pure: no I/O, no clock."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from schemas import GroundTruth, Intention, QuarantineDecision

RECALL_WINDOW_S = 10.0


@dataclass(frozen=True)
class Score:
    infected: tuple[str, ...]
    quarantined: tuple[str, ...]
    time_to_quarantine_s: dict[str, float]  # infected agent -> seconds from onset to its quarantine
    recall: float | None  # None when nobody was infected
    precision: float | None  # None when nobody was quarantined
    false_quarantines: tuple[str, ...]
    gate_leaks: int

    def ttq_stats(self) -> dict[str, float | None]:
        values = np.array(list(self.time_to_quarantine_s.values()))
        if values.size == 0:
            return {"p50": None, "p95": None, "max": None}
        return {
            "p50": float(np.percentile(values, 50)),
            "p95": float(np.percentile(values, 95)),
            "max": float(values.max()),
        }


def onsets(truth: Iterable[GroundTruth]) -> dict[str, datetime]:
    """Each infected agent's first infection start."""
    first: dict[str, datetime] = {}
    for event in truth:
        if event.phase == "start" and (event.agent_id not in first or event.occurred_at < first[event.agent_id]):
            first[event.agent_id] = event.occurred_at
    return first


def quarantine_periods(decisions: Iterable[QuarantineDecision]) -> dict[str, list[tuple[datetime, datetime | None]]]:
    """Per agent, the event-time spans it was quarantined: (from, until release or None)."""
    periods: dict[str, list[tuple[datetime, datetime | None]]] = {}
    for decision in sorted(decisions, key=lambda d: d.occurred_at):
        spans = periods.setdefault(decision.agent_id, [])
        open_span = bool(spans) and spans[-1][1] is None
        if decision.action == "quarantine" and not open_span:
            spans.append((decision.occurred_at, None))
        elif decision.action == "release" and open_span:
            spans[-1] = (spans[-1][0], decision.occurred_at)
    return periods


def gate_leaks(admitted: Iterable[Intention], periods: dict[str, list[tuple[datetime, datetime | None]]]) -> int:
    """Admitted intentions that an agent issued while it was quarantined."""
    leaks = 0
    for intention in admitted:
        for start, end in periods.get(intention.agent_id, ()):
            if intention.occurred_at > start and (end is None or intention.occurred_at < end):
                leaks += 1
                break
    return leaks


def score(
    truth: Iterable[GroundTruth], decisions: Iterable[QuarantineDecision], admitted: Iterable[Intention]
) -> Score:
    infected_at = onsets(truth)
    periods = quarantine_periods(decisions)
    quarantined = sorted(agent for agent, spans in periods.items() if spans)
    ttq: dict[str, float] = {}
    false = []
    for agent in quarantined:
        onset = infected_at.get(agent)
        after_onset = [start for start, _ in periods[agent] if onset is not None and start >= onset]
        if after_onset:
            ttq[agent] = (after_onset[0] - onset).total_seconds()
        else:
            false.append(agent)  # never infected, or quarantined only before its infection began
    caught = [agent for agent, seconds in ttq.items() if seconds <= RECALL_WINDOW_S]
    return Score(
        infected=tuple(sorted(infected_at)),
        quarantined=tuple(quarantined),
        time_to_quarantine_s=ttq,
        recall=len(caught) / len(infected_at) if infected_at else None,
        precision=len(ttq) / len(quarantined) if quarantined else None,
        false_quarantines=tuple(false),
        gate_leaks=gate_leaks(admitted, periods),
    )
