"""Liveness and readiness of a worker, judged from what its consume loop does.

An HTTP server that answers proves only that a thread is alive. A worker stuck retrying
one batch forever (Redis gone, a poison write) still answers /metrics, so the verdicts
here come from the loop itself:

- live: no batch has been in flight longer than `stall_s`, and the loop (when it reports
  its turns, as the confluent engine does) has turned within `stall_s`. An idle worker
  with nothing to consume is live: it turns its loop every poll.
- ready: the loop is consuming, holds at least one partition, and neither Redis nor Kafka
  is known to be failing (the retry loop reports failures, the consumer's statistics
  report whether any broker is up, and the probe pings Redis itself).

`verdict` is pure (state and time in, verdict out); `WorkerHealth` is the mutable record
the shells update, one per process like the metrics registry.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class HealthState:
    """What the shells last reported; times are time.monotonic() seconds."""

    consuming: bool = False
    loop_turned: float | None = None  # None: the engine does not report its turns (faust)
    batch_since: float | None = None  # a batch in flight since then; None when idle
    assigned: int | None = None  # partitions held; None: the engine does not report them
    failing: dict[str, str] = field(default_factory=dict)  # service -> last error, while it fails


@dataclass(frozen=True)
class Verdict:
    live: bool
    ready: bool
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, object]:
        return {"live": self.live, "ready": self.ready, "reasons": list(self.reasons)}


def verdict(state: HealthState, now: float, stall_s: float, extra_failures: dict[str, str] | None = None) -> Verdict:
    """Judge a worker: `extra_failures` are services found failing at probe time (a Redis ping)."""
    dead: list[str] = []
    if state.batch_since is not None and now - state.batch_since > stall_s:
        dead.append(f"a batch has been in flight for {now - state.batch_since:.0f}s (limit {stall_s:.0f}s)")
    if state.consuming and state.loop_turned is not None and now - state.loop_turned > stall_s:
        dead.append(f"the consume loop has not turned for {now - state.loop_turned:.0f}s (limit {stall_s:.0f}s)")
    unready = list(dead)
    if not state.consuming:
        unready.append("not consuming yet (waiting for Kafka and Redis, or starting)")
    elif state.assigned == 0:
        unready.append("no partitions assigned")
    failing = {**state.failing, **(extra_failures or {})}
    unready += [f"{service} failing: {error}" for service, error in sorted(failing.items())]
    return Verdict(live=not dead, ready=not unready, reasons=tuple(unready))


class WorkerHealth:
    """The process's health record. Updated from the event loop and the consumer's thread; read by the probe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.state = HealthState()
        self.stall_s = 60.0
        self.redis_check: Callable[[], str | None] | None = None  # a failure message, or None when Redis answers

    def consuming(self, stall_s: float, *, reports_turns: bool, reports_assignment: bool) -> None:
        self.stall_s = stall_s
        self.state.consuming = True
        self.state.loop_turned = self._clock() if reports_turns else None
        self.state.assigned = 0 if reports_assignment else None

    def stopped(self) -> None:
        self.state.consuming = False
        self.state.batch_since = None

    def turned(self) -> None:
        self.state.loop_turned = self._clock()

    def batch_started(self) -> None:
        self.state.batch_since = self._clock()

    def batch_done(self) -> None:
        self.state.batch_since = None
        # A batch that completed has read and written Redis and had its outputs acknowledged.
        self.state.failing.pop("redis", None)
        self.state.failing.pop("kafka", None)

    def assigned(self, count: int) -> None:
        self.state.assigned = count

    def failing(self, service: str, error: str) -> None:
        self.state.failing[service] = error[:300]

    def recovered(self, service: str) -> None:
        self.state.failing.pop(service, None)

    def seconds_in_flight(self) -> float:
        since = self.state.batch_since
        return 0.0 if since is None else max(0.0, self._clock() - since)

    def verdict(self, *, probe_services: bool = False) -> Verdict:
        extra: dict[str, str] = {}
        if probe_services and self.redis_check is not None and self.state.consuming:
            error = self.redis_check()
            if error is not None:
                extra["redis"] = error
        return verdict(self.state, self._clock(), self.stall_s, extra)


WORKER = WorkerHealth()
