"""The hawk/dove reading of a contested resource: the mixed Nash equilibrium and the
chances of deadlock and starvation. Pure arithmetic, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# The value of securing the resource is the unit every cost is measured in.
RESOURCE_VALUE = 1.0


@dataclass(frozen=True, slots=True)
class HawkDove:
    resource_value: float
    conflict_cost: float
    p_escalate: float
    p_deadlock: float
    p_starvation: float


def equilibrium_escalation(value: float, cost: float) -> float:
    """Probability of playing hawk in the mixed Nash equilibrium.

    With V < C escalating is worth it only part of the time: p* = V / C. With V >= C
    hawk is the dominant strategy and everyone escalates.
    """
    if cost <= value:
        return 1.0
    return value / cost


def at_least_two(probabilities: Sequence[float]) -> float:
    """P(at least two of independent events happen): two hawks meet and neither yields."""
    none = 1.0
    exactly_one = 0.0
    for p in probabilities:
        exactly_one = exactly_one * (1.0 - p) + none * p
        none *= 1.0 - p
    return _clamp(1.0 - none - exactly_one)


def mixed(probabilities: Sequence[float]) -> float:
    """P(at least one hawk and at least one dove): a dove facing a hawk goes without."""
    all_hawks = 1.0
    all_doves = 1.0
    for p in probabilities:
        all_hawks *= p
        all_doves *= 1.0 - p
    return _clamp(1.0 - all_hawks - all_doves)


def hawk_dove(load: float, cost_scale: float, hawk_probabilities: Sequence[float]) -> HawkDove:
    """Play the claim as hawk/dove.

    The conflict cost grows with the load (demand / capacity): the more over-subscribed
    the resource, the more a fight over it costs. Deadlock and starvation use the
    claimants' observed escalation (their aggressiveness), not the equilibrium's, because
    the question is what this fleet is doing, not what a rational one would do.
    """
    cost = cost_scale * max(load, 0.0) * RESOURCE_VALUE
    if len(hawk_probabilities) < 2:
        p_deadlock = p_starvation = 0.0
    else:
        p_deadlock = at_least_two(hawk_probabilities)
        p_starvation = mixed(hawk_probabilities)
    return HawkDove(
        resource_value=RESOURCE_VALUE,
        conflict_cost=cost,
        p_escalate=equilibrium_escalation(RESOURCE_VALUE, cost),
        p_deadlock=p_deadlock,
        p_starvation=p_starvation,
    )


def _clamp(x: float) -> float:
    return min(1.0, max(0.0, x))
