"""One agent's healing case: evidence, diagnosis, the action in effect, and verified recovery.

Pure: no I/O, no clock. Event time comes from the events; the agent's vitals are its clock
(a deadline passes when a sample after it arrives).

A case opens when the agent is quarantined and closes when it is released. Its life:
`observing` (evidence still arriving, `diagnosis_delay_s`) -> `diagnosed` (a Diagnosis is
out; the condition's memory entity chooses the action) -> `healing` (an action is in effect)
or `pending_approval` (severe: an operator approves, rejects or heals) -> `cured` (a
HealingOutcome `cured`: quarantine releases on it) or, after a failed action, `diagnosed`
again for the next one, or `awaiting_operator` when the policy is exhausted; `rejected`
holds until an operator's `heal`.

A cure is verified, never assumed: `verify_samples` consecutive vitals samples after the
action, each within `verify_z` standard deviations of the agent's baseline on every
metric, and no claim since the action began (an acquisition of its own while held — the
gate holds it, but it shows the agent ignores its quarantine — or a conflict window begun
after the action that names it). A held agent's fair share is nothing. The fleet learns of a quarantine with a delay, so
for `defiance_grace_s` after it the agent's claims are not held against it and no sample
counts towards a cure. A
condition in `operator_verified` (deception, defiance: a held agent cannot show those
cured) reaches `cured` only through an operator's `heal`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from processors.runtime import Output
from schemas import (
    DIAGNOSES,
    HEALING,
    RECOVERY,
    Anomaly,
    BaselineSnapshot,
    Condition,
    ConflictPrediction,
    Diagnosis,
    Event,
    HealingAction,
    HealingKind,
    HealingOutcome,
    IntentionHeld,
    OperatorCommand,
    QuarantineDecision,
    TrustChange,
    Vitals,
    derive_event_id,
)

from .diagnosis import AnomalySeen, ConflictSeen, TrustSeen, diagnose
from .policy import HealingPolicy

PRODUCER = "healing"
CaseStatus = Literal[
    "observing", "diagnosed", "pending_approval", "healing", "awaiting_operator", "rejected", "cured"
]


class Case(BaseModel):
    quarantine_id: str
    since: datetime
    reason: str
    status: CaseStatus = "observing"
    condition: Condition | None = None
    diagnosis_id: str | None = None
    action: HealingKind | None = None
    action_id: str | None = None
    action_at: datetime | None = None
    deadline: datetime | None = None
    attempt: int = 0
    operator: str | None = None
    clock: datetime | None = None  # the agent's own event time: its latest vitals sample
    good: int = 0
    claimed: bool = False  # claimed resources since the action began
    defied: bool = False  # claimed resources while held


class AgentHealth(BaseModel):
    baseline: dict[str, tuple[float, float]] | None = None  # metric -> (mean, stddev), the latest snapshot
    anomalies: list[AnomalySeen] = []
    conflicts: list[ConflictSeen] = []
    trust: list[TrustSeen] = []
    case: Case | None = None


class Result:
    """What one agent's events produced; `changed` says whether the state must be stored."""

    def __init__(self) -> None:
        self.outputs: list[Output] = []
        self.history: list[str] = []
        self.changed = False


def step(agent: str, state: AgentHealth, events: Sequence[Event], policy: HealingPolicy) -> tuple[AgentHealth, Result]:
    # A private working copy. Only the case is changed in place; the evidence lists and the baseline are
    # replaced, never mutated, so they can be shared (a deep copy was a sixth of the worker's CPU).
    state = state.model_copy(update={"case": state.case.model_copy() if state.case is not None else None})
    result = Result()
    for event in events:
        handle(agent, state, event, policy, result)
    return state, result


