"""What the operator sees: status, agent stories and cause chains, built from a ledger and state reads.

Pure: no I/O and no clock (times are event times from the ledger). The CLI prints
these models, the API returns them as JSON, the dashboard renders that JSON.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from schemas import (
    ActionRecord,
    Anomaly,
    ConflictPrediction,
    DeadLetter,
    Diagnosis,
    Event,
    HealingAction,
    HealingOutcome,
    ImmuneMemory,
    Intention,
    OperatorCommand,
    QuarantineDecision,
    TrustChange,
    Vitals,
)

from .ledger import Record
from .observer import describe as describe_decision
from .readers import PROCESSORS

RECENT = timedelta(minutes=1)
FLEET_CLOCK = (Anomaly, TrustChange, ConflictPrediction)
CHAIN_DEPTH = 4
CHAIN_FANOUT = 3
WARNING_BELOW, QUARANTINE_BELOW = 60.0, 30.0
AgentStatus = Literal["free", "quarantined", "pending"]


def describe(event: Event | str) -> str:
    match event:
        case Intention():
            hold = f" for {event.hold_s:g} s" if event.hold_s else ""
            return f"intention: {event.action} {event.amount:g} of {event.resource} at priority {event.priority}{hold}"
        case Vitals():
            return (
                f"vitals: latency {event.latency_ms:.0f} ms, errors {event.error_rate:.1%}, "
                f"queue {event.queue_depth:.0f}, cpu {event.cpu:.0%}, {event.requests_per_s:.0f} req/s"
            )
        case OperatorCommand():
            return f"operator {event.operator}: {event.command}" + (f" ({event.note})" if event.note else "")
        case DeadLetter():
            return f"dead letter from {event.source_topic}[{event.partition}]@{event.offset}: {event.error}"
        case str():
            return f"input event {event} (not found in the inputs read)"
        case _:
            return describe_decision(event)


def level(score: float) -> str:
    return "quarantine" if score < QUARANTINE_BELOW else "warning" if score < WARNING_BELOW else "ok"


# --- cause chains ----------------------------------------------------------------------


class CauseNode(BaseModel):
    event_id: str
    event_type: str
    occurred_at: datetime | None = None
    summary: str
    causes: list[CauseNode] = []
    more_causes: int = 0


def cause_tree(event: Event, lookup: Callable[[str], Event | None], depth: int = CHAIN_DEPTH) -> CauseNode:
    """The event and its causes down to `depth` levels (the first CHAIN_FANOUT causes of each)."""
    causes = []
    if depth > 0:
        for cause_id in event.causation_ids[:CHAIN_FANOUT]:
            cause = lookup(cause_id)
            if cause is None:
                causes.append(CauseNode(event_id=cause_id, event_type="input", summary=describe(cause_id)))
            else:
                causes.append(cause_tree(cause, lookup, depth - 1))
    return CauseNode(
        event_id=event.event_id,
        event_type=event.event_type,
        occurred_at=event.occurred_at,
        summary=describe(event),
        causes=causes,
        more_causes=max(0, len(event.causation_ids) - CHAIN_FANOUT) if depth > 0 else len(event.causation_ids),
    )


def missing_causes(events: Iterable[Event], lookup: Callable[[str], Event | None], depth: int = CHAIN_DEPTH) -> set[str]:
    """Cause ids the chains of `events` reach but `lookup` does not know (the input events)."""
    missing: set[str] = set()
    frontier = [(e, depth) for e in events]
    while frontier:
        event, left = frontier.pop()
        if left <= 0:
            continue
        for cause_id in event.causation_ids[:CHAIN_FANOUT]:
            cause = lookup(cause_id)
            if cause is None:
                missing.add(cause_id)
            else:
                frontier.append((cause, left - 1))
    return missing


# --- one agent's story -------------------------------------------------------------------


class TrustPoint(BaseModel):
    event_id: str
    occurred_at: datetime
    before: float
    after: float
    reason: str
    detail: str
    causes: list[str]


class AnomalyView(BaseModel):
    event_id: str
    occurred_at: datetime
    summary: str
    severity: str


class ConflictMention(BaseModel):
    event_id: str
    occurred_at: datetime
    resource: str
    risk: float
    failure_mode: str
    most_aggressive: str | None
    aggressiveness: float | None
    share: float | None
    source: str


class DecisionView(BaseModel):
    event_id: str
    occurred_at: datetime
    action: str
    reason: str
    until: datetime | None
    detail: str
    chain: CauseNode


class Explanation(BaseModel):
    agent_id: str
    run_id: str
    trust: float | None
    level: str | None
    status: AgentStatus
    trust_history: list[TrustPoint]
    anomalies: list[AnomalyView]
    conflicts: list[ConflictMention]
    commands: list[str]
    healing: list[str]  # diagnoses, healing actions and their outcomes, in order
    decisions: list[DecisionView]
    memory: dict[str, list[ActionRecord]] = {}  # what healing learned about the conditions it was diagnosed with


def explain(
    run_id: str,
    agent: str,
    records: Iterable[Record],
    stored_history: Iterable[TrustChange],
    lookup: Callable[[str], Event | None],
    score: float | None,
    memory: Mapping[str, ImmuneMemory] | None = None,
) -> Explanation:
    """An agent's story from its records in the ledger, plus the trust history Redis keeps (the
    topics keep every change; the stored history may hold changes older than what was read)."""
    changes: dict[str, TrustChange] = {c.event_id: c for c in stored_history}
    anomalies, conflicts, commands, healing, decisions = [], [], [], [], []
    conditions: set[str] = set()
    for record in records:
        event = record.event
        match event:
            case TrustChange():
                changes[event.event_id] = event
            case Anomaly():
                anomalies.append(AnomalyView(event_id=event.event_id, occurred_at=event.occurred_at,
                                             summary=describe(event), severity=event.severity))
            case ConflictPrediction():
                me = next((a for a in event.affected if a.agent_id == agent), None)
                conflicts.append(ConflictMention(
                    event_id=event.event_id, occurred_at=event.occurred_at, resource=event.resource, risk=event.risk,
                    failure_mode=event.failure_mode, most_aggressive=event.most_aggressive,
                    aggressiveness=me.aggressiveness if me else None, share=me.share if me else None,
                    source=event.source))
            case OperatorCommand():
                commands.append(f"{event.occurred_at:%H:%M:%S} {describe(event)}")
            case Diagnosis() | HealingAction() | HealingOutcome():
                healing.append(f"{event.occurred_at:%H:%M:%S} {describe(event)}")
                conditions.add(event.condition)
            case QuarantineDecision():
                decisions.append(DecisionView(
                    event_id=event.event_id, occurred_at=event.occurred_at, action=event.action, reason=event.reason,
                    until=event.until, detail=event.detail, chain=cause_tree(event, lookup)))
    # Stable sort: changes at the same event time keep the trust processor's order (stored history first,
    # then what only the topics still hold), so each change's `before` is the previous one's `after`.
    history = sorted(changes.values(), key=lambda c: c.occurred_at)
    latest = decisions[-1].action if decisions else "release"
    status: AgentStatus = {"quarantine": "quarantined", "pending_approval": "pending"}.get(latest, "free")
    if score is None and history:
        score = history[-1].after
    return Explanation(
        agent_id=agent,
        run_id=run_id,
        trust=score,
        level=level(score) if score is not None else None,
        status=status,
        trust_history=[
            TrustPoint(event_id=c.event_id, occurred_at=c.occurred_at, before=c.before, after=c.after,
                       reason=c.reason, detail=c.detail, causes=list(c.causation_ids))
            for c in history
        ],
        anomalies=anomalies,
        conflicts=conflicts,
        commands=commands,
        healing=healing,
        decisions=decisions,
        memory={c: list(m.actions) for c, m in (memory or {}).items() if c in conditions},
    )


# --- the fleet now ---------------------------------------------------------------------------


class Held(BaseModel):
    agent_id: str
    decision_id: str
    reason: str
    since: datetime
    until: datetime | None
    trust: float | None
    detail: str


class ProcessorView(BaseModel):
    name: str
    group: str | None
    replicas: int
    state: str
    lag: dict[str, int]
    last_output: datetime | None
    dead_letters: int


class AgentRow(BaseModel):
    agent_id: str
    trust: float
    level: str
    status: AgentStatus


class Status(BaseModel):
    run_id: str
    as_of: datetime | None
    agents_seen: int
    quarantined: list[Held]
    pending: list[Held]
    trust_buckets: dict[str, int]
    warning: int
    anomalies_last_minute: int
    conflicts_last_minute: int
    decisions: int
    dead_letters: int
    processors: list[ProcessorView]
    ledger_seq: int  # the feed's sequence number this status is as of: subscribe with ?after=ledger_seq


def held_lists(latest: Mapping[str, QuarantineDecision]) -> tuple[list[Held], list[Held]]:
    """(quarantined, pending) from each agent's latest decision."""
    quarantined, pending = [], []
    for agent, d in sorted(latest.items()):
        row = Held(agent_id=agent, decision_id=d.event_id, reason=d.reason, since=d.occurred_at, until=d.until,
                   trust=d.trust, detail=d.detail)
        if d.action == "quarantine":
            quarantined.append(row)
        elif d.action == "pending_approval":
            pending.append(row)
    return quarantined, pending


