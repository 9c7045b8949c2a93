"""The gate's explicit verdict for a held intention (pure).

Admitted intentions are re-published unchanged; a held one used to leave only a history
line in Redis, so an agent could not tell "held" from "the gate has not answered yet".
"""

from __future__ import annotations

from schemas import Intention, IntentionHeld, derive_event_id

from .book import PRODUCER, AgentState


def held(intention: Intention, agent: AgentState) -> IntentionHeld:
    """Deterministic like every decision: id from the intention, time from the intention."""
    return IntentionHeld(
        event_id=derive_event_id(PRODUCER, "held", intention.event_id),
        occurred_at=intention.occurred_at,
        run_id=intention.run_id,
        causation_ids=(intention.event_id, agent.decision_id) if agent.decision_id else (intention.event_id,),
        producer=PRODUCER,
        agent_id=intention.agent_id,
        intention_id=intention.event_id,
        action=intention.action,
        resource=intention.resource,
        decision_id=agent.decision_id,
        reason=agent.reason,
        until=agent.until,
    )