def handle(agent: str, state: AgentHealth, event: Event, policy: HealingPolicy, r: Result) -> None:
    match event:
        case Vitals():
            _on_vitals(agent, state, event, policy, r)
        case BaselineSnapshot():
            state.baseline = {m: (b.mean, b.stddev) for m, b in event.metrics.items()}
            r.changed = True
        case Anomaly():
            ratio = event.value / event.mean if event.mean > 0 else (1e9 if event.value > 0 else 1.0)
            seen = AnomalySeen(id=event.event_id, at=event.occurred_at, metric=event.metric, zscore=event.zscore,
                               ratio=ratio, delta=event.value - event.mean)  # fmt: skip
            state.anomalies = _capped(state.anomalies + [seen], event.occurred_at, policy)
            r.changed = True
        case IntentionHeld():
            _on_claim(agent, state, event, policy, r)
        case ConflictPrediction():
            _on_conflict(agent, state, event, policy, r)
        case TrustChange():
            if event.reason == "attributed":
                # Trust blamed the symptom on the fleet (contention, degraded upstreams): it is not evidence
                # of the agent's own condition (a deceptive hoarder starved earlier is not a loaded one).
                explained = set(event.causation_ids)
                if any(a.id in explained for a in state.anomalies):
                    state.anomalies = [a for a in state.anomalies if a.id not in explained]
                    r.changed = True
            elif event.after < event.before:
                seen_t = TrustSeen(id=event.event_id, at=event.occurred_at, reason=event.reason,
                                   drop=event.before - event.after)  # fmt: skip
                state.trust = _capped(state.trust + [seen_t], event.occurred_at, policy)
                r.changed = True
        case QuarantineDecision():
            _on_quarantine(agent, state, event, r)
        case HealingAction():
            _on_action(state, event, r)
        case OperatorCommand():
            _on_command(agent, state, event, policy, r)


# --- handlers -------------------------------------------------------------------------------


def _on_quarantine(agent: str, state: AgentHealth, d: QuarantineDecision, r: Result) -> None:
    if d.action == "quarantine" and state.case is None:
        state.case = Case(quarantine_id=d.event_id, since=d.occurred_at, reason=d.reason)
        r.history.append(f"{d.occurred_at.isoformat()} {agent} case opened ({d.reason})")
        r.changed = True
    elif d.action == "release" and state.case is not None:
        r.history.append(f"{d.occurred_at.isoformat()} {agent} case closed ({d.reason}, was {state.case.status})")
        state.case = None
        if d.reason == "recovered":
            # A verified cure closes what its evidence showed: an agent quarantined again within the evidence
            # horizon is diagnosed from what it shows now (a cured hoarder that floods is a flood).
            state.anomalies, state.conflicts, state.trust = [], [], []
        r.changed = True


def _on_conflict(agent: str, state: AgentHealth, c: ConflictPrediction, policy: HealingPolicy, r: Result) -> None:
    if c.source != "fast_path":
        return  # Gemini's enrichment repeats a fast-path prediction
    me = next((a for a in c.affected if a.agent_id == agent), None)
    if me is None:
        return
    aggressor = c.most_aggressive == agent or (me.aggressiveness >= 0.5 and me.share >= 2 * me.fair_share)
    seen = ConflictSeen(id=c.event_id, at=c.occurred_at, window_start=c.window_start, aggressor=aggressor)
    state.conflicts = _capped(state.conflicts + [seen], c.occurred_at, policy)
    r.changed = True
    case = state.case
    if case is None:
        return
    held_from = _held_from(case, policy)
    if case.action_at is not None and c.window_start >= max(case.action_at, held_from):
        case.claimed, case.good = True, 0
    # Claims in a window that began after the quarantine reached the agent: it ignores its quarantine.
    if c.window_start >= held_from and case.condition not in (None, "defiance"):
        _diagnose(agent, state, c, policy, r, forced="defiance")


def _on_claim(agent: str, state: AgentHealth, i: IntentionHeld, policy: HealingPolicy, r: Result) -> None:
    """An acquisition the gate held after the quarantine reached the agent: it ignores its quarantine."""
    case = state.case
    if case is None or i.action != "acquire" or i.occurred_at <= _held_from(case, policy):
        return
    r.changed = True
    if case.action_at is not None and i.occurred_at > case.action_at:
        case.claimed, case.good = True, 0
    if not case.defied:
        case.defied = True
        seen = ConflictSeen(id=i.intention_id, at=i.occurred_at, window_start=i.occurred_at, aggressor=False)
        state.conflicts = _capped(state.conflicts + [seen], i.occurred_at, policy)
        if case.condition not in (None, "defiance"):
            _diagnose(agent, state, i, policy, r, forced="defiance")


