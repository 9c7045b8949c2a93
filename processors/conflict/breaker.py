"""A small circuit breaker for the Gemini calls (the one place the wall clock is allowed:
it paces calls to an outside service, it decides nothing about the fleet)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(slots=True)
class CircuitBreaker:
    """Opens after `failures` consecutive failures; after `reset_s` lets one trial call
    through (half open): its success closes the breaker, its failure opens it again."""

    failures: int
    reset_s: float
    clock: Callable[[], float] = time.monotonic
    _consecutive: int = 0
    _opened_at: float | None = None
    _trial_in_flight: bool = False
    _state: BreakerState = field(default="closed")

    @property
    def state(self) -> BreakerState:
        if self._state == "open" and self._opened_at is not None and self.clock() - self._opened_at >= self.reset_s:
            return "half_open"
        return self._state

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial_in_flight:
            self._state = "half_open"
            self._trial_in_flight = True
            return True
        return False

    def success(self) -> None:
        self._consecutive = 0
        self._opened_at = None
        self._trial_in_flight = False
        self._state = "closed"

    def failure(self) -> None:
        self._trial_in_flight = False
        self._consecutive += 1
        if self._state == "half_open" or self._consecutive >= self.failures:
            self._state = "open"
            self._opened_at = self.clock()