def agent_rows(scores: Mapping[str, float], latest: Mapping[str, QuarantineDecision]) -> list[AgentRow]:
    status = {"quarantine": "quarantined", "pending_approval": "pending"}
    agents = sorted(set(scores) | set(latest))
    return [
        AgentRow(agent_id=a, trust=scores.get(a, 100.0), level=level(scores.get(a, 100.0)),
                 status=status.get(latest[a].action, "free") if a in latest else "free")
        for a in agents
    ]


def trust_buckets(scores: Iterable[float]) -> dict[str, int]:
    buckets = Counter(min(int(s // 10), 9) for s in scores)
    return {f"{10 * b}-{10 * b + 9 if b < 9 else 100}": buckets.get(b, 0) for b in range(10)}


def status(
    run_id: str,
    records: list[Record],
    scores: Mapping[str, float],
    latest: Mapping[str, QuarantineDecision],
    groups: Iterable[object],
) -> Status:
    """`groups`: readers.GroupView per running processor."""
    # The fleet's event time: what the processors observed. Operator commands carry their signer's
    # wall clock (and so do decisions they cause), which need not be the fleet's (a simulation, a replay).
    as_of = max((r.event.occurred_at for r in records if isinstance(r.event, FLEET_CLOCK)), default=None)
    recent = Counter()
    last_output: dict[str, datetime] = {}
    dead: Counter[str] = Counter()
    for r in records:
        event = r.event
        if as_of is not None and event.occurred_at >= as_of - RECENT:
            recent[event.event_type] += 1
        if isinstance(event, DeadLetter):
            dead[event.producer] += 1
        broker = datetime.fromtimestamp(r.broker_ms / 1000, tz=event.occurred_at.tzinfo) if r.broker_ms > 0 else None
        if broker and (event.producer not in last_output or broker > last_output[event.producer]):
            last_output[event.producer] = broker
    quarantined, pending = held_lists(latest)
    by_name = defaultdict(list)
    for g in groups:
        by_name[g.processor].append(g)  # type: ignore[attr-defined]
    processors = []
    for name in PROCESSORS:
        found = by_name.get(name, [])
        g = max(found, key=lambda v: v.replicas) if found else None
        processors.append(ProcessorView(
            name=name, group=g.group if g else None, replicas=g.replicas if g else 0,
            state=g.state if g else "absent", lag=dict(g.lag) if g else {}, last_output=last_output.get(name),
            dead_letters=dead.get(name, 0)))
    return Status(
        run_id=run_id,
        as_of=as_of,
        agents_seen=len(set(scores) | set(latest)),
        quarantined=quarantined,
        pending=pending,
        trust_buckets=trust_buckets(scores.values()),
        warning=sum(1 for s in scores.values() if QUARANTINE_BELOW <= s < WARNING_BELOW),
        anomalies_last_minute=recent["anomaly"],
        conflicts_last_minute=recent["conflict_prediction"],
        decisions=sum(1 for r in records if isinstance(r.event, QuarantineDecision)),
        dead_letters=sum(dead.values()),
        processors=processors,
        ledger_seq=records[-1].seq if records else 0,
    )


class ResourceConflicts(BaseModel):
    resource: str
    predictions: int
    max_risk: float
    latest: ConflictMention


def conflicts_by_resource(records: Iterable[Record]) -> list[ResourceConflicts]:
    by_resource: dict[str, list[ConflictPrediction]] = defaultdict(list)
    for r in records:
        if isinstance(r.event, ConflictPrediction) and r.event.source == "fast_path":
            by_resource[r.event.resource].append(r.event)
    rows = []
    for resource, preds in sorted(by_resource.items()):
        last = max(preds, key=lambda p: p.occurred_at)
        rows.append(ResourceConflicts(
            resource=resource, predictions=len(preds), max_risk=max(p.risk for p in preds),
            latest=ConflictMention(event_id=last.event_id, occurred_at=last.occurred_at, resource=resource,
                                   risk=last.risk, failure_mode=last.failure_mode,
                                   most_aggressive=last.most_aggressive, aggressiveness=None, share=None,
                                   source=last.source)))
    return rows
