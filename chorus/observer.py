"""Reads one run's decisions and ground truth off the topics, for the demo's live summary and report."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from confluent_kafka import Consumer

from processors.runtime.kafka import end_offsets, take
from processors.runtime.security import client_config
from schemas import (
    ADMITTED,
    ANOMALIES,
    CONFLICTS,
    DIAGNOSES,
    HEALING,
    MEMORY,
    QUARANTINE,
    RECOVERY,
    TRUST,
    TRUTH,
    Anomaly,
    ConflictPrediction,
    DecodeError,
    Diagnosis,
    Event,
    GroundTruth,
    HealingAction,
    HealingOutcome,
    ImmuneMemory,
    Intention,
    QuarantineDecision,
    TrustChange,
    decode,
)

WATCHED = (ANOMALIES, TRUST, CONFLICTS, QUARANTINE, TRUTH, DIAGNOSES, HEALING, RECOVERY, MEMORY)


@dataclass
class RunView:
    """Everything observed of one run so far."""

    events: dict[str, Event] = field(default_factory=dict)  # by event_id, to follow causes
    trust: dict[str, float] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    decisions: list[QuarantineDecision] = field(default_factory=list)
    infections: dict[str, GroundTruth] = field(default_factory=dict)  # agent -> first infection start
    truth: list[GroundTruth] = field(default_factory=list)
    admitted: dict[str, Intention] = field(default_factory=dict)  # by event_id; kept apart: many, never causes
    healing: list[Diagnosis | HealingAction | HealingOutcome | ImmuneMemory] = field(default_factory=list)
    undecodable: int = 0
    arrived_ms: dict[str, int] = field(default_factory=dict)  # event_id -> its Kafka timestamp (wall clock)

    def add(self, event: Event, arrived_ms: int | None = None) -> None:
        if arrived_ms is not None and arrived_ms > 0 and not isinstance(event, Intention):
            self.arrived_ms.setdefault(event.event_id, arrived_ms)
        if isinstance(event, Intention):
            self.admitted[event.event_id] = event
            return
        if event.event_id in self.events:
            return  # a redelivered duplicate: same id, same decision
        self.events[event.event_id] = event
        self.counts[event.event_type] += 1
        match event:
            case TrustChange():
                self.trust[event.agent_id] = event.after
            case QuarantineDecision():
                self.decisions.append(event)
            case Diagnosis() | HealingAction() | HealingOutcome() | ImmuneMemory():
                self.healing.append(event)
            case GroundTruth():
                self.truth.append(event)
                if event.phase == "start" and event.agent_id not in self.infections:
                    self.infections[event.agent_id] = event

    def quarantined_now(self) -> dict[str, QuarantineDecision]:
        state: dict[str, QuarantineDecision] = {}
        for decision in sorted(self.decisions, key=lambda d: d.occurred_at):
            if decision.action == "quarantine":
                state[decision.agent_id] = decision
            elif decision.action == "release":
                state.pop(decision.agent_id, None)
        return state

    def first_quarantine(self) -> dict[str, QuarantineDecision]:
        first: dict[str, QuarantineDecision] = {}
        for decision in sorted(self.decisions, key=lambda d: d.occurred_at):
            if decision.action == "quarantine":
                first.setdefault(decision.agent_id, decision)
        return first

    def causes(self, event: Event, depth: int = 4) -> list[tuple[int, Event | str]]:
        """The chain of causes behind an event, as far as this view saw them (ids otherwise)."""
        chain: list[tuple[int, Event | str]] = []
        frontier = [(1, cause) for cause in event.causation_ids]
        while frontier:
            level, cause_id = frontier.pop(0)
            cause = self.events.get(cause_id)
            chain.append((level, cause or cause_id))
            if cause is not None and level < depth:
                frontier.extend((level + 1, c) for c in cause.causation_ids[:3])
        return chain


    def wall_seconds_to(self, decision: Event) -> float | None:
        """Wall-clock seconds from the arrival of the earliest event behind a decision that this view saw
        (the anomaly, trust change or conflict that set it off) to the decision's own arrival."""
        end = self.arrived_ms.get(decision.event_id)
        starts = [self.arrived_ms.get(c.event_id) for _, c in self.causes(decision, depth=6) if not isinstance(c, str)]
        starts = [s for s in starts if s is not None]
        if end is None or not starts:
            return None
        return max(0.0, (end - min(starts)) / 1000.0)


def describe(event: Event | str) -> str:
    match event:
        case str():
            return f"input event {event} (an intention or vitals sample)"
        case TrustChange():
            return f"trust {event.before:.0f} -> {event.after:.0f} ({event.reason}{': ' + event.detail if event.detail else ''})"
        case Anomaly():
            return f"{event.severity} anomaly: {event.metric} {event.value:.3g} vs mean {event.mean:.3g} (z={event.zscore:.1f})"
        case ConflictPrediction():
            return (
                f"conflict on {event.resource}: risk {event.risk:.2f}, {event.failure_mode}, "
                f"most aggressive {event.most_aggressive}"
            )
        case QuarantineDecision():
            return f"{event.action} ({event.reason}{': ' + event.detail if event.detail else ''})"
        case Diagnosis():
            return f"diagnosis {event.condition} (confidence {event.confidence:.2f}: {event.detail})"
        case HealingAction():
            return f"healing {event.action} {event.status} (attempt {event.attempt}, {event.condition})"
        case HealingOutcome():
            return f"healing {event.action} {event.outcome} ({event.detail})"
        case _:
            return f"{event.event_type} {event.event_id}"


class Observer(threading.Thread):
    """A background consumer of the decision topics from their current end, keeping one run's events."""

    def __init__(self, bootstrap: str, run_id: str, *, admitted: bool = False) -> None:
        super().__init__(name="chorus-observer", daemon=True)
        self.run_id = run_id
        self.view = RunView()
        self.lock = threading.Lock()
        self._halt = threading.Event()
        watched = WATCHED + ((ADMITTED,) if admitted else ())
        self._models = {spec.name: spec.model for spec in watched}
        self._consumer = Consumer(
            {**client_config(bootstrap=bootstrap), "group.id": f"chorus-observer-{run_id}", "enable.auto.commit": False}
        )
        # Explicit end offsets, taken before the run starts: nothing of the run is missed.
        self._consumer.assign(end_offsets(bootstrap, [spec.name for spec in watched]))

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                for msg in take(self._consumer, 500, 0.2):
                    if msg.error():
                        continue
                    try:
                        event = decode(self._models[msg.topic()], msg.value())
                    except DecodeError:
                        with self.lock:
                            self.view.undecodable += 1
                        continue
                    if event.run_id == self.run_id:
                        with self.lock:
                            self.view.add(event, msg.timestamp()[1])
        finally:
            self._consumer.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


def seconds_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()
