"""Rate limits on writes: a token bucket per token subject (in memory, per API process)."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

from fastapi import HTTPException


class RateLimiter:
    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = rate_per_s
        self._burst = burst
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # subject -> (tokens, at)
        self._lock = threading.Lock()

    def check(self, subject: str) -> None:
        """Take one token of `subject`'s bucket, or raise 429 with the seconds to wait."""
        with self._lock:
            now = self._clock()
            tokens, at = self._buckets.get(subject, (float(self._burst), now))
            tokens = min(float(self._burst), tokens + (now - at) * self._rate)
            if tokens < 1.0:
                wait = math.ceil((1.0 - tokens) / self._rate)
                self._buckets[subject] = (tokens, now)
                raise HTTPException(429, f"write rate limit of {subject!r} reached; retry in {wait} s",
                                    headers={"Retry-After": str(wait)})
            self._buckets[subject] = (tokens - 1.0, now)
