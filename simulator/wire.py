"""Fast JSON for the simulator's hot path, byte-for-byte what `schemas.encode` writes.

Building a pydantic model per event costs more than the whole rest of a tick at
10,000 agents, so Vitals and Intention values are formatted from templates. The
unit tests decode every shape and compare it with the codec's bytes, so the two
cannot drift apart silently. Floats must be finite, non-negative and rounded to at
most 4 decimals (Python's repr and pydantic's writer agree on those).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from schemas.envelope import EVENT_ID_NAMESPACE

PRODUCER = "simulator"


def json_str(value: str) -> str:
    """A JSON string literal, escaped once up front for ids and names embedded in templates."""
    return json.dumps(value, ensure_ascii=False)


class EventIds:
    """Deterministic event ids equal to `derive_event_id(PRODUCER, fingerprint, *parts)`, computed faster.

    The sha1 state of the shared prefix is hashed once and copied per id.
    """

    def __init__(self, fingerprint: str) -> None:
        self._base = hashlib.sha1(EVENT_ID_NAMESPACE.bytes + f"{PRODUCER}\x1f{fingerprint}\x1f".encode())

    def make(self, *parts: str) -> str:
        h = self._base.copy()
        h.update("\x1f".join(parts).encode())
        d = bytearray(h.digest()[:16])
        d[6] = (d[6] & 0x0F) | 0x50  # version 5
        d[8] = (d[8] & 0x3F) | 0x80  # RFC 4122 variant
        x = d.hex()
        return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


class Clock:
    """Simulated time as the codec writes it: whole seconds end in 'Z', others carry microseconds."""

    def __init__(self, start: datetime) -> None:
        start = start.astimezone(UTC)
        self._start = start.replace(microsecond=start.microsecond // 1000 * 1000)
        self._start_ms = round(self._start.timestamp() * 1000)
        self._cache: dict[int, str] = {}

    def at(self, offset_s: float) -> datetime:
        return self._start + timedelta(milliseconds=round(offset_s * 1000))

    def iso_ms(self, offset_ms: int) -> str:
        second, ms = divmod(self._start_ms + offset_ms, 1000)
        prefix = self._cache.get(second)
        if prefix is None:
            if len(self._cache) > 4096:
                self._cache.clear()
            prefix = self._cache[second] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{prefix}Z" if ms == 0 else f"{prefix}.{ms:03d}000Z"


class Templates:
    """Formats one run's Vitals and Intention values."""

    def __init__(self, run_id: str) -> None:
        run = json_str(run_id).replace("%", "%%")  # the head is a %-template
        self._head = '{"event_id":"%s","event_type":"%s","schema_version":1,"occurred_at":"%s","run_id":' + run
        self._head += ',"causation_ids":[],"producer":"' + PRODUCER + '","agent_id":%s,'

    def vitals(
        self, event_id: str, at: str, agent: str, latency: float, errors: float, queue: float, cpu: float, rps: float,
        upstream: float | None = None,
    ) -> bytes:  # fmt: skip
        """`agent` is already a JSON string literal; `upstream` is how degraded its upstreams look (None: none)."""
        tail = ',"upstream_degraded":null}' if upstream is None else f',"upstream_degraded":{upstream!r}}}'
        return (
            self._head % (event_id, "vitals", at, agent)
            + f'"latency_ms":{latency!r},"error_rate":{errors!r},"queue_depth":{queue!r},'
            f'"cpu":{cpu!r},"requests_per_s":{rps!r}'
            + tail
        ).encode()

    def intention(
        self, event_id: str, at: str, agent: str, action: str, resource: str, amount: float, priority: int,
        hold_s: float | None,
    ) -> bytes:
        """`agent` and `resource` are already JSON string literals."""
        hold = "null" if hold_s is None else repr(hold_s)
        return (
            self._head % (event_id, "intention", at, agent)
            + f'"action":"{action}","resource":{resource},"amount":{amount!r},"priority":{priority},"hold_s":{hold}}}'
        ).encode()
