"""The trust processor's Faust shell: `chorus worker trust` or `faust -A processors.trust.app worker`."""

from __future__ import annotations

from collections.abc import Sequence

from processors.runtime import Processor, Settings, Step, build_app
from schemas import ANOMALIES, COMMANDS, CONFLICTS, INTENTIONS, QUARANTINE, Event

from .logic import PRODUCER, TrustState, entities_of, step
from .metrics import TRUST_SCORES
from .policy import TrustPolicy, load_policy


def _observe_score(_agent_id: str, state: TrustState) -> None:
    TRUST_SCORES.observe(state.score)


def make_processor(policy: TrustPolicy) -> Processor[TrustState]:
    def trust_step(agent_id: str, state: TrustState | None, events: Sequence[Event]) -> Step[TrustState]:
        return step(agent_id, state, events, policy)

    return Processor(
        name=PRODUCER,
        sources=(ANOMALIES, CONFLICTS, INTENTIONS, QUARANTINE, COMMANDS),
        state_model=TrustState,
        entities_of=entities_of,
        step=trust_step,
        on_applied=_observe_score,
        verifies_commands=True,
    )


settings = Settings()
app = build_app(make_processor(load_policy(settings)), settings)
