"""What GET /v1/agents/{id}/verdicts serves: per agent, its recent gate verdicts and quarantine decisions.

Fed on the event loop by the ingest's agent connection (which reads, for the token agents,
`immune.quarantine` from the beginning and the gate's two verdict topics from the ingest's
start). Each item gets a sequence number that grows across restarts (microseconds since the
epoch at start, plus one per item), so a client's cursor from before a restart still works.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from chorus.agent import AgentStatus
from schemas import Event, Intention, IntentionHeld, QuarantineDecision


@dataclass(frozen=True, slots=True)
class Item:
    seq: int
    kind: str  # admitted | held | decision
    event: Event

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"seq": self.seq, "kind": self.kind}
        if isinstance(self.event, Intention):
            out["intention_id"] = self.event.event_id
        elif isinstance(self.event, IntentionHeld):
            out["intention_id"] = self.event.intention_id
        out["event"] = self.event.model_dump(mode="json")
        return out


class VerdictFeed:
    def __init__(self, agent_ids: frozenset[str], keep: int) -> None:
        self._items = {a: deque[Item](maxlen=keep) for a in agent_ids}
        self._next = time.time_ns() // 1000
        self._changed = asyncio.Condition()

    def add(self, _topic: str, event: Event) -> None:
        kind = (
            "decision"
            if isinstance(event, QuarantineDecision)
            else "held"
            if isinstance(event, IntentionHeld)
            else "admitted"
        )
        agent = getattr(event, "agent_id", None)
        if agent not in self._items:
            return
        self._next += 1
        self._items[agent].append(Item(self._next, kind, event))
        asyncio.ensure_future(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def after(self, agent_id: str, seq: int) -> list[Item]:
        return [item for item in self._items[agent_id] if item.seq > seq]

    async def wait_after(self, agent_id: str, seq: int, timeout: float) -> list[Item]:
        """Items after `seq`, waiting up to `timeout` for the first one (a long poll)."""
        found = self.after(agent_id, seq)
        if found or timeout <= 0:
            return found

        async def arrived() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: bool(self.after(agent_id, seq)))

        try:
            await asyncio.wait_for(arrived(), timeout)
        except TimeoutError:
            return []
        return self.after(agent_id, seq)


def status_json(status: AgentStatus) -> dict[str, Any]:
    return {
        "quarantined": status.quarantined,
        "decision": status.decision.model_dump(mode="json") if status.decision else None,
        "pending": status.pending.model_dump(mode="json") if status.pending else None,
    }
