"""Trust scoring, pure: no I/O, no clock. Events in, score changes (TrustChange + history entry) out."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime

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
    its worst severity's penalty once; a later, worse anomaly in it costs only the difference."""
    penalty = policy.anomaly_penalty.get(event.severity, 0.0)
    ongoing = (
        state.incident_at is not None
        and (event.occurred_at - state.incident_at).total_seconds() < policy.anomaly_incident_s
    )
    charged = state.incident_charged if ongoing else 0.0
    points = max(0.0, penalty - charged)
    latest = max(state.incident_at, event.occurred_at) if ongoing and state.incident_at else event.occurred_at
    state = state.model_copy(update={"incident_at": latest, "incident_charged": max(charged, penalty)})
    if points == 0.0:
        return state.model_copy(update={"clean": 0}), None
    return _penalise(
        agent_id, state, event, "anomaly", points, f"{event.severity} {event.metric} anomaly (z={event.zscore:.1f})"
    )


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
        return state, None
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
