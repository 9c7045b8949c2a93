"""Tumbling event-time windows per (run, resource), closed by a watermark.

Pure: the watermark is the largest event time seen, never the wall clock. A window
closes once the watermark passes its end plus the allowed lateness; a claim for a
window that has closed is late and is reported, not silently merged.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from schemas import Intention

from .predict import Window

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class WindowBuffer:
    size_s: float
    lateness_s: float = 0.0
    watermark: datetime | None = None
    pending: dict[tuple[str, str, int], list[Intention]] = field(default_factory=dict)
    _size_us: int = field(init=False, default=0)
    _ids: dict[tuple[str, str, int], set[str]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.size_s <= 0 or self.lateness_s < 0:
            raise ValueError("window size must be > 0 and lateness >= 0")
        self._size_us = round(self.size_s * 1_000_000)

    def window_of(self, run_id: str, resource: str, at: datetime) -> Window:
        start_us = (_micros(at) // self._size_us) * self._size_us
        start = _EPOCH + timedelta(microseconds=start_us)
        return Window(run_id, resource, start, start + timedelta(microseconds=self._size_us))

    def index_of(self, at: datetime) -> int:
        return _micros(at) // self._size_us

    def window_at(self, run_id: str, resource: str, index: int) -> Window:
        start = _EPOCH + timedelta(microseconds=index * self._size_us)
        return Window(run_id, resource, start, start + timedelta(microseconds=self._size_us))

    def add(self, claim: Intention) -> bool:
        """Buffer a claim; False when its window already closed (a late claim).

        A claim seen twice (a redelivered repartition) is kept once.
        """
        index = _micros(claim.occurred_at) // self._size_us
        if self.watermark is not None and self._closed(index, self.watermark):
            return False
        key = (claim.run_id, claim.resource, index)
        claims = self.pending.setdefault(key, [])
        ids = self._ids.get(key)
        if ids is None:
            ids = self._ids[key] = {c.event_id for c in claims}
        if claim.event_id not in ids:
            ids.add(claim.event_id)
            claims.append(claim)
        self.observe(claim.occurred_at)
        return True

    def observe(self, at: datetime) -> None:
        """Let event time advance (also for events that are not buffered)."""
        if self.watermark is None or at > self.watermark:
            self.watermark = at

    def close_due(self) -> Iterator[tuple[Window, list[Intention]]]:
        """Pop the windows the watermark has passed, oldest first."""
        if self.watermark is None:
            return
        due = sorted(key for key in self.pending if self._closed(key[2], self.watermark))
        for run_id, resource, index in due:
            claims = self.pending.pop((run_id, resource, index))
            self._ids.pop((run_id, resource, index), None)
            start = _EPOCH + timedelta(microseconds=index * self._size_us)
            yield Window(run_id, resource, start, start + timedelta(microseconds=self._size_us)), claims

    @property
    def open_windows(self) -> int:
        return len(self.pending)

    def _closed(self, index: int, watermark: datetime) -> bool:
        end_us = (index + 1) * self._size_us
        return end_us + round(self.lateness_s * 1_000_000) <= _micros(watermark)


def _micros(at: datetime) -> int:
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
