"""The Redis state store: per-entity state, version and offset fences, changed only by one Lua script.

Each entity (an agent, a resource...) of one processor and run has a hash with its
state (`s`, encoded by statecodec.py), a version (`v`), one offset fence per source (topic, partition)
(`f:<topic>:<partition>`: the last offset whose effect the state already holds) and the
ids of its most recent events (`d`). A redelivered event is at or below its fence and
changes nothing; a duplicate of an event at another offset (an upstream processor
re-emitting after a crash, a producer retry) is caught by its id. The version makes
writes compare-and-set, so two workers that momentarily handle the same entity (for
example a conflict on a resource partition and an intention on the agent's
partition) never lose each other's update: the loser recomputes. Each write also stores a token
naming it (`w`); a worker stepping from its cache of what it wrote (cache.py) expects that token as
well as the version. The same script stores the
messages the change produced (`o`, the outbox: see outbox.py), so only the writer that wins
publishes them; `trim` removes them once published.

Each round trip (one pipeline) has one deadline, `timeout_s`: a Redis that stops answering costs
a batch StateUnavailable (it is retried), never a stalled worker. The worker's store client sets no
per-reply socket timeout (redisclient.py): one timer per pipeline, not one per reply.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from . import metrics as m
from . import scripts
from .errors import StaleFence, StateUnavailable
from .keys import entity_key, fence_field, history_key, parts_key

_APPLY = scripts.PipelinedScript(resources.files(__package__).joinpath("lua/apply.lua").read_text())
_TRIM = scripts.PipelinedScript(resources.files(__package__).joinpath("lua/trim.lua").read_text())

APPLIED, VERSION_MOVED, STALE = 1, 0, -1
ROUND_TRIP_TIMEOUT_S = 10.0
# What a failed round trip raises; OSError includes the TimeoutError of the round trip's own deadline.
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError)
# The recent ids field (`d`), a JSON list of strings, written and read for every entity of every batch:
# msgspec's ~1 us against the json module's ~5 (encode) and ~3.5 (decode) for 32 ids.
ids_json = msgspec.json.Encoder().encode
_ids = msgspec.json.Decoder(list[str]).decode


@dataclass(frozen=True, order=True)
class EntityRef:
    """One entity's state in one run."""

    run_id: str
    entity: str


@dataclass(frozen=True)
class Snapshot:
    """What Redis holds for an entity: version 0 and no state for a new one."""

    version: int = 0
    state_raw: bytes | None = None
    fences: Mapping[str, int] = field(default_factory=dict)
    recent_ids: tuple[str, ...] = ()
    outbox: bytes = b""  # messages of this version not yet published (outbox.py format)
    parts: Mapping[str, bytes] = field(default_factory=dict)  # the parts asked for that exist (Processor.parts_of)

    def fence(self, topic: str, partition: int) -> int:
        """The last applied offset from this source, -1 if none."""
        return self.fences.get(fence_field(topic, partition), -1)


@dataclass(frozen=True)
class Write:
    """A state change computed from `expected_version`, with the fences it advances."""

    ref: EntityRef
    expected_version: int
    fences: Mapping[str, int]
    state_raw: bytes | None = None  # the encoded state (statecodec.py)
    history: Sequence[str] = ()
    recent_json: bytes | None = None  # a JSON list of ids
    outbox: bytes = b""  # the messages this change produced (outbox.py format); replaces the stored one
    parts: Mapping[str, str] = field(default_factory=dict)  # parts to store (Processor.parts_of), JSON
    token: str = ""  # stored with the new version: names this write
    # The token `expected_version` must carry; "" = not checked (the change was computed from a read).
    # A writer that computes from its own cache of what it wrote sets it: the version alone can repeat
    # after a lost or deleted key, the token of another write cannot.
    expected_token: str = ""