def _on_action(state: AgentHealth, a: HealingAction, r: Result) -> None:
    case = state.case
    if case is None or a.diagnosis_id != case.diagnosis_id or a.event_id == case.action_id:
        return  # another case's, or one this case already applied (its own approval / heal read back)
    if case.status in ("cured", "rejected", "awaiting_operator") and a.operator is None:
        return
    if a.status == "exhausted":
        case.status = "awaiting_operator"
    elif a.status == "pending_approval":
        case.status, case.action, case.action_id, case.attempt = "pending_approval", a.action, a.event_id, a.attempt
    else:
        _start(case, a)
    r.history.append(f"{a.occurred_at.isoformat()} {a.agent_id} {a.status} {a.action} (attempt {a.attempt})")
    r.changed = True


def _on_command(agent: str, state: AgentHealth, cmd: OperatorCommand, policy: HealingPolicy, r: Result) -> None:
    case = state.case
    if case is None:
        return
    if cmd.command == "approve" and case.status == "pending_approval" and case.action is not None:
        _issue(agent, state, cmd, policy, r, case.action, "approved", f"approved by {cmd.operator}")
    elif cmd.command == "reject" and case.status == "pending_approval" and case.action is not None:
        r.outputs.append(Output(RECOVERY, _outcome(agent, case, cmd, "rejected", f"rejected by {cmd.operator}")))
        case.status = "rejected"
        r.history.append(f"{cmd.occurred_at.isoformat()} {agent} healing rejected by {cmd.operator}")
        r.changed = True
    elif cmd.command == "heal" and case.status != "cured":
        if case.diagnosis_id is None:
            _diagnose(agent, state, cmd, policy, r)
        _issue(agent, state, cmd, policy, r, "manual", "manual", f"healed by hand by {cmd.operator}")


def _on_vitals(agent: str, state: AgentHealth, v: Vitals, policy: HealingPolicy, r: Result) -> None:
    case = state.case
    if case is None:
        return
    case.clock = max(case.clock or v.occurred_at, v.occurred_at)
    r.changed = True
    if case.status == "observing":
        if v.occurred_at >= case.since + timedelta(seconds=policy.diagnosis_delay_s):
            _diagnose(agent, state, v, policy, r)
        return
    if case.status != "healing" or case.action_at is None or v.occurred_at <= case.action_at:
        return
    if v.occurred_at <= _held_from(case, policy):
        return  # whether it defies its quarantine is not known yet: nothing counts towards a cure
    r.changed = True
    case.good = case.good + 1 if _within_baseline(state.baseline, v, policy) and not case.claimed else 0
    operator_only = case.condition in policy.operator_verified and case.action != "manual"
    if case.good >= policy.verify_samples and not operator_only:
        r.outputs.append(Output(RECOVERY, _outcome(agent, case, v, "cured", f"{case.good} samples within baseline")))
        case.status = "cured"
        r.history.append(f"{v.occurred_at.isoformat()} {agent} cured by {case.action}: release")
    elif case.deadline is not None and v.occurred_at > case.deadline:
        verdict = "unverified" if operator_only and case.good >= policy.verify_samples else "failed"
        why = "claimed resources while held" if case.claimed else f"{case.good} good sample(s) by the deadline"
        if verdict == "unverified":
            why = "vitals normal, but this condition needs an operator to verify"
        r.outputs.append(Output(RECOVERY, _outcome(agent, case, v, verdict, why)))
        r.history.append(f"{v.occurred_at.isoformat()} {agent} {case.action} {verdict}")
        # The memory entity answers with the next action; a manual healing has no next one.
        case.status = "awaiting_operator" if case.action == "manual" else "diagnosed"


# --- transitions ----------------------------------------------------------------------------


def _diagnose(
    agent: str, state: AgentHealth, cause: Event, policy: HealingPolicy, r: Result, forced: Condition | None = None
) -> None:
    case = state.case
    assert case is not None
    horizon = case.since - timedelta(seconds=policy.evidence_horizon_s)
    finding = diagnose(
        case.since,
        case.reason,
        [a for a in state.anomalies if a.at >= horizon],
        [c for c in state.conflicts if c.at >= horizon],
        [t for t in state.trust if t.at >= horizon],
        _held_from(case, policy),
    )
    if forced is not None and finding.condition != forced:
        return  # the rules must agree with what triggered a re-diagnosis; they always do for defiance
    diagnosis = Diagnosis(
        event_id=derive_event_id(PRODUCER, "diagnosis", agent, case.quarantine_id, cause.event_id),
        occurred_at=cause.occurred_at,
        run_id=cause.run_id,
        causation_ids=(case.quarantine_id, *finding.evidence[:32]),
        producer=PRODUCER,
        agent_id=agent,
        condition=finding.condition,
        confidence=finding.confidence,
        quarantine_id=case.quarantine_id,
        previous=case.condition,
        severe=finding.condition in policy.severe,
        detail=finding.detail,
    )
    r.outputs.append(Output(DIAGNOSES, diagnosis))
    r.history.append(f"{cause.occurred_at.isoformat()} {agent} diagnosed {finding.condition} ({finding.detail})")
    case.status, case.condition, case.diagnosis_id = "diagnosed", finding.condition, diagnosis.event_id
    case.action = case.action_id = case.action_at = case.deadline = case.operator = None
    case.good, case.claimed = 0, False
    r.changed = True


