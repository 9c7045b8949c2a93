"""Every error the agent SDK raises; all derive from AgentError (a ChorusError)."""

from __future__ import annotations

from schemas import ChorusError, IntentionHeld, QuarantineDecision


class AgentError(ChorusError):
    """Base of the agent SDK's errors."""


class Quarantined(AgentError):
    """The agent is held: the SDK refused the intention, or the gate held it back.

    `decision` is the quarantine decision the SDK knows (None when the gate's verdict arrived
    before the decision itself); `held` is the gate's verdict when the gate held the intention.
    """

    def __init__(self, agent_id: str, decision: QuarantineDecision | None, held: IntentionHeld | None = None) -> None:
        self.agent_id = agent_id
        self.decision = decision
        self.held = held
        self.reason = decision.reason if decision else held.reason if held else None
        until = decision.until if decision else held.until if held else None
        how = "the gate held its intention" if held else "new intentions are refused while it is held"
        detail = f" ({decision.detail})" if decision and decision.detail else ""
        term = f" until {until.isoformat()}" if until else " until released"
        super().__init__(
            f"agent {agent_id} is quarantined for {self.reason or 'an unknown reason'}{term}{detail}: {how}"
        )


class GateTimeout(AgentError):
    """No verdict from the quarantine gate in time: is `chorus worker quarantine` running for this run id?"""


class BufferFull(AgentError):
    """The client's bounded send buffer is full; nothing was queued. Retry later or raise agent_queue_max."""


class DeliveryFailed(AgentError):
    """Kafka did not acknowledge an event (after the producer's own retries)."""


class Closed(AgentError):
    """The agent or its connection is closed (or was never started)."""


class Undelivered(AgentError):
    """close() gave up waiting: some queued events were never acknowledged by Kafka."""