class StateStore:
    """Reads and writes one processor's entity states, a pipeline per call."""

    def __init__(
        self, client: aioredis.Redis, processor: str, history_cap: int, timeout_s: float = ROUND_TRIP_TIMEOUT_S
    ) -> None:
        self._redis = client
        self._processor = processor
        self._history_cap = history_cap
        self._timeout_s = timeout_s
        self._scripts_loaded = False

    @property
    def client(self) -> aioredis.Redis:
        return self._redis

    async def read(
        self, refs: Iterable[EntityRef], parts: Mapping[EntityRef, Sequence[str]] | None = None
    ) -> dict[EntityRef, Snapshot]:
        """Every entity's snapshot, with the named parts of those in `parts`, in one pipeline."""
        refs = list(refs)
        if not refs:
            return {}
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                snapshots = await self._read(refs, parts or {})
        except _UNAVAILABLE as exc:
            raise StateUnavailable(f"redis read failed: {exc!r}") from exc
        m.STATE_STORE_SECONDS.labels(self._processor, "read").observe(time.perf_counter() - started)
        return snapshots

    async def _read(self, refs: list[EntityRef], parts: Mapping[EntityRef, Sequence[str]]) -> dict[EntityRef, Snapshot]:
        asked = [(ref, list(parts[ref])) for ref in refs if parts.get(ref)]
        async with self._redis.pipeline(transaction=False) as pipe:
            for ref in refs:
                pipe.hgetall(entity_key(self._processor, ref.run_id, ref.entity))
            for ref, names in asked:
                pipe.hmget(parts_key(self._processor, ref.run_id, ref.entity), names)
            rows = await pipe.execute()
        snapshots = {ref: _snapshot(row) for ref, row in zip(refs, rows[: len(refs)], strict=True)}
        for (ref, names), values in zip(asked, rows[len(refs) :], strict=True):
            found = {name: value for name, value in zip(names, values, strict=True) if value is not None}
            snapshots[ref] = replace(snapshots[ref], parts=found)
        return snapshots

    async def write(self, writes: Sequence[Write]) -> list[int]:
        """Apply the writes in one pipeline; per write APPLIED or VERSION_MOVED.

        Raises StaleFence if a write tried to move a fence backwards (a shell bug).
        """
        if not writes:
            return []
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                results = await self._write(writes)
        except _UNAVAILABLE as exc:
            raise StateUnavailable(f"redis write failed: {exc!r}") from exc
        m.STATE_STORE_SECONDS.labels(self._processor, "write").observe(time.perf_counter() - started)
        stale = [w.ref for w, r in zip(writes, results, strict=True) if r == STALE]
        if stale:
            raise StaleFence(f"fence would move backwards for {stale[:3]}")
        return results

    async def _execute(self, pipe: aioredis.client.Pipeline) -> list:
        """Execute a pipeline of Lua calls (scripts.py: by SHA, no SCRIPT EXISTS round trip)."""
        if not self._scripts_loaded:
            await scripts.load_all(self._redis)
            self._scripts_loaded = True
        return await scripts.execute(pipe, self._redis)

    async def _write(self, writes: Sequence[Write]) -> list[int]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for w in writes:
                fence_args: list[str | int] = []  # then the parts: their count and (name, JSON) pairs
                for name, offset in w.fences.items():
                    fence_args += [name, offset]
                fence_args.append(len(w.parts))
                for name, value in w.parts.items():
                    fence_args += [name, value]
                _APPLY.queue(
                    pipe,
                    [
                        entity_key(self._processor, w.ref.run_id, w.ref.entity),
                        history_key(self._processor, w.ref.run_id, w.ref.entity),
                        parts_key(self._processor, w.ref.run_id, w.ref.entity),
                    ],
                    [
                        w.expected_version,
                        w.expected_token,
                        w.token,
                        w.state_raw or b"",
                        w.recent_json or b"",
                        self._history_cap,
                        w.outbox,
                        len(w.fences),
                        *fence_args,
                        *w.history,
                    ],
                )
            return [int(r) for r in await self._execute(pipe)]

    async def trim(
        self,
        published: Sequence[tuple[EntityRef, int]],
        then: Callable[[aioredis.client.Pipeline], None] | None = None,
    ) -> list[bool]:
        """Remove the outboxes whose messages are published: (entity, version that stored them); per entity
        whether it was trimmed (False: the version moved on). `then` queues more commands after the trims,
        in the same pipeline (one round trip for both)."""
        if not published and then is None:
            return []
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s), self._redis.pipeline(transaction=False) as pipe:
                for ref, version in published:
                    _TRIM.queue(pipe, [entity_key(self._processor, ref.run_id, ref.entity)], [version])
                if then is not None:
                    then(pipe)
                results = await self._execute(pipe)
        except _UNAVAILABLE as exc:
            raise StateUnavailable(f"redis outbox trim failed: {exc!r}") from exc
        m.STATE_STORE_SECONDS.labels(self._processor, "trim").observe(time.perf_counter() - started)
        return [int(r) == 1 for r in results[: len(published)]]

    async def get(self, run_id: str, entity: str) -> Snapshot:
        return (await self.read([EntityRef(run_id, entity)]))[EntityRef(run_id, entity)]

    async def history(self, run_id: str, entity: str) -> list[str]:
        async with asyncio.timeout(self._timeout_s):
            rows = await self._redis.lrange(history_key(self._processor, run_id, entity), 0, -1)
        return [r.decode() if isinstance(r, bytes) else r for r in rows]


def _snapshot(row: Mapping[bytes, bytes]) -> Snapshot:
    if not row:
        return Snapshot()
    fences = {k.decode(): int(v) for k, v in row.items() if k.startswith(b"f:")}
    recent = tuple(_ids(row[b"d"])) if b"d" in row else ()
    return Snapshot(
        version=int(row.get(b"v", b"0")),
        state_raw=row.get(b"s"),
        fences=fences,
        recent_ids=recent,
        outbox=row.get(b"o", b""),
    )
