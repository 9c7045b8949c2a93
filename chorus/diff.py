"""Comparing two runs' decision streams event by event (pure: records in, a report out).

Events are matched by (topic, event id) with the run id taken out of their contents;
duplicates of one id (a redelivery after a crash) count once. Each divergence comes with
its chain of causes as each run saw it, and, for an admitted or held intention, the
quarantine decisions around it: the usual reason a live run and its replay differ is that
the live gate decided before a slower input had arrived.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas import ADMITTED, QUARANTINE

from .recording import DECISION_TOPICS, Record

Event = dict[str, Any]


@dataclass
class TopicCounts:
    a: int = 0
    b: int = 0
    identical: int = 0
    missing: int = 0  # in A, not in B
    extra: int = 0  # in B, not in A
    different: int = 0


@dataclass
class Divergence:
    topic: str
    event_id: str
    kind: str  # missing | extra | different
    occurred_at: str
    fields: list[str] = field(default_factory=list)
    a: Event | None = None
    b: Event | None = None
    causes: list[str] = field(default_factory=list)


@dataclass
class DiffReport:
    counts: dict[str, TopicCounts]
    divergences: list[Divergence]
    unstable: int = 0  # ids seen twice in one run with different contents

    @property
    def identical(self) -> bool:
        return not self.divergences and self.unstable == 0

    def to_json(self, limit: int | None = None) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "unstable_ids": self.unstable,
            "topics": {t: vars(c) for t, c in self.counts.items()},
            "divergences": [vars(d) for d in self.divergences[:limit]],
        }


class Stream:
    """One run's events by (topic, event id), run id taken out."""

    def __init__(self, records: Iterable[Record]) -> None:
        self.events: dict[tuple[str, str], Event] = {}
        self.by_id: dict[str, Event] = {}
        self.unstable = 0
        for rec in records:
            event = rec.event()
            if event is None or "event_id" not in event:
                continue
            event = {k: v for k, v in event.items() if k != "run_id"}
            key = (rec.topic, event["event_id"])
            seen = self.events.get(key)
            if seen is not None:
                self.unstable += seen != event
                continue
            self.events[key] = event
            if rec.topic != ADMITTED.name:  # an admitted intention is its input's copy, not a cause
                self.by_id.setdefault(event["event_id"], event)


def compare(a_records: Iterable[Record], b_records: Iterable[Record], topics=DECISION_TOPICS) -> DiffReport:
    a, b = Stream(a_records), Stream(b_records)
    counts = {topic: TopicCounts() for topic in topics}
    divergences: list[Divergence] = []
    for key in sorted(set(a.events) | set(b.events)):
        topic, event_id = key
        if topic not in counts:
            continue
        c = counts[topic]
        ea, eb = a.events.get(key), b.events.get(key)
        c.a += ea is not None
        c.b += eb is not None
        if ea is not None and eb is not None and ea == eb:
            c.identical += 1
            continue
        if eb is None:
            c.missing += 1
            kind = "missing"
        elif ea is None:
            c.extra += 1
            kind = "extra"
        else:
            c.different += 1
            kind = "different"
        event = ea or eb
        assert event is not None
        changed = sorted(k for k in set(ea or {}) | set(eb or {}) if (ea or {}).get(k) != (eb or {}).get(k))
        divergences.append(
            Divergence(
                topic=topic,
                event_id=event_id,
                kind=kind,
                occurred_at=str(event.get("occurred_at", "")),
                fields=changed if kind == "different" else [],
                a=ea,
                b=eb,
                causes=explain(topic, event, a, b),
            )
        )
    divergences.sort(key=lambda d: (d.occurred_at, d.topic, d.event_id))
    return DiffReport(counts, divergences, a.unstable + b.unstable)


def explain(topic: str, event: Event, a: Stream, b: Stream, depth: int = 4) -> list[str]:
    """The event's causes, each marked as the two runs saw it; for an intention, the quarantine context."""
    lines: list[str] = []
    frontier = [(1, cause) for cause in event.get("causation_ids") or []]
    seen: set[str] = set()
    while frontier and len(lines) < 12:
        level, cause_id = frontier.pop(0)
        if cause_id in seen:
            continue
        seen.add(cause_id)
        ca, cb = a.by_id.get(cause_id), b.by_id.get(cause_id)
        cause = ca or cb
        if cause is None:
            lines.append(f"{'  ' * level}<- {cause_id}: an input (not a decision of either run)")
            continue
        if ca is not None and cb is not None and ca == cb:
            mark = "same in both runs"
        elif ca is None:
            mark = "only in B"
        elif cb is None:
            mark = "only in A"
        else:
            mark = "differs"
        lines.append(f"{'  ' * level}<- {describe(cause)} [{mark}]")
        if level < depth:
            frontier.extend((level + 1, c) for c in (cause.get("causation_ids") or [])[:3])
    if topic == ADMITTED.name or event.get("event_type") == "intention":
        lines += _gate_context(event, a, b)
    return lines


def _gate_context(intention: Event, a: Stream, b: Stream) -> list[str]:
    agent, at = intention.get("agent_id"), str(intention.get("occurred_at", ""))
    lines = []
    for name, run in (("A", a), ("B", b)):
        admitted = (ADMITTED.name, intention.get("event_id")) in run.events
        decisions = sorted(
            (e for (t, _), e in run.events.items() if t == QUARANTINE.name and e.get("agent_id") == agent),
            key=lambda e: str(e.get("occurred_at")),
        )
        before = [d for d in decisions if str(d.get("occurred_at")) <= at]
        state = f"{before[-1]['action']} since {before[-1]['occurred_at']}" if before else "free"
        lines.append(
            f"  gate in {name}: intention at {at} {'admitted' if admitted else 'held'}; agent {agent} was {state} "
            f"by event time ({len(decisions)} decisions for it in {name})"
        )
    return lines


def describe(event: Event) -> str:
    kind = event.get("event_type", "event")
    if kind == "trust_change":
        return f"trust {event.get('before')} -> {event.get('after')} ({event.get('reason')}) of {event.get('agent_id')}"
    if kind == "quarantine_decision":
        return f"{event.get('action')} {event.get('agent_id')} ({event.get('reason')})"
    if kind == "conflict_prediction":
        return f"conflict on {event.get('resource')} risk {event.get('risk')} aggressor {event.get('most_aggressive')}"
    if kind == "anomaly":
        return f"{event.get('severity')} {event.get('metric')} anomaly of {event.get('agent_id')}"
    return f"{kind} {event.get('event_id')}"
