"""The fast path: one resource's claims in one event-time window -> a ConflictPrediction.

Pure and deterministic: no I/O, no clock. The prediction's id and event time come
from its causes, so replaying the same claims reproduces the same prediction.
"""

from __future__ import annotations

import heapq
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from schemas import AffectedAgent, ConflictPrediction, Equilibrium, FailureMode, Intention, derive_event_id

from .game import hawk_dove

PRODUCER = "conflict"
# Bounds on what one prediction carries, so a 10,000-agent window stays a small event.
MAX_AFFECTED = 32
MAX_CAUSES = 64


@dataclass(frozen=True, slots=True)
class ConflictParams:
    cost_scale: float = 2.0
    aggressor_min: float = 0.75
    # Load (demand / capacity) from which contention starts to count, and how fast it saturates.
    load_knee: float = 0.8
    load_steepness: float = 5.0
    # A fleet is heterogeneous: a claimant up to `share_tolerance` times the median claimant's
    # demand is ordinary; beyond it it grows aggressive on a log scale, fully so at
    # `share_saturation` times (hoarders claim 100x the median and more).
    share_tolerance: float = 4.0
    share_saturation: float = 256.0
    # Holds count towards demand up to this many windows: long enough for a hoarder's 90 s
    # holds to stand out, short enough that one unlucky long hold of a healthy agent does not.
    hold_cap_windows: float = 4.0
    # Claims at which confidence reaches 1 - 1/e.
    confidence_claims: float = 4.0
    # Of the risk, the part that load alone carries; the rest comes from behaviour.
    load_weight: float = 0.4


@dataclass(frozen=True, slots=True)
class Window:
    run_id: str
    resource: str
    start: datetime
    end: datetime


@dataclass(slots=True)
class _Claimant:
    agent_id: str
    demand: float = 0.0
    priority: int = 1
    hold_fraction: float = 0.0  # 0 for instant holds, towards 1 for holds of many windows


def predict(
    window: Window, capacity: float, claims: Sequence[Intention], params: ConflictParams = ConflictParams()
) -> ConflictPrediction | None:
    """The prediction for one window, or None when it holds no acquisition."""
    acquisitions = [c for c in claims if c.action == "acquire"]
    if not acquisitions:
        return None
    window_s = max((window.end - window.start).total_seconds(), 1e-9)
    claimants = _claimants(acquisitions, window_s, params.hold_cap_windows)
    # Demand is the occupancy the claims imply (Little's law: units x hold time per second
    # of window), so a hold of 90 s weighs 18x a hold of 5 s. fsum is exactly rounded:
    # totals do not depend on the order claims arrived in.
    demand = math.fsum(c.demand for c in claimants)
    load = demand / capacity
    fair = 1.0 / len(claimants)
    typical = statistics.median_low([c.demand for c in claimants])
    rated = sorted(
        ((c, _aggressiveness(c, typical, params.share_tolerance, params.share_saturation)) for c in claimants),
        key=lambda ca: (-ca[1], ca[0].agent_id),
    )
    game = hawk_dove(load, params.cost_scale, [a for _, a in rated])
    load_risk = 1.0 - math.exp(-params.load_steepness * max(0.0, load - params.load_knee))
    behaviour = max(game.p_deadlock, game.p_starvation)
    risk = _clamp(load_risk * (params.load_weight + (1.0 - params.load_weight) * behaviour))
    top, top_aggr = rated[0]
    most_aggressive = top.agent_id if top_aggr >= params.aggressor_min and len(rated) > 1 else None
    mode = _failure_mode(risk, top.demand / demand, top_aggr, most_aggressive, game.p_deadlock, game.p_starvation)
    return ConflictPrediction(
        # Not the run id: a replay must give the same ids. The window's earliest claim makes the id
        # unique to the scenario, as the simulator's own ids are (one prediction per window), and
        # does not depend on the order the claims arrived in.
        event_id=derive_event_id(
            PRODUCER,
            window.resource,
            window.start.isoformat(),
            min(acquisitions, key=lambda c: (c.occurred_at, c.event_id)).event_id,
        ),
        occurred_at=max(c.occurred_at for c in acquisitions),
        run_id=window.run_id,
        causation_ids=_causes(acquisitions, most_aggressive),
        producer=PRODUCER,
        resource=window.resource,
        window_start=window.start,
        window_end=window.end,
        capacity=capacity,
        demand=demand,
        risk=risk,
        confidence=_clamp(1.0 - math.exp(-len(acquisitions) / params.confidence_claims)),
        failure_mode=mode,
        affected=tuple(
            AffectedAgent(
                agent_id=c.agent_id,
                demand=c.demand,
                share=_clamp(c.demand / demand),
                fair_share=fair,
                priority=c.priority,
                aggressiveness=a,
            )
            for c, a in rated[:MAX_AFFECTED]
        ),
        most_aggressive=most_aggressive,
        equilibrium=Equilibrium(
            resource_value=game.resource_value,
            conflict_cost=game.conflict_cost,
            p_escalate=game.p_escalate,
            p_deadlock=game.p_deadlock,
            p_starvation=game.p_starvation,
        ),
        recommended_actions=_actions(window.resource, mode, risk, load, capacity, demand, rated, fair, game.p_escalate),
    )


