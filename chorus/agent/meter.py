"""Vitals without effort: measure wrapped calls, aggregate them per tick.

`CallStats` is the aggregate (thread-safe: sync calls may run in worker threads);
`Meter` is the decorator / context manager an agent hands out; `Cpu` reads the
process's CPU share when asked. The agent's background task turns each tick's
`Sample` into a Vitals event.
"""

from __future__ import annotations

import functools
import inspect
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class Sample:
    calls: int
    errors: int
    latency_ms: float
    """Mean latency of the calls that ended in the tick; a tick without calls repeats the last mean."""
    queue_depth: int
    """Most calls in flight at once during the tick."""
    elapsed_s: float

    @property
    def requests_per_s(self) -> float:
        return self.calls / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return self.errors / self.calls if self.calls else 0.0


class CallStats:
    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tick_started = clock()
        self._calls = 0
        self._errors = 0
        self._latency_sum = 0.0
        self._last_latency_ms = 0.0
        self._in_flight = 0
        self._max_in_flight = 0

    def begin(self) -> float:
        with self._lock:
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        return self._clock()

    def end(self, started: float, failed: bool) -> None:
        latency = self._clock() - started
        with self._lock:
            self._in_flight -= 1
            self._calls += 1
            self._errors += failed
            self._latency_sum += latency

    def take(self) -> Sample:
        """The tick's aggregate; starts the next tick (calls in flight count towards its depth)."""
        now = self._clock()
        with self._lock:
            if self._calls:
                self._last_latency_ms = self._latency_sum / self._calls * 1000.0
            sample = Sample(
                self._calls, self._errors, self._last_latency_ms, self._max_in_flight, now - self._tick_started
            )
            self._tick_started = now
            self._calls = self._errors = 0
            self._latency_sum = 0.0
            self._max_in_flight = self._in_flight
        return sample


class _Call:
    """One measured call, as `with meter.call():` or `async with meter.call():`."""

    __slots__ = ("_stats", "_started")

    def __init__(self, stats: CallStats) -> None:
        self._stats = stats
        self._started = 0.0

    def __enter__(self) -> _Call:
        self._started = self._stats.begin()
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._stats.end(self._started, exc_type is not None)

    async def __aenter__(self) -> _Call:
        return self.__enter__()

    async def __aexit__(self, exc_type: object, *_: object) -> None:
        self.__exit__(exc_type)


class Meter:
    """`@agent.meter` on a function (sync or async), or `with agent.meter.call():` around a block.

    A call that raises counts as an error (the exception propagates unchanged).
    """

    def __init__(self, stats: CallStats) -> None:
        self.stats = stats

    def call(self) -> _Call:
        return _Call(self.stats)

    def __call__(self, fn: F) -> F:
        stats = self.stats
        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def measured_async(*args: Any, **kwargs: Any) -> Any:
                started = stats.begin()
                failed = True
                try:
                    result = await fn(*args, **kwargs)
                    failed = False
                    return result
                finally:
                    stats.end(started, failed)

            return measured_async  # type: ignore[return-value]

        @functools.wraps(fn)
        def measured(*args: Any, **kwargs: Any) -> Any:
            started = stats.begin()
            failed = True
            try:
                result = fn(*args, **kwargs)
                failed = False
                return result
            finally:
                stats.end(started, failed)

        return measured  # type: ignore[return-value]


class Cpu:
    """This process's CPU use since the last reading, as a share of all the machine's cores (0-1)."""

    def __init__(self) -> None:
        self._cores = os.cpu_count() or 1
        self._wall = time.monotonic()
        self._cpu = time.process_time()

    def read(self) -> float:
        wall, cpu = time.monotonic(), time.process_time()
        share = (cpu - self._cpu) / max(wall - self._wall, 1e-9) / self._cores
        self._wall, self._cpu = wall, cpu
        return min(max(share, 0.0), 1.0)
