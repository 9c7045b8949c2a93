"""Immune memory and the choice of actions, per condition. Pure: no I/O, no clock.

One memory entity per condition holds each action's record (tried, cured, failed, time
to cure), each agent's own outcomes, and the open cases of that condition (which actions
each has tried). A diagnosis opens a case and issues its first action; a failed or
unverified outcome issues the next untried one; after the last, the case is `exhausted`
and the agent stays held for an operator.

The order (`ranked`): actions this agent already failed go last; then actions that cured
more often than they failed, best rate first; then untried ones; then those that failed at
least as often as they cured; ties keep the policy's order. So an action that has failed
(and not cured more often) is never chosen first while an untried one remains.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from pydantic import BaseModel

from processors.runtime import Output
from schemas import (
    HEALING,
    MEMORY,
    ActionRecord,
    Condition,
    Diagnosis,
    Event,
    HealingAction,
    HealingKind,
    HealingOutcome,
    ImmuneMemory,
    derive_event_id,
)

from .policy import HealingPolicy

PRODUCER = "healing"


class Stats(BaseModel):
    cured: int = 0
    failed: int = 0
    cure_time_s: float = 0.0

    @property
    def tried(self) -> int:
        return self.cured + self.failed


class OpenCase(BaseModel):
    diagnosis_id: str
    quarantine_id: str
    tried: list[HealingKind] = []
    attempt: int = 0


class MemoryState(BaseModel):
    stats: dict[HealingKind, Stats] = {}
    by_agent: dict[str, dict[HealingKind, str]] = {}  # agent -> action -> its last outcome ("cured"/"failed")
    cases: dict[str, OpenCase] = {}


def ranked(
    actions: Sequence[HealingKind], stats: dict[HealingKind, Stats], agent_outcomes: dict[HealingKind, str]
) -> list[HealingKind]:
    def key(item: tuple[int, HealingKind]) -> tuple[int, int, float, int]:
        index, action = item
        s = stats.get(action, Stats())
        tier = 0 if s.cured > s.failed else 1 if s.tried == 0 else 2
        rate = s.cured / s.tried if s.tried else 0.0
        return (int(agent_outcomes.get(action) == "failed"), tier, -rate, index)

    return [action for _, action in sorted(enumerate(actions), key=key)]


def step(
    condition: Condition, state: MemoryState, events: Sequence[Event], policy: HealingPolicy
) -> tuple[MemoryState, list[Output], list[str]]:
    state = state.model_copy(deep=True)
    outputs: list[Output] = []
    history: list[str] = []
    for event in events:
        if isinstance(event, Diagnosis):
            outputs += _on_diagnosis(condition, state, event, policy, history)
        elif isinstance(event, HealingOutcome) and event.condition == condition:
            outputs += _on_outcome(condition, state, event, policy, history)
    return state, outputs, history


def _on_diagnosis(
    condition: Condition, state: MemoryState, d: Diagnosis, policy: HealingPolicy, history: list[str]
) -> list[Output]:
    if d.condition != condition:  # the agent's case moved to another condition: it is no longer ours
        if state.cases.pop(d.agent_id, None) is not None:
            history.append(f"{d.occurred_at.isoformat()} {d.agent_id} case moved to {d.condition}")
        return []
    state.cases[d.agent_id] = OpenCase(diagnosis_id=d.event_id, quarantine_id=d.quarantine_id)
    return _next_action(condition, state, d.agent_id, d, policy, history)


def _on_outcome(
    condition: Condition, state: MemoryState, o: HealingOutcome, policy: HealingPolicy, history: list[str]
) -> list[Output]:
    outputs: list[Output] = []
    if o.action != "manual" and o.outcome in ("cured", "failed"):
        s = state.stats.setdefault(o.action, Stats())
        if o.outcome == "cured":
            s.cured += 1
            s.cure_time_s += o.time_to_cure_s or 0.0
        else:
            s.failed += 1
        mine = state.by_agent.pop(o.agent_id, {})  # re-inserted last: the dict keeps recent agents at its end
        mine[o.action] = o.outcome
        state.by_agent[o.agent_id] = mine
        while len(state.by_agent) > policy.agent_memory_cap:
            del state.by_agent[next(iter(state.by_agent))]
        outputs.append(Output(MEMORY, snapshot(condition, state, policy, o)))
        history.append(f"{o.occurred_at.isoformat()} {o.agent_id} {o.action} {o.outcome}")
    case = state.cases.get(o.agent_id)
    if case is None or case.diagnosis_id != o.diagnosis_id:
        return outputs
    if o.outcome in ("cured", "rejected") or o.action == "manual":
        del state.cases[o.agent_id]
        return outputs
    if o.action not in case.tried:
        case.tried.append(o.action)
    return outputs + _next_action(condition, state, o.agent_id, o, policy, history)


def _next_action(
    condition: Condition, state: MemoryState, agent: str, cause: Event, policy: HealingPolicy, history: list[str]
) -> list[Output]:
    case = state.cases[agent]
    order = ranked(policy.actions[condition], state.stats, state.by_agent.get(agent, {}))
    untried = [a for a in order if a not in case.tried]
    case.attempt += 1
    if not untried:
        del state.cases[agent]
        last = case.tried[-1] if case.tried else (order[0] if order else "restart")
        action = _action(condition, agent, case, cause, last, "exhausted", None, "every policy action tried")
        history.append(f"{cause.occurred_at.isoformat()} {agent} exhausted after {len(case.tried)} action(s)")
        return [Output(HEALING, action)]
    chosen = untried[0]
    severe = condition in policy.severe
    deadline = None if severe else cause.occurred_at + timedelta(seconds=policy.action_timeout_s)
    why = _why(chosen, state.stats.get(chosen, Stats()))
    action = _action(condition, agent, case, cause, chosen, "pending_approval" if severe else "issued", deadline, why)
    history.append(f"{cause.occurred_at.isoformat()} {agent} {action.status} {chosen} (attempt {case.attempt})")
    return [Output(HEALING, action)]


def _action(
    condition: Condition,
    agent: str,
    case: OpenCase,
    cause: Event,
    kind: HealingKind,
    status: str,
    deadline,  # noqa: ANN001 - datetime | None
    detail: str,
) -> HealingAction:
    return HealingAction(
        event_id=derive_event_id(PRODUCER, "action", agent, case.diagnosis_id, str(case.attempt), status),
        occurred_at=cause.occurred_at,
        run_id=cause.run_id,
        causation_ids=(cause.event_id,),
        producer=PRODUCER,
        agent_id=agent,
        condition=condition,
        action=kind,
        status=status,  # type: ignore[arg-type]
        attempt=case.attempt,
        diagnosis_id=case.diagnosis_id,
        deadline=deadline,
        detail=detail,
    )


def _why(action: HealingKind, s: Stats) -> str:
    if s.tried == 0:
        return "untried for this condition"
    return f"memory: cured {s.cured} of {s.tried}"


def records(state: MemoryState, policy: HealingPolicy, condition: Condition) -> tuple[ActionRecord, ...]:
    return tuple(
        ActionRecord(
            action=a,
            tried=s.tried,
            cured=s.cured,
            failed=s.failed,
            mean_time_to_cure_s=round(s.cure_time_s / s.cured, 3) if s.cured else None,
        )
        for a in policy.actions[condition]
        for s in (state.stats.get(a, Stats()),)
    )


def snapshot(condition: Condition, state: MemoryState, policy: HealingPolicy, cause: HealingOutcome) -> ImmuneMemory:
    return ImmuneMemory(
        event_id=derive_event_id(PRODUCER, "memory", condition, cause.event_id),
        occurred_at=cause.occurred_at,
        run_id=cause.run_id,
        causation_ids=(cause.event_id,),
        producer=PRODUCER,
        condition=condition,
        actions=records(state, policy, condition),
        order=tuple(ranked(policy.actions[condition], state.stats, {})),
    )
