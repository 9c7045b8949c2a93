"""The quarantine book: who is held, until when, how often, and the admission gate.

Pure decision logic: no I/O and no clock. Time is event time only — the book's
watermark is the largest `occurred_at` it has been shown, and terms expire when the
watermark passes them. The shell loads a book from Redis, feeds it events in
order, publishes what it decides and writes back the agents it changed.

A book need not hold the whole fleet. What the cap needs of every agent is kept as fleet
counters: `seen_counts` (how many agents were last seen in each second of event time, so
the active fleet is a sum over the window's seconds) and the held or pending agents
themselves (few: the cap bounds them). Everything else about an agent is needed only when
an event names it, so the shell loads just those agents (`loaded`); a book built with
`loaded` refuses to touch any other agent rather than mistake it for a fresh one.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal

from schemas import (
    Anomaly,
    ConflictPrediction,
    Event,
    HealingOutcome,
    Intention,
    OperatorCommand,
    QuarantineAction,
    QuarantineDecision,
    QuarantineReason,
    TrustChange,
    derive_event_id,
)

from .policy import QuarantinePolicy

PRODUCER = "quarantine"
Status = Literal["free", "quarantined", "pending"]


@dataclass(frozen=True, slots=True)
class AgentState:
    agent_id: str
    trust: float = 100.0
    status: Status = "free"
    until: datetime | None = None
    offense_count: int = 0
    reason: QuarantineReason | None = None
    decision_id: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    decisions: tuple[QuarantineDecision, ...] = ()
    admitted: bool | None = None  # set for intentions only: may it pass the gate?


@dataclass(slots=True)
class QuarantineBook:
    policy: QuarantinePolicy
    run_id: str
    agents: dict[str, AgentState] = field(default_factory=dict)
    watermark: datetime | None = None
    # When each agent in `agents` (or loaded) was last seen, as event-time epoch seconds.
    last_seen: dict[str, float] = field(default_factory=dict)
    # Fleet counter: second of event time (floor) -> agents whose last sighting falls in it. None:
    # derive it from `last_seen` (a book that holds the whole fleet, as in tests).
    seen_counts: dict[int, int] | None = None
    # The agents this book may touch besides those in `agents`; None = it holds the whole fleet.
    loaded: Collection[str] | None = None
    # The held agents' term ends, kept beside `agents` so advancing event time costs O(held).
    _terms: dict[str, datetime | None] = field(init=False, default_factory=dict)
    _counted_from: int | None = field(init=False, default=None)  # seen_counts holds no second below it

    def __post_init__(self) -> None:
        self._terms = {a: s.until for a, s in self.agents.items() if s.status == "quarantined"}
        if self.seen_counts is None:
            self.seen_counts = {}
            for seen in self.last_seen.values():
                self.seen_counts[math.floor(seen)] = self.seen_counts.get(math.floor(seen), 0) + 1
        self._prune()

    # --- the one entry point ---------------------------------------------------------

    def handle(self, event: Event) -> Verdict:
        """Apply one event in stream order; expiries due by its event time come first."""
        expired = self.advance(event.occurred_at)
        if isinstance(event, Intention):
            self._seen(event.agent_id, event.occurred_at)
            return Verdict(expired, admitted=self.agent(event.agent_id).status != "quarantined")
        if isinstance(event, TrustChange):
            decided = self._on_trust(event)
        elif isinstance(event, ConflictPrediction):
            decided = self._on_conflict(event)
        elif isinstance(event, Anomaly):
            self._seen(event.agent_id, event.occurred_at)
            decided = (
                self._policy_quarantine(event.agent_id, "critical_anomaly", event)
                if event.severity == "critical"
                else None
            )
        elif isinstance(event, OperatorCommand):
            decided = self._on_command(event)
        elif isinstance(event, HealingOutcome):
            decided = self._on_recovery(event)
        else:
            raise TypeError(f"the quarantine book does not take {type(event).__name__}")
        return Verdict(expired + ((decided,) if decided else ()))

    def advance(self, at: datetime) -> tuple[QuarantineDecision, ...]:
        """Move event time forward; release agents whose term ended and whose trust recovered."""
        if self.watermark is not None and at <= self.watermark:
            return ()
        self.watermark = at
        self._prune()
        if self.policy.release_on_recovery:
            return ()  # terms still count offenses; only a verified recovery or an operator releases
        due = sorted(
            (self.agents[a] for a, until in self._terms.items() if until is not None and until <= at),
            key=lambda s: (s.until, s.agent_id),
        )
        return tuple(self._expire(s) for s in due if s.trust >= self.policy.release_trust)

    # --- views -----------------------------------------------------------------------

    def agent(self, agent_id: str) -> AgentState:
        state = self.agents.get(agent_id)
        if state is not None:
            return state
        if self.loaded is not None and agent_id not in self.loaded:
            raise KeyError(f"agent {agent_id!r} was not loaded into this book (a shell bug)")
        return AgentState(agent_id)

    def quarantined(self) -> int:
        return len(self._terms)

    def active(self) -> int:
        """The fleet the cap is a share of: agents last seen in the window's seconds (from the second
        of `watermark - active_window_s` on), plus every held or pending one seen before or never."""
        assert self.seen_counts is not None
        first = self._horizon()
        recent = sum(n for second, n in self.seen_counts.items() if first is None or second >= first)
        return recent + sum(
            1
            for a, s in self.agents.items()
            if s.status != "free" and not self._recent(self.last_seen.get(a), first)
        )

    @staticmethod
    def _recent(seen: float | None, first: int | None) -> bool:
        return seen is not None and (first is None or math.floor(seen) >= first)

    def _horizon(self) -> int | None:
        """The first second of event time that still counts as recent; None: every second does."""
        if self.watermark is None:
            return None
        return math.floor(self.watermark.timestamp() - self.policy.active_window_s)

    # --- handlers --------------------------------------------------------------------

    def _on_trust(self, change: TrustChange) -> QuarantineDecision | None:
        self._seen(change.agent_id, change.occurred_at)
        state = self._put(replace(self.agent(change.agent_id), trust=change.after))
        if state.status == "free" and change.after < self.policy.trust_threshold:
            return self._policy_quarantine(state.agent_id, "low_trust", change)
        expired = state.status == "quarantined" and state.until is not None and state.until <= change.occurred_at
        if expired and change.after >= self.policy.release_trust and not self.policy.release_on_recovery:
            return self._release(state, "term_expired", change, detail="term over and trust recovered")
        return None

    def _on_conflict(self, conflict: ConflictPrediction) -> QuarantineDecision | None:
        # Its claimants claimed within the window: they are active, even if their intentions (another
        # topic) have not reached the book yet, as at start-up when a lone early conflict saw a fleet of 1.
        for claimant in conflict.affected:
            self._seen(claimant.agent_id, conflict.occurred_at)
        # Gemini's enrichment repeats a fast-path prediction; acting on the fast one keeps decisions replayable.
        if conflict.source != "fast_path" or conflict.most_aggressive is None:
            return None
        if conflict.risk <= self.policy.conflict_risk:
            return None
        return self._policy_quarantine(conflict.most_aggressive, "conflict_aggressor", conflict)

    def _on_recovery(self, outcome: HealingOutcome) -> QuarantineDecision | None:
        """A verified cure of this very quarantine (not an earlier one's) releases the agent."""
        state = self.agent(outcome.agent_id)
        if outcome.outcome != "cured" or state.status != "quarantined" or state.decision_id != outcome.quarantine_id:
            return None
        return self._release(state, "recovered", outcome, detail=f"verified cure: {outcome.action} ({outcome.detail})")

    def _on_command(self, cmd: OperatorCommand) -> QuarantineDecision | None:
        decided = self._obey(cmd)
        # The signer's key id goes into the decision: an audit shows which key released whom.
        return decided.model_copy(update={"signed_by": cmd.key_id}) if decided and cmd.key_id else decided

    def _obey(self, cmd: OperatorCommand) -> QuarantineDecision | None:
        state = self.agent(cmd.agent_id)
        signer = f" (key {cmd.key_id})" if cmd.key_id else ""
        note = f"by {cmd.operator}{signer}" + (f": {cmd.note}" if cmd.note else "")
        if cmd.command == "quarantine" and state.status != "quarantined":
            return self._quarantine(state, "operator", cmd, until=None, detail=note)
        if cmd.command == "approve" and state.status == "pending":
            until = self._effective_at(state.agent_id, cmd) + self.policy.term(state.offense_count + 1)
            return self._quarantine(state, state.reason or "operator", cmd, until=until, detail=f"approved {note}")
        if cmd.command == "release" and state.status != "free":
            return self._release(state, "operator", cmd, detail=f"released {note}")
        if cmd.command == "reject" and state.status == "pending":
            return self._release(state, "operator", cmd, detail=f"pending quarantine rejected {note}")
        return None  # set_trust is the trust processor's; the rest change nothing here

    # --- transitions -----------------------------------------------------------------

    def _policy_quarantine(self, agent_id: str, reason: QuarantineReason, cause: Event) -> QuarantineDecision | None:
        state = self.agent(agent_id)
        if state.status != "free":
            return None
        if self.quarantined() + 1 > self.policy.cap(max(self.active(), 1)):
            return self._decide(
                replace(state, status="pending", reason=reason),
                "pending_approval",
                reason,
                cause,
                detail=f"fleet cap {self.policy.fleet_cap:.0%} of {self.active()} active agents reached",
            )
        until = self._effective_at(agent_id, cause) + self.policy.term(state.offense_count + 1)
        return self._quarantine(state, reason, cause, until=until, detail="")

    def _quarantine(
        self, state: AgentState, reason: QuarantineReason, cause: Event, *, until: datetime | None, detail: str
    ) -> QuarantineDecision:
        held = replace(state, status="quarantined", until=until, offense_count=state.offense_count + 1, reason=reason)
        return self._decide(held, "quarantine", reason, cause, detail=detail)

    def _release(self, state: AgentState, reason: QuarantineReason, cause: Event, *, detail: str) -> QuarantineDecision:
        return self._decide(
            replace(state, status="free", until=None, reason=None), "release", reason, cause, detail=detail
        )

    def _expire(self, state: AgentState) -> QuarantineDecision:
        assert state.until is not None
        released = self._put(replace(state, status="free", until=None, reason=None))
        decision = QuarantineDecision(
            event_id=derive_event_id(
                PRODUCER, "expire", state.agent_id, state.decision_id or "", state.until.isoformat()
            ),
            occurred_at=state.until,
            run_id=self.run_id,
            causation_ids=(state.decision_id,) if state.decision_id else (),
            producer=PRODUCER,
            agent_id=state.agent_id,
            action="release",
            reason="term_expired",
            offense_count=state.offense_count,
            trust=state.trust,
            detail="term over and trust recovered",
        )
        self._put(replace(released, decision_id=decision.event_id))
        return decision

    def _decide(
        self, state: AgentState, action: QuarantineAction, reason: QuarantineReason, cause: Event, *, detail: str
    ) -> QuarantineDecision:
        decision = QuarantineDecision(
            event_id=derive_event_id(PRODUCER, action, state.agent_id, cause.event_id),
            occurred_at=self._effective_at(state.agent_id, cause) if action != "release" else cause.occurred_at,
            run_id=self.run_id,
            causation_ids=(cause.event_id,),
            producer=PRODUCER,
            agent_id=state.agent_id,
            action=action,
            reason=reason,
            until=state.until if action == "quarantine" else None,
            offense_count=state.offense_count,
            trust=state.trust,
            detail=detail,
        )
        self._put(replace(state, decision_id=decision.event_id))
        return decision

    def _effective_at(self, agent_id: str, cause: Event) -> datetime:
        """When a quarantine takes effect, in event time: its cause's time, or later if the gate has
        already let through something of the agent's that happened after the cause (the cause reached
        the book late, say through the conflict processor's windows). Every intention the gate admitted
        is then at or before the decision: the gate's promise holds in event time as well as in order."""
        seen = self.last_seen.get(agent_id)
        if seen is None or seen <= cause.occurred_at.timestamp():
            return cause.occurred_at
        return datetime.fromtimestamp(seen, tz=cause.occurred_at.tzinfo)

    def _seen(self, agent_id: str, at: datetime) -> None:
        self.agent(agent_id)  # only an agent this book holds may move the fleet counters
        seen = at.timestamp()
        old = self.last_seen.get(agent_id)
        if old is not None and seen <= old:
            return
        self.last_seen[agent_id] = seen
        assert self.seen_counts is not None
        counts, second = self.seen_counts, math.floor(seen)
        if old is not None:
            before = math.floor(old)
            if before == second:
                return
            if before in counts:  # not yet pruned: this agent is counted there
                counts[before] -= 1
                if not counts[before]:
                    del counts[before]
        counts[second] = counts.get(second, 0) + 1

    def _prune(self) -> None:
        """Forget the seconds that left the window: cheap enough to run on every watermark step."""
        first = self._horizon()
        if first is None or (self._counted_from is not None and first <= self._counted_from):
            return
        assert self.seen_counts is not None
        for second in [s for s in self.seen_counts if s < first]:
            del self.seen_counts[second]
        self._counted_from = first

    def _put(self, state: AgentState) -> AgentState:
        self.agents[state.agent_id] = state
        if state.status == "quarantined":
            self._terms[state.agent_id] = state.until
        else:
            self._terms.pop(state.agent_id, None)
        return state
