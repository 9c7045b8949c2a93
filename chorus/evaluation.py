"""Scoring a run's decisions against the simulator's ground truth. Pure: no I/O, no clock.

Definitions (the README's "How `chorus eval` scores" repeats them):
- an infection is active from its `start` to its `end` truth event (open-ended without one);
- an infected agent is caught when a quarantine of it begins while one of its infections is
  active, within RECALL_WINDOW_S of that infection's onset; recall = caught / infected;
- a quarantine that begins while none of the agent's infections is active (a healthy agent,
  before its infection, or after it ended) is a false one; precision = agents quarantined
  while infected / agents quarantined;
- time to quarantine: event time from onset to the first quarantine while active;
- pending approvals: `pending_approval` decisions, split by whether the agent was infected
  (active) at the time;
- leaked intentions: intentions of an infected agent admitted by the gate after its onset
  and before its first quarantine (or its infection's end, if never quarantined);
- gate leaks: intentions admitted while their agent was quarantined.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from schemas import GroundTruth, Intention, QuarantineDecision

RECALL_WINDOW_S = 10.0

Span = tuple[datetime, datetime | None]


@dataclass(frozen=True)
class Score:
    infected: tuple[str, ...]
    quarantined: tuple[str, ...]
    time_to_quarantine_s: dict[str, float]  # infected agent -> seconds from onset to its quarantine while active
    recall: float | None  # None when nobody was infected
    precision: float | None  # None when nobody was quarantined
    false_quarantines: tuple[str, ...]
    gate_leaks: int
    pending_healthy: int = 0
    pending_infected: int = 0
    leaked_intentions: int = 0
    late_quarantines: tuple[str, ...] = field(default=())  # infected agents quarantined only after their infection

    def ttq_stats(self) -> dict[str, float | None]:
        return stats(list(self.time_to_quarantine_s.values()))


def stats(values: list[float]) -> dict[str, float | None]:
    arr = np.array(values, dtype=float)
    if arr.size == 0:
        return {"p50": None, "p95": None, "max": None}
    return {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)), "max": float(arr.max())}


def onsets(truth: Iterable[GroundTruth]) -> dict[str, datetime]:
    """Each infected agent's first infection start."""
    return {agent: spans[0][0] for agent, spans in infection_spans(truth).items()}


def infection_spans(truth: Iterable[GroundTruth]) -> dict[str, list[Span]]:
    """Per agent, its infections' active spans (start, end or None), in order of start."""
    starts: dict[tuple[str, str], datetime] = {}
    ends: dict[tuple[str, str], datetime] = {}
    for event in truth:
        key = (event.agent_id, event.infection_id)
        if event.phase == "start":
            starts[key] = min(starts.get(key, event.occurred_at), event.occurred_at)
        else:
            ends[key] = max(ends.get(key, event.occurred_at), event.occurred_at)
    spans: dict[str, list[Span]] = {}
    for key, start in starts.items():
        spans.setdefault(key[0], []).append((start, ends.get(key)))
    return {agent: sorted(s, key=lambda span: span[0]) for agent, s in spans.items()}


def active(spans: list[Span], at: datetime) -> Span | None:
    return next((s for s in spans if s[0] <= at and (s[1] is None or at < s[1])), None)


def quarantine_periods(decisions: Iterable[QuarantineDecision]) -> dict[str, list[Span]]:
    """Per agent, the event-time spans it was quarantined: (from, until release or None)."""
    periods: dict[str, list[Span]] = {}
    for decision in sorted(decisions, key=lambda d: d.occurred_at):
        spans = periods.setdefault(decision.agent_id, [])
        open_span = bool(spans) and spans[-1][1] is None
        if decision.action == "quarantine" and not open_span:
            spans.append((decision.occurred_at, None))
        elif decision.action == "release" and open_span:
            spans[-1] = (spans[-1][0], decision.occurred_at)
    return periods


def gate_leaks(admitted: Iterable[Intention], periods: dict[str, list[Span]]) -> int:
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
    decisions = list(decisions)
    infections = infection_spans(truth)
    periods = quarantine_periods(decisions)
    quarantined = sorted(agent for agent, spans in periods.items() if spans)
    ttq: dict[str, float] = {}
    false, late = [], []
    for agent in quarantined:
        spans = infections.get(agent, [])
        hits = [(start, active(spans, start)) for start, _ in periods[agent]]
        if any(span is None for _, span in hits):
            false.append(agent)  # never infected, before its infection, or after it ended
        caught = [(start, span) for start, span in hits if span is not None]
        if caught:
            start, span = caught[0]
            ttq[agent] = (start - span[0]).total_seconds()
        elif spans:
            late.append(agent)
    caught_in_time = [agent for agent, seconds in ttq.items() if seconds <= RECALL_WINDOW_S]
    pending = [d for d in decisions if d.action == "pending_approval"]
    pending_infected = sum(active(infections.get(d.agent_id, []), d.occurred_at) is not None for d in pending)
    return Score(
        infected=tuple(sorted(infections)),
        quarantined=tuple(quarantined),
        time_to_quarantine_s=ttq,
        recall=len(caught_in_time) / len(infections) if infections else None,
        precision=len(ttq) / len(quarantined) if quarantined else None,
        false_quarantines=tuple(false),
        gate_leaks=gate_leaks(admitted, periods),
        pending_healthy=len(pending) - pending_infected,
        pending_infected=pending_infected,
        leaked_intentions=leaked_intentions(admitted, infections, periods),
        late_quarantines=tuple(late),
    )


def leaked_intentions(admitted: Iterable[Intention], infections: dict[str, list[Span]],
                      periods: dict[str, list[Span]]) -> int:  # fmt: skip
    """Intentions of infected agents admitted between onset and the first quarantine (or the infection's end)."""
    leaks = 0
    for intention in admitted:
        spans = infections.get(intention.agent_id)
        if not spans:
            continue
        span = active(spans, intention.occurred_at)
        if span is None:
            continue
        first_q = next((s for s, _ in periods.get(intention.agent_id, []) if s >= span[0]), None)
        if first_q is None or intention.occurred_at < first_q:
            leaks += 1
    return leaks


def spread(values: list[float | None]) -> dict[str, float | None]:
    """min / median / max over seeds, ignoring runs where the figure does not apply (None)."""
    present = [v for v in values if v is not None]
    if not present:
        return {"min": None, "median": None, "max": None}
    return {"min": min(present), "median": float(np.median(present)), "max": max(present)}