def _claimants(acquisitions: Iterable[Intention], window_s: float, hold_cap_windows: float) -> list[_Claimant]:
    units: dict[str, list[float]] = {}
    held: dict[str, list[float]] = {}
    priorities: dict[str, int] = {}
    for c in acquisitions:
        agent = c.agent_id
        if agent not in units:
            units[agent], held[agent], priorities[agent] = [], [], c.priority
        hold = window_s if c.hold_s is None else min(c.hold_s, hold_cap_windows * window_s)  # none stated: the window
        units[agent].append(c.amount)
        held[agent].append(c.amount * hold / window_s)
        if c.priority > priorities[agent]:
            priorities[agent] = c.priority
    claimants = []
    for agent in sorted(units):
        demand = math.fsum(held[agent])
        mean_hold_windows = demand / math.fsum(units[agent])
        claimants.append(_Claimant(agent, demand, priorities[agent], 1.0 - math.exp(-mean_hold_windows)))
    return claimants


def _aggressiveness(c: _Claimant, typical: float, tolerance: float, saturation: float) -> float:
    """0 for a claimant within `tolerance` times the median claimant's demand; towards 1, on a
    log scale, up to `saturation` times; pushed up by a high claimed priority and by long
    holds (hoarding): the hawk signals."""
    ratio = c.demand / typical if typical > 0 else 1.0
    if ratio <= tolerance:
        return 0.0
    over = min(1.0, math.log(ratio / tolerance) / math.log(saturation / tolerance))
    priority = (c.priority - 1) / 9
    return _clamp(over * (0.6 + 0.4 * max(priority, c.hold_fraction)))


def _failure_mode(
    risk: float, top_share: float, top_aggr: float, most_aggressive: str | None, p_deadlock: float, p_starvation: float
) -> FailureMode:
    if risk < 0.2:
        return "none"
    if most_aggressive is not None and top_share >= 0.5 and top_aggr >= 0.5:
        return "hoarding"
    if p_deadlock >= 0.3 and p_deadlock >= p_starvation:
        return "deadlock"
    if p_starvation >= 0.3:
        return "starvation"
    return "contention"


def _causes(acquisitions: Sequence[Intention], most_aggressive: str | None) -> tuple[str, ...]:
    """The claims behind the prediction, oldest first; the aggressor's first, so its chain survives the cap."""
    key = _claim_order
    first = heapq.nsmallest(MAX_CAUSES, (c for c in acquisitions if c.agent_id == most_aggressive), key=key)
    rest = heapq.nsmallest(MAX_CAUSES, (c for c in acquisitions if c.agent_id != most_aggressive), key=key)
    return tuple(dict.fromkeys(c.event_id for c in first + rest))[:MAX_CAUSES]


def _claim_order(c: Intention) -> tuple[datetime, str]:
    return c.occurred_at, c.event_id


def _actions(
    resource: str,
    mode: FailureMode,
    risk: float,
    load: float,
    capacity: float,
    demand: float,
    rated: Sequence[tuple[_Claimant, float]],
    fair: float,
    p_escalate: float,
) -> tuple[str, ...]:
    if mode == "none":
        return ()
    actions: list[str] = []
    top, top_aggr = rated[0]
    if mode == "hoarding":
        actions.append(f"throttle {top.agent_id} to its fair share ({fair * demand:.1f} of {top.demand:.1f} units)")
        if risk > 0.7:
            actions.append(f"quarantine {top.agent_id} if it keeps claiming above its share")
    elif mode == "deadlock":
        actions.append(f"impose one acquisition order on {resource} and bound hold times")
    elif mode == "starvation":
        actions.append(f"queue claims on {resource} fairly (weighted round robin by priority)")
    else:
        actions.append(f"stagger acquisitions of {resource} with jittered backoff")
    escalators = [c.agent_id for c, a in rated if a > p_escalate][:3]
    if escalators:
        actions.append(f"escalating above the equilibrium rate p*={p_escalate:.2f}: {', '.join(escalators)}")
    if load > 1.0:
        actions.append(f"add {demand - capacity:.1f} units of capacity to {resource} or shed load")
    return tuple(actions)


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))
