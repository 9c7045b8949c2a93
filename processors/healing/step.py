"""The healing processor's entities and step. Pure (no I/O, no clock).

Two kinds of entity, both plain runtime entities with their own Redis key, fences and
compare-and-set:
- `agent:<id>`: the agent's evidence, baseline and healing case (`cases.py`), fed by its
  vitals, baselines, anomalies, trust changes, conflicts naming it, quarantine decisions,
  operator commands and the healing actions addressed to it;
- `memory:<condition>`: the immune memory of a condition and its open cases (`memory.py`),
  fed by diagnoses and outcomes.
Diagnoses and outcomes reach memory through their topics, never by a cross-entity read,
so each entity has one writer and the choice of action is replayable from the topics.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from processors.runtime import Step
from schemas import (
    ConflictPrediction,
    Diagnosis,
    Event,
    HealingOutcome,
)

from . import cases, memory
from .cases import AgentHealth
from .memory import MemoryState
from .policy import HealingPolicy

AGENT, MEMORY = "agent:", "memory:"


class HealingState(BaseModel):
    agent: AgentHealth | None = None
    memory: MemoryState | None = None


def entities_of(event: Event) -> Iterable[str]:
    if isinstance(event, Diagnosis):
        return (MEMORY + event.condition,) + ((MEMORY + event.previous,) if event.previous else ())
    if isinstance(event, HealingOutcome):
        return (MEMORY + event.condition,)
    if isinstance(event, ConflictPrediction):
        return tuple(AGENT + a.agent_id for a in event.affected)
    return (AGENT + event.agent_id,)  # type: ignore[attr-defined]


def step(entity: str, state: HealingState | None, events: Sequence[Event], policy: HealingPolicy) -> Step[HealingState]:
    state = state or HealingState()
    if entity.startswith(MEMORY):
        condition = entity.removeprefix(MEMORY)
        mem, outputs, history = memory.step(condition, state.memory or MemoryState(), events, policy)  # type: ignore[arg-type]
        return Step(state=HealingState(memory=mem), outputs=outputs, history=history)
    agent = entity.removeprefix(AGENT)
    health, result = cases.step(agent, state.agent or AgentHealth(), events, policy)
    # Most vitals of agents without a case change nothing: no state write, only the fences advance.
    return Step(
        state=HealingState(agent=health) if result.changed else None, outputs=result.outputs, history=result.history
    )
