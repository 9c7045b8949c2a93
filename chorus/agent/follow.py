"""What an agent client knows from Chorus: its quarantine status and the gate's verdicts. Pure.

Fed in partition order by the connection's reader (decisions from `immune.quarantine`,
verdicts from `agent.intentions.admitted` and `agent.intentions.held`), it keeps:
- per agent, the latest quarantine or release decision (a decision re-emitted by a
  processor after a crash has the same event id and changes nothing);
- the intentions waiting for the gate, each resolved by exactly one verdict.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from schemas import Intention, IntentionHeld, QuarantineDecision


@dataclass(frozen=True, slots=True)
class AgentStatus:
    agent_id: str
    decision: QuarantineDecision | None = None
    """The latest quarantine or release decision."""
    pending: QuarantineDecision | None = None
    """A pending_approval decision an operator has not answered yet (the agent is not held meanwhile)."""

    @property
    def quarantined(self) -> bool:
        return self.decision is not None and self.decision.action == "quarantine"


class Follower:
    def __init__(self, agent_ids: frozenset[str] | set[str], run_id: str, *, remember: int = 4096) -> None:
        self.agent_ids = frozenset(agent_ids)
        self.run_id = run_id
        self.status = {a: AgentStatus(a) for a in self.agent_ids}
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._remember = remember
        self._waiting: dict[str, str] = {}  # intention id -> agent id

    def follows(self, agent_id: str, run_id: str) -> bool:
        return agent_id in self.agent_ids and run_id == self.run_id

    def decide(self, decision: QuarantineDecision) -> AgentStatus | None:
        """Apply a decision; returns the agent's new status, or None when it changes nothing."""
        if not self.follows(decision.agent_id, decision.run_id) or self._duplicate(decision.event_id):
            return None
        old = self.status[decision.agent_id]
        if decision.action == "pending_approval":
            new = AgentStatus(old.agent_id, old.decision, decision)
        else:
            new = AgentStatus(old.agent_id, decision, None)
        self.status[decision.agent_id] = new
        return new

    def expect(self, intention: Intention) -> None:
        self._waiting[intention.event_id] = intention.agent_id

    def forget(self, intention_id: str) -> None:
        self._waiting.pop(intention_id, None)

    def admitted(self, intention: Intention) -> str | None:
        """The id of a waiting intention this admission resolves, else None."""
        return self._resolve(intention.event_id, intention.agent_id, intention.run_id)

    def held(self, verdict: IntentionHeld) -> str | None:
        return self._resolve(verdict.intention_id, verdict.agent_id, verdict.run_id)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _resolve(self, intention_id: str, agent_id: str, run_id: str) -> str | None:
        if run_id != self.run_id or self._waiting.get(intention_id) != agent_id:
            return None
        del self._waiting[intention_id]
        return intention_id

    def _duplicate(self, event_id: str) -> bool:
        if event_id in self._seen:
            return True
        self._seen[event_id] = None
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        return False
