"""The quarantine processor's Faust shell: `chorus worker quarantine` (or `faust -A processors.quarantine.app worker`).

Consumes trust, conflicts, anomalies, operator commands and intentions; writes
quarantine decisions and the admitted intentions (the gate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from processors.runtime import Processor, Settings, Step, build_app
from processors.runtime.app import event_time_rule
from processors.runtime.ingress import EventTimeGuard
from processors.runtime.rekey import rekey
from schemas import ADMITTED, Event, Intention

from . import metrics as m
from .book import PRODUCER
from .policy import QuarantinePolicy
from .step import FLEET, FleetHeader, header_book, parts_of, step
from .topics import INTERNAL_TOPICS, SEQUENCED, SOURCES


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


def make_processor(settings: Settings) -> Processor[FleetHeader]:
    policy = policy_from(settings)
    m.FLEET_CAP.set(policy.fleet_cap)

    def fleet_step(
        entity: str, state: FleetHeader | None, events: Sequence[Event], parts: Mapping[str, bytes]
    ) -> Step[FleetHeader]:
        result = step(entity, state, events, parts, policy)
        if result.state is not None:
            statuses = [s.status for s in result.state.held.values()]
            m.QUARANTINED.set(statuses.count("quarantined"))
            m.PENDING.set(statuses.count("pending"))
            m.ACTIVE.set(header_book(result.state, policy, entity).active())
        admitted = sum(1 for o in result.outputs if o.topic is ADMITTED)
        m.HELD_INTENTIONS.inc(sum(1 for e in events if isinstance(e, Intention)) - admitted)
        return result

    return Processor(
        name=PRODUCER,
        # The single-partition copies, in rank order (intentions last: at equal event time a
        # quarantine's cause is applied before the intentions it holds back).
        sources=tuple(SEQUENCED[source.name] for source in SOURCES),
        state_model=FleetHeader,
        entities_of=lambda _event: (FLEET,),
        step=fleet_step,  # type: ignore[arg-type]  # called with the parts: see parts_of
        parts_of=parts_of,
        verifies_commands=True,
        internal_topics=INTERNAL_TOPICS,
        copies={SEQUENCED[source.name].name: source.name for source in SOURCES},
    )


def build(settings: Settings):  # -> faust.App
    # The relays are the first to decode these events, against the original broker timestamps.
    guard = EventTimeGuard(PRODUCER, event_time_rule(settings))
    relays = {
        source.name: rekey(
            source,
            SEQUENCED[source.name],
            lambda event, spec=source: (spec.key_of(event).decode(),),
            processor=PRODUCER,
            run_id=settings.run_id,
            stopping=lambda: app.should_stop,
            guard=guard,
        )
        for source in SOURCES
    }
    app = build_app(make_processor(settings), settings, relays=relays)
    return app


settings = Settings()
app = build(settings)
