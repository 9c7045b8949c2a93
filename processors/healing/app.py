"""The healing processor's Faust shell: `chorus worker healing` (or `faust -A processors.healing.app worker`).

Reads what it needs to diagnose and verify (vitals, the intentions the gate held, baselines, anomalies,
trust, conflicts, quarantine decisions, operator commands) and its own diagnoses, actions and outcomes;
writes diagnoses, healing actions, outcomes (verified cures release the agent) and the
immune memory.
"""

from __future__ import annotations

from collections.abc import Sequence

from processors.runtime import Processor, Settings, Step, build_app
from schemas import (
    ANOMALIES,
    BASELINES,
    COMMANDS,
    CONFLICTS,
    DIAGNOSES,
    HEALING,
    HELD,
    QUARANTINE,
    RECOVERY,
    TRUST,
    VITALS,
    Diagnosis,
    Event,
    HealingOutcome,
)

from . import metrics as m
from .memory import PRODUCER
from .policy import HealingPolicy, load_policy
from .step import HealingState, entities_of, step


def make_processor(policy: HealingPolicy) -> Processor[HealingState]:
    def healing_step(entity: str, state: HealingState | None, events: Sequence[Event]) -> Step[HealingState]:
        result = step(entity, state, events, policy)
        for out in result.outputs:
            if isinstance(out.event, Diagnosis):
                m.DIAGNOSES.labels(out.event.condition).inc()
            elif isinstance(out.event, HealingOutcome):
                m.OUTCOMES.labels(out.event.condition, out.event.outcome).inc()
        return result

    return Processor(
        name=PRODUCER,
        sources=(
            QUARANTINE, VITALS, HELD, BASELINES, ANOMALIES, TRUST, CONFLICTS, COMMANDS, DIAGNOSES, HEALING,
            RECOVERY,
        ),
        state_model=HealingState,
        entities_of=entities_of,
        step=healing_step,
        verifies_commands=True,  # approve, reject and heal act only when signed by a trusted operator
        # A case moves in seconds (diagnosis delay, verification samples): a quarter second per hop costs it
        # nothing, and healing reads more partitions than any other processor.
        fetch_wait_ms=250,
    )


settings = Settings()
app = build_app(make_processor(load_policy(settings.healing_policy)), settings)
