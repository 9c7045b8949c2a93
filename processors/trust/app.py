"""The trust processor's Faust shell: `chorus worker trust` or `faust -A processors.trust.app worker`."""

from __future__ import annotations

from collections.abc import Sequence

from processors.runtime import Processor, Settings, Step, build_app
from processors.runtime.app import event_time_rule
from processors.runtime.ingress import EventTimeGuard
from processors.runtime.rekey import rekey
from schemas import ANOMALIES, COMMANDS, CONFLICTS, INTENTIONS, Event

from .logic import PRODUCER, TrustState, entities_of, step
from .metrics import TRUST_SCORES
from .policy import TrustPolicy, load_policy
from .topics import CONFLICTS_BY_AGENT, INTERNAL_TOPICS


def _observe_score(_agent_id: str, state: TrustState) -> None:
    TRUST_SCORES.observe(state.score)


def make_processor(policy: TrustPolicy) -> Processor[TrustState]:
    def trust_step(agent_id: str, state: TrustState | None, events: Sequence[Event]) -> Step[TrustState]:
        return step(agent_id, state, events, policy)

    return Processor(
        name=PRODUCER,
        # Every source is keyed by agent, so one worker owns all of an agent's events (one writer).
        # Quarantine decisions are not a source: the operator's release comes from the command.
        sources=(ANOMALIES, CONFLICTS_BY_AGENT, INTENTIONS, COMMANDS),
        state_model=TrustState,
        entities_of=entities_of,
        step=trust_step,
        on_applied=_observe_score,
        verifies_commands=True,
        keyed_topics=frozenset({CONFLICTS_BY_AGENT.name}),
        internal_topics=INTERNAL_TOPICS,
        copies={CONFLICTS_BY_AGENT.name: CONFLICTS.name},
    )


def build(settings: Settings):  # -> faust.App
    # The relays are the first to decode these events, against the original broker timestamps.
    guard = EventTimeGuard(PRODUCER, event_time_rule(settings))
    relays = {
        CONFLICTS.name: rekey(
            CONFLICTS,
            CONFLICTS_BY_AGENT,
            lambda event: [a.agent_id for a in event.affected],  # type: ignore[attr-defined]
            processor=PRODUCER,
            run_id=settings.run_id,
            stopping=lambda: app.should_stop,
            guard=guard,
        )
    }
    app = build_app(make_processor(load_policy(settings)), settings, relays=relays)
    return app


settings = Settings()
app = build(settings)
