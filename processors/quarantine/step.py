"""The quarantine processor's step: a fleet header plus one record per agent. Pure (no I/O, no clock).

The book is one runtime entity (`fleet`), fed by one sequence, so the fleet cap is decided in
one deterministic order by one writer. Its state is split so a batch costs what it touches:
the runtime entity's state is the small `FleetHeader` (watermark, how many agents were last
seen in each second of the activity window, the held and pending agents whole), and every
other agent is an `AgentRecord` part (`Processor.parts_of`), read and written only when an
event names it. The runtime writes the header, the changed parts and the outputs in one
compare-and-set (see docs/architecture.md, "Quarantine and the gate").

Duplicates are caught per agent: each record keeps the ids of the last `RECENT_IDS` events
that named it, so an event re-sent by its producer (same id, new offset) is ignored however
many other agents' events came in between.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime

from pydantic import BaseModel

from processors.runtime import Output, Step
from schemas import (
    ADMITTED,
    HELD,
    QUARANTINE,
    Anomaly,
    ConflictPrediction,
    Event,
    HealingOutcome,
    Intention,
    OperatorCommand,
    QuarantineReason,
    TrustChange,
)

from .book import AgentState, QuarantineBook, Status
from .held import held
from .policy import QuarantinePolicy

FLEET = "fleet"
RECENT_IDS = 8  # per agent: ids of the last events that named it (duplicate detection)


class AgentRecord(BaseModel):
    """One agent as stored: its book state, when it was last seen, the ids of its last events."""

    trust: float = 100.0
    status: Status = "free"
    until: datetime | None = None
    offense_count: int = 0
    reason: QuarantineReason | None = None
    decision_id: str | None = None
    seen: float | None = None
    recent: tuple[str, ...] = ()


class FleetHeader(BaseModel):
    """The runtime entity's state: what the fleet cap and the terms need of every agent."""

    watermark: datetime | None = None
    seen_counts: dict[int, int] = {}
    held: dict[str, AgentRecord] = {}  # quarantined or pending agents, whole


def parts_of(event: Event) -> tuple[str, ...]:
    """The agents an event names: the records the step needs loaded."""
    if type(event) is ConflictPrediction:
        named = [c.agent_id for c in event.affected]
        if event.most_aggressive is not None:
            named.append(event.most_aggressive)
        return tuple(dict.fromkeys(named))
    agent = getattr(event, "agent_id", None)  # an event without one is the book's to refuse, not ours
    return (agent,) if agent else ()


def subject_of(event: Event) -> str | None:
    """The one agent whose record remembers this event's id (a conflict's: its aggressor)."""
    if type(event) is Intention:  # most events: skip the isinstance chain
        return event.agent_id
    if isinstance(event, ConflictPrediction):
        return event.most_aggressive
    if isinstance(event, (Intention, TrustChange, Anomaly, OperatorCommand, HealingOutcome)):
        return event.agent_id
    return None


def step(
    entity: str,
    header: FleetHeader | None,
    events: Sequence[Event],
    parts: Mapping[str, bytes],
    policy: QuarantinePolicy,
) -> Step[FleetHeader]:
    """Apply `events` to the book made of `header` and the agent records in `parts` (stored JSON of
    the agents `parts_of` names; an agent without a record is new)."""
    if not events:
        return Step()
    header = header or FleetHeader()
    named = {agent for event in events for agent in parts_of(event)}
    records = {a: AgentRecord.model_validate_json(raw) for a, raw in parts.items() if a not in header.held}
    records.update(header.held)
    book = _book(header, records, policy, events[0].run_id, loaded=named)
    recent = {a: r.recent for a, r in records.items()}
    outputs: list[Output] = []
    history: list[str] = []
    for event in events:
        subject = subject_of(event)
        if subject is not None:
            ids = recent.get(subject, ())
            if event.event_id in ids:
                continue  # re-sent by its producer: it already had its effect and its verdict
            recent[subject] = (*ids, event.event_id)[-RECENT_IDS:]
        verdict = book.handle(event)
        for decision in verdict.decisions:
            outputs.append(Output(QUARANTINE, decision))
            history.append(
                f"{decision.occurred_at.isoformat()} {decision.agent_id} {decision.action} {decision.reason}"
            )
        if verdict.admitted:
            outputs.append(Output(ADMITTED, event))
        elif isinstance(event, Intention):
            history.append(f"{event.occurred_at.isoformat()} {event.agent_id} intention {event.event_id} held")
            outputs.append(Output(HELD, held(event, book.agent(event.agent_id))))
    now = {a: _record(book, a, recent.get(a, ())) for a in named | set(book.agents)}
    held_now = {a: r for a, r in now.items() if r.status != "free"}
    changed: dict[str, str] = {}
    for a, r in now.items():
        if r.status == "free":
            stored = r.model_dump_json()
            if a in header.held or stored.encode() != parts.get(a):  # same bytes: nothing to write
                changed[a] = stored
    state = FleetHeader(watermark=book.watermark, seen_counts=book.seen_counts or {}, held=held_now)
    return Step(state=state, outputs=outputs, history=history, parts=changed)


def header_book(header: FleetHeader, policy: QuarantinePolicy, run_id: str) -> QuarantineBook:
    """A book of the header alone: enough for the fleet's counts (active, quarantined, pending)."""
    return _book(header, header.held, policy, run_id, loaded=())


def _book(
    header: FleetHeader,
    records: Mapping[str, AgentRecord],
    policy: QuarantinePolicy,
    run_id: str,
    loaded: Collection[str],
) -> QuarantineBook:
    """The book of `header` with these agents' records loaded (it refuses any agent not in `loaded`)."""
    return QuarantineBook(
        policy,
        run_id,
        agents={a: _state(a, r) for a, r in records.items()},
        watermark=header.watermark,
        last_seen={a: r.seen for a, r in records.items() if r.seen is not None},
        seen_counts=dict(header.seen_counts),
        loaded=loaded,
    )


# Field by field, not through asdict/model_dump: these run once per agent a batch names.
def _state(agent: str, r: AgentRecord) -> AgentState:
    return AgentState(agent, r.trust, r.status, r.until, r.offense_count, r.reason, r.decision_id)


def _record(book: QuarantineBook, agent: str, recent: Iterable[str]) -> AgentRecord:
    s = book.agent(agent)
    return AgentRecord.model_construct(  # the values come from a validated record or the book's own logic
        trust=s.trust,
        status=s.status,
        until=s.until,
        offense_count=s.offense_count,
        reason=s.reason,
        decision_id=s.decision_id,
        seen=book.last_seen.get(agent),
        recent=tuple(recent),
    )
