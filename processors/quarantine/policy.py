"""The quarantine policy's knobs and the arithmetic of terms and the fleet cap."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True, slots=True)
class QuarantinePolicy:
    trust_threshold: float = 30.0
    release_trust: float = 50.0
    conflict_risk: float = 0.7
    base_term_s: float = 30.0
    term_multiplier: float = 2.0
    max_term_s: float = 600.0
    fleet_cap: float = 0.2
    active_window_s: float = 120.0
    # Release only on a verified recovery (the healing processor's `cured` outcome) or an operator's
    # command; False restores release by term expiry with recovered trust.
    release_on_recovery: bool = True

    def term(self, offense: int) -> timedelta:
        """The n-th offense (1-based) is held base * multiplier^(n-1), up to the maximum."""
        seconds = self.base_term_s * self.term_multiplier ** max(offense - 1, 0)
        return timedelta(seconds=min(seconds, self.max_term_s))

    def cap(self, active: int) -> int:
        """How many agents policy may hold in quarantine at once: never more than the share."""
        return math.floor(active * self.fleet_cap + 1e-9)
