"""The quarantine processor's step over the one fleet entity. Pure (no I/O, no clock).

The fleet cap is a share of the whole fleet, so the book is one Redis entity: the
runtime's compare-and-set on it keeps the cap exact even with several replicas, at
the price of reading and writing the whole book per batch (see docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pydantic import BaseModel

from processors.runtime import Output, Step
from schemas import ADMITTED, HELD, QUARANTINE, Event, Intention

from .book import AgentState, QuarantineBook
from .held import held
from .policy import QuarantinePolicy

FLEET = "fleet"


class BookState(BaseModel):
    """The book in Redis: agents that differ from a fresh one, when each agent was last seen."""

    agents: dict[str, AgentState] = {}
    seen: dict[str, float] = {}
    watermark: datetime | None = None


def step(entity: str, state: BookState | None, events: Sequence[Event], policy: QuarantinePolicy) -> Step[BookState]:
    if not events:
        return Step()
    state = state or BookState()
    book = QuarantineBook(
        policy, events[0].run_id, agents=dict(state.agents), watermark=state.watermark, last_seen=dict(state.seen)
    )
    outputs: list[Output] = []
    history: list[str] = []
    for event in events:
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
    changed = {agent: s for agent, s in book.agents.items() if s != AgentState(agent)}
    return Step(
        state=BookState(agents=changed, seen=book.last_seen, watermark=book.watermark), outputs=outputs, history=history
    )
