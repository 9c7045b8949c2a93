"""The quarantine processor's Faust shell: `chorus worker quarantine` (or `faust -A processors.quarantine.app worker`).

Consumes trust, conflicts, anomalies, operator commands and intentions; writes
quarantine decisions and the admitted intentions (the gate).
"""

from __future__ import annotations

from collections.abc import Sequence

from processors.runtime import Processor, Settings, Step, build_app
from schemas import ADMITTED, ANOMALIES, COMMANDS, CONFLICTS, INTENTIONS, RECOVERY, TRUST, Event, Intention

from . import metrics as m
from .book import PRODUCER, QuarantineBook
from .policy import QuarantinePolicy
from .step import FLEET, BookState, step


def policy_from(settings: Settings) -> QuarantinePolicy:
    return QuarantinePolicy(
        trust_threshold=settings.quarantine_trust_threshold,
        release_trust=settings.quarantine_release_trust,
        conflict_risk=settings.quarantine_conflict_risk,
        base_term_s=settings.quarantine_base_term_s,
        term_multiplier=settings.quarantine_term_multiplier,
        max_term_s=settings.quarantine_max_term_s,
        fleet_cap=settings.quarantine_fleet_cap,
        active_window_s=settings.quarantine_active_window_s,
        release_on_recovery=settings.quarantine_release_on_recovery,
    )


def make_processor(settings: Settings) -> Processor[BookState]:
    policy = policy_from(settings)
    m.FLEET_CAP.set(policy.fleet_cap)

    def fleet_step(entity: str, state: BookState | None, events: Sequence[Event]) -> Step[BookState]:
        result = step(entity, state, events, policy)
        if result.state is not None:
            statuses = [s.status for s in result.state.agents.values()]
            m.QUARANTINED.set(statuses.count("quarantined"))
            m.PENDING.set(statuses.count("pending"))
            state = result.state
            m.ACTIVE.set(
                QuarantineBook(
                    policy, entity, agents=state.agents, watermark=state.watermark, last_seen=state.seen
                ).active()
            )
        admitted = sum(1 for o in result.outputs if o.topic is ADMITTED)
        m.HELD_INTENTIONS.inc(sum(1 for e in events if isinstance(e, Intention)) - admitted)
        return result

    return Processor(
        name=PRODUCER,
        # Intentions last in the list changes nothing about order: the runtime keeps each batch's order.
        sources=(TRUST, CONFLICTS, ANOMALIES, COMMANDS, RECOVERY, INTENTIONS),
        state_model=BookState,
        entities_of=lambda _event: (FLEET,),
        step=fleet_step,
        verifies_commands=True,
    )


settings = Settings()
app = build_app(make_processor(settings), settings)
