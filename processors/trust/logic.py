"""Trust scoring, pure: no I/O, no clock. Events in, score changes (TrustChange + history entry) out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from pydantic import BaseModel

from processors.runtime import Output, Step
from schemas import (
    TRUST,
    Anomaly,
    ConflictPrediction,
    Event,
    Intention,
    OperatorCommand,
    QuarantineDecision,
    TrustChange,
    TrustReason,
    derive_event_id,
)

from .policy import TrustPolicy

PRODUCER = "trust"


class TrustState(BaseModel):
    score: float
    clean: int = 0
    quarantined: bool = False
    changes: int = 0
    # The current anomaly incident: when its latest anomaly occurred and what it has cost so far.
    incident_at: datetime | None = None
    incident_charged: float = 0.0
    incident_cause: str | None = None  # the anomaly that opened the current incident
    incident_critical: bool = False  # a critical anomaly is part of it: contention can never explain it
    # The latest contention the agent suffered without being aggressive: until when it explains the
    # agent's symptoms, the conflict event that showed it, and what to say about it.
    contended_until: datetime | None = None
    contended_cause: str | None = None
    contended_detail: str = ""


def entities_of(event: Event) -> Iterable[str]:
    """The agents whose trust the event may change: a conflict concerns every affected claimant."""
    if isinstance(event, ConflictPrediction):
        return [a.agent_id for a in event.affected]
    return (event.agent_id,)  # type: ignore[attr-defined]


def step(agent_id: str, state: TrustState | None, events: Sequence[Event], policy: TrustPolicy) -> Step[TrustState]:
    state = state or TrustState(score=policy.initial)
    outputs: list[Output] = []
    history: list[str] = []
    for event in events:
        state, change = apply(agent_id, state, event, policy)
        if change is not None:
            outputs.append(Output(TRUST, change))
            history.append(history_entry(change))
    return Step(state=state, outputs=outputs, history=history)


def apply(agent_id: str, state: TrustState, event: Event, policy: TrustPolicy) -> tuple[TrustState, TrustChange | None]:
    """One event's effect on one agent's trust."""
    if isinstance(event, Anomaly):
        return _anomaly(agent_id, state, event, policy)
    if isinstance(event, ConflictPrediction):
        return _conflict(agent_id, state, event, policy)
    if isinstance(event, Intention):
        return _clean(agent_id, state, event, policy)
    if isinstance(event, QuarantineDecision):
        return _quarantine(agent_id, state, event, policy)
    if isinstance(event, OperatorCommand) and event.command == "set_trust" and event.trust is not None:
        return _change(agent_id, state, event, "operator", event.trust, _by(event), clean=0)
    if isinstance(event, OperatorCommand) and event.command in ("release", "reject"):
        # The operator's release reaches trust straight from the command, not through the quarantine
        # processor's decision: trust feeding quarantine feeding trust would be a cycle that no
        # event-time order can settle (see docs/architecture.md, "Ordering rule").
        return _change(
            agent_id,
            state,
            event,
            "released",
            max(state.score, policy.release_floor),
            _by(event).replace("set by", "released by", 1),
            clean=state.clean,
        )
    return state, None


def _by(cmd: OperatorCommand) -> str:
    return f"set by {cmd.operator}" + (f" (key {cmd.key_id})" if cmd.key_id else "") + (f": {cmd.note}" if cmd.note else "")


def _penalise(
    agent_id: str, state: TrustState, event: Event, reason: TrustReason, points: float, detail: str
) -> tuple[TrustState, TrustChange | None]:
    return _change(agent_id, state, event, reason, state.score - points, detail, clean=0)


def _anomaly(
    agent_id: str, state: TrustState, event: Anomaly, policy: TrustPolicy
) -> tuple[TrustState, TrustChange | None]:
    """One trouble shows in several metrics at once and escalates over a few samples (a starved agent's
    latency, queue and errors together): counting each would sink a victim's trust. An incident costs
    its worst severity's penalty once; a later, worse anomaly in it costs only the difference.

    Blame the cause: a symptom the fleet's state explains (the agent was a non-aggressive claimant in a
    contended window, or its upstreams were degraded when it was sampled) costs nothing. A critical
    anomaly is beyond what contention can do to an agent and is never explained away."""
    blamed = _attribution(state, event, policy) if event.severity != "critical" else None
    if blamed is not None:
        causes, detail = blamed
        return _attributed(agent_id, state, event, causes, detail)
    penalty = policy.anomaly_penalty.get(event.severity, 0.0)
    ongoing = (
        state.incident_at is not None
        and (event.occurred_at - state.incident_at).total_seconds() < policy.anomaly_incident_s
    )
    charged = state.incident_charged if ongoing else 0.0
    points = max(0.0, penalty - charged)
    latest = max(state.incident_at, event.occurred_at) if ongoing and state.incident_at else event.occurred_at
    opened_by = state.incident_cause if ongoing else event.event_id
    critical = (ongoing and state.incident_critical) or event.severity == "critical"
    update = {"incident_at": latest, "incident_charged": max(charged, penalty), "incident_cause": opened_by,
              "incident_critical": critical}  # fmt: skip
    state = state.model_copy(update=update)
    if points == 0.0:
        return state.model_copy(update={"clean": 0}), None
    return _penalise(
        agent_id, state, event, "anomaly", points, f"{event.severity} {event.metric} anomaly (z={event.zscore:.1f})"
    )


def _attribution(state: TrustState, event: Anomaly, policy: TrustPolicy) -> tuple[tuple[str, ...], str] | None:
    """What explains the anomaly instead of the agent, if anything: (cause event ids, what to say)."""
    what = f"{event.severity} {event.metric} anomaly (z={event.zscore:.1f})"
    if state.contended_until is not None and event.occurred_at <= state.contended_until and state.contended_cause:
        return (event.event_id, state.contended_cause), f"{what} blamed on {state.contended_detail}"
    if event.upstream_degraded is not None and event.upstream_degraded >= policy.victim_upstream_degraded:
        return (event.event_id,), f"{what} blamed on degraded upstreams ({event.upstream_degraded:.0%} degraded)"
    return None


def _attributed(
    agent_id: str, state: TrustState, event: Anomaly, causes: tuple[str, ...], detail: str
) -> tuple[TrustState, TrustChange]:
    """A change of zero points that records whom the symptom was blamed on, so `explain` shows it."""
    change = TrustChange(
        event_id=derive_event_id(PRODUCER, event.event_id, agent_id, "attributed"),
        occurred_at=event.occurred_at,
        run_id=event.run_id,
        causation_ids=causes,
        producer=PRODUCER,
        agent_id=agent_id,
        before=state.score,
        after=state.score,
        reason="attributed",
        detail=detail,
    )
    return state.model_copy(update={"changes": state.changes + 1}), change


def _conflict(
    agent_id: str, state: TrustState, event: ConflictPrediction, policy: TrustPolicy
) -> tuple[TrustState, TrustChange | None]:
    # An enriched (Gemini) prediction repeats a fast-path one: counting it would punish twice.
    me = next((a for a in event.affected if a.agent_id == agent_id), None)
    if event.source != "fast_path" or me is None or event.risk < policy.conflict_min_risk:
        return state, None
    # Fleets are heterogeneous: a big claimant is only hoarding if the prediction found it aggressive
    # (far above the typical claimant); a greedy-but-fair agent above 1/n of a busy window is not.
    if me.aggressiveness < policy.conflict_min_aggressiveness:
        # It claimed in a contended window without pushing: a victim of whoever did, for a while.
        until = event.window_end + timedelta(seconds=policy.victim_grace_s)
        if state.contended_until is not None and state.contended_until > until:
            return state, None
        blame = f", most aggressive {event.most_aggressive}" if event.most_aggressive not in (None, agent_id) else ""
        detail = f"contention ({event.failure_mode}) on {event.resource}{blame}"
        update = {"contended_until": until, "contended_cause": event.event_id, "contended_detail": detail}
        return _refund(agent_id, state.model_copy(update=update), event, policy)
    if me.fair_share > 0 and me.share >= policy.hoarding_factor * me.fair_share:
        return _penalise(
            agent_id,
            state,
            event,
            "hoarding",
            policy.hoarding_penalty,
            f"{me.share:.0%} of {event.resource} against a fair share of {me.fair_share:.0%}",
        )
    points = policy.conflict_penalty * me.aggressiveness * event.risk
    return _penalise(
        agent_id,
        state,
        event,
        "conflict",
        points,
        f"{event.failure_mode} on {event.resource}, aggressiveness {me.aggressiveness:.2f}, risk {event.risk:.2f}",
    )


def _refund(
    agent_id: str, state: TrustState, event: ConflictPrediction, policy: TrustPolicy
) -> tuple[TrustState, TrustChange | None]:
    """The prediction of a window closes after the symptoms it explains were charged: give back what the
    incident cost if it began in the window (or its grace before it), and say whom it is blamed on. Not
    when the incident holds a critical anomaly: that is beyond what contention does to an agent, whenever
    the contention is learned of (a refund would also clear the anomaly from healing's evidence)."""
    began = state.incident_at
    if state.incident_charged <= 0 or began is None or state.incident_cause is None or state.incident_critical:
        return state, None
    if not (event.window_start - timedelta(seconds=policy.victim_grace_s) <= began <= state.contended_until):  # type: ignore[operator]
        return state, None
    refund = state.incident_charged
    state = state.model_copy(update={"incident_charged": 0.0})
    detail = f"{refund:g} points back: symptoms blamed on {state.contended_detail}"
    new, change = _change(agent_id, state, event, "attributed", state.score + refund, detail, clean=state.clean)
    if change is not None:
        change = change.model_copy(update={"causation_ids": (event.event_id, state.incident_cause)})
    return new, change


def _clean(
    agent_id: str, state: TrustState, event: Intention, policy: TrustPolicy
) -> tuple[TrustState, TrustChange | None]:
    clean = state.clean + 1
    if clean < policy.recovery_clean_events:
        return state.model_copy(update={"clean": clean}), None
    target = min(state.score + policy.recovery_step, max(policy.recovery_cap, state.score))
    return _change(agent_id, state, event, "good_behaviour", target, f"{clean} clean intentions", clean=0)


def _quarantine(
    agent_id: str, state: TrustState, event: QuarantineDecision, policy: TrustPolicy
) -> tuple[TrustState, TrustChange | None]:
    if event.action == "quarantine":
        return state.model_copy(update={"quarantined": True}), None
    if event.action == "release":
        state = state.model_copy(update={"quarantined": False})
        return _change(
            agent_id,
            state,
            event,
            "released",
            max(state.score, policy.release_floor),
            f"released ({event.reason})",
            clean=state.clean,
        )
    return state, None


def _change(
    agent_id: str, state: TrustState, cause: Event, reason: TrustReason, target: float, detail: str, *, clean: int
) -> tuple[TrustState, TrustChange | None]:
    after = round(min(100.0, max(0.0, target)), 4)
    new = state.model_copy(update={"clean": clean})
    if after == state.score:
        return new, None
    change = TrustChange(
        event_id=derive_event_id(PRODUCER, cause.event_id, agent_id, reason),
        occurred_at=cause.occurred_at,
        run_id=cause.run_id,
        causation_ids=(cause.event_id,),
        producer=PRODUCER,
        agent_id=agent_id,
        before=state.score,
        after=after,
        reason=reason,
        detail=detail,
        signed_by=_signer(cause),
    )
    return new.model_copy(update={"score": after, "changes": state.changes + 1}), change


def _signer(cause: Event) -> str | None:
    """The operator key behind a change: the signer of a command, or of the decision it caused."""
    if isinstance(cause, OperatorCommand):
        return cause.key_id
    if isinstance(cause, QuarantineDecision):
        return cause.signed_by
    return None


def history_entry(change: TrustChange) -> str:
    return json.dumps(
        {
            "event_id": change.event_id,
            "occurred_at": change.occurred_at.isoformat(),
            "before": change.before,
            "after": change.after,
            "reason": change.reason,
            "detail": change.detail,
            "causation_ids": list(change.causation_ids),
            **({"signed_by": change.signed_by} if change.signed_by else {}),
        },
        separators=(",", ":"),
    )


def level(score: float, policy: TrustPolicy) -> str:
    """ok, warning (below 60) or quarantine (below 30) territory."""
    if score < policy.quarantine_below:
        return "quarantine"
    return "warning" if score < policy.warning_below else "ok"