def _issue(
    agent: str, state: AgentHealth, cmd: OperatorCommand, policy: HealingPolicy, r: Result,
    kind: HealingKind, tag: str, detail: str,
) -> None:  # fmt: skip
    case = state.case
    assert case is not None and case.condition is not None and case.diagnosis_id is not None
    # An operator's command carries the operator's clock; the action runs on the agent's (its vitals), which in
    # a replay or a simulation is another clock altogether.
    start = max(case.clock, case.since) if case.clock is not None else cmd.occurred_at
    action = HealingAction(
        event_id=derive_event_id(PRODUCER, tag, agent, case.action_id or case.diagnosis_id, cmd.event_id),
        occurred_at=cmd.occurred_at,
        run_id=cmd.run_id,
        causation_ids=tuple(i for i in (case.action_id, cmd.event_id) if i),
        producer=PRODUCER,
        agent_id=agent,
        condition=case.condition,
        action=kind,
        status="issued",
        attempt=case.attempt if tag == "approved" else case.attempt + 1,
        diagnosis_id=case.diagnosis_id,
        deadline=start + timedelta(seconds=policy.action_timeout_s),
        operator=cmd.operator,
        detail=detail,
    )
    r.outputs.append(Output(HEALING, action))
    r.history.append(f"{cmd.occurred_at.isoformat()} {agent} {kind} issued ({detail})")
    _start(case, action)
    case.action_at = start
    r.changed = True


def _start(case: Case, a: HealingAction) -> None:
    case.status, case.action, case.action_id, case.attempt = "healing", a.action, a.event_id, a.attempt
    case.action_at, case.deadline, case.operator = a.occurred_at, a.deadline, a.operator
    case.good, case.claimed = 0, False


def _outcome(agent: str, case: Case, cause: Event, outcome: str, detail: str) -> HealingOutcome:
    assert case.condition is not None and case.diagnosis_id is not None and case.action is not None
    return HealingOutcome(
        event_id=derive_event_id(PRODUCER, "outcome", agent, case.action_id or case.diagnosis_id, outcome),
        occurred_at=cause.occurred_at,
        run_id=cause.run_id,
        causation_ids=tuple(i for i in (case.action_id, cause.event_id) if i),
        producer=PRODUCER,
        agent_id=agent,
        condition=case.condition,
        action=case.action,
        outcome=outcome,  # type: ignore[arg-type]
        attempt=max(case.attempt, 1),
        diagnosis_id=case.diagnosis_id,
        action_id=case.action_id,
        quarantine_id=case.quarantine_id,
        time_to_cure_s=(cause.occurred_at - case.since).total_seconds() if outcome == "cured" else None,
        samples=case.good,
        detail=detail,
    )


def _held_from(case: Case, policy: HealingPolicy) -> datetime:
    """From when the agent surely knows it is held: its claims after this are defiance."""
    return case.since + timedelta(seconds=policy.defiance_grace_s)


def _within_baseline(baseline: dict[str, tuple[float, float]] | None, v: Vitals, policy: HealingPolicy) -> bool:
    if not baseline:
        return False  # nothing to compare with yet: a cure cannot be verified blind
    for metric, (mean, std) in baseline.items():
        floor = max(std, policy.min_stddev, policy.min_rel_stddev * abs(mean))
        if abs(getattr(v, metric) - mean) > policy.verify_z * floor:
            return False
    return True


def _capped(items: list, at: datetime, policy: HealingPolicy) -> list:  # noqa: ANN001 - evidence lists
    horizon = at - timedelta(seconds=policy.evidence_horizon_s)
    kept = [i for i in items if i.at >= horizon]
    return kept[-policy.evidence_cap :]
