"""The batch pipeline every processor runs, independent of Faust.

decode -> group by entity -> one pipeline read of state + fences (only of the entities this
worker did not write last: the others come from its cache of its own writes, cache.py) ->
publish any outbox left behind -> pure steps in memory -> one pipeline of Lua writes (state + fences + the
outputs as the entity's outbox, compare-and-set) -> publish the outboxes of the writes that
won, await delivery -> trim them, in the round trip that also records the batch's progress
marks. So a decision is published only by the worker whose state write won (the transactional
outbox); a crash between write and publish leaves the outbox in Redis and the batch
uncommitted, and whoever reads the entity next publishes it first (same deterministic event
ids: a second publication is a duplicate consumers drop by id). Transient Redis/Kafka errors
are retried with backoff until they pass; an event is never skipped.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, NamedTuple

from schemas import DEADLETTER, DeadLetter, DecodeError, Event, OperatorCommand, decode

from . import metrics as m
from . import outbox
from .cache import Known, StateCache
from .commands import CommandGuard
from .deadletter import dead_letter, run_id_of
from .delivery import REFUSED_PREFIX, deliver
from .errors import BrokerUnavailable, PermanentFailure, StateUnavailable
from .health import WORKER as health
from .ingress import EventTimeGuard, EventTimeRule
from .isolation import step_each
from .kafka import OutMessage, Sender
from .keys import fence_field
from .processor import Output, Processor, Step
from .progress import ProgressMarks
from .statecodec import StateCodec
from .store import APPLIED, VERSION_MOVED, EntityRef, Snapshot, StateStore, Write, ids_json

log = logging.getLogger(__name__)

ALL_RUNS = "*"


class Record(NamedTuple):
    """One consumed Kafka message, as the runner sees it (a tuple: built once per message, cheaply)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None


class _Inbound(NamedTuple):
    record: Record
    event: Event


class _Change(NamedTuple):
    """One entity's computed change in a round, and what publishing and caching it need."""

    write: Write
    snapshot: Snapshot  # what it was computed from
    state: Any  # the new state (None: the stored state is kept)
    recent: tuple[str, ...] | None  # the new recent ids (None: not kept)
    outputs: Sequence[Output]
    failed: list[DeadLetter]
    messages: list[OutMessage]


class Stopping(Exception):  # noqa: N818 - a signal, not an error
    """The worker is stopping while a batch waits on a retry: leave it unacknowledged."""


class BatchRunner:
    """Applies batches of one processor's messages to its Redis state, with exactly-once effect."""

    def __init__(
        self,
        processor: Processor[Any],
        store: StateStore,
        send: Sender,
        *,
        run_id: str,
        max_backoff_s: float = 5.0,
        dedupe_ids: int = 32,
        stopping: Callable[[], bool] = lambda: False,
        state_cache: int = 0,
        event_time: EventTimeRule | None = None,
        guard: CommandGuard | None = None,
        marks: ProgressMarks | None = None,
    ) -> None:
        self._p = processor
        self._store = store
        self._send = send
        self._run_id = run_id
        self._max_backoff = max_backoff_s
        self._dedupe_ids = dedupe_ids
        self._stopping = stopping
        self._models = {spec.name: spec.model for spec in processor.sources}
        self._rank = {spec.name: i for i, spec in enumerate(processor.sources)}
        self._codec = StateCodec(processor.state_model)
        self._cache = StateCache(state_cache)
        # Tokens name this worker's writes (cache.py): a random prefix and a count of rounds.
        self._token_prefix, self._attempts = os.urandom(6).hex() + ":", itertools.count()
        self._event_time = EventTimeGuard(processor.name, event_time) if event_time is not None else None
        self._guard = guard
        self._marks = marks

    async def process(self, records: Sequence[Record]) -> None:
        """Apply one batch; returns only when all of its effects are durable."""
        started = time.perf_counter()
        name = self._p.name
        m.BATCH_EVENTS.labels(name).observe(len(records))
        inbound: list[_Inbound] = []
        dead: list[DeadLetter] = []
        for topic, count in Counter(rec.topic for rec in records).items():
            m.EVENTS_IN.labels(name, topic).inc(count)
        models, every_run, other_run = self._models, self._run_id == ALL_RUNS, 0
        for rec in records:
            model = models.get(rec.topic)
            if model is None:
                dead.append(self._dead_letter(rec, f"{name} does not consume {rec.topic!r}", reason="wrong_topic"))
                continue
            try:
                event = decode(model, rec.value, topic=rec.topic)
            except DecodeError as exc:
                dead.append(self._dead_letter(rec, exc.reason, reason="undecodable"))
                continue
            if not every_run and event.run_id != self._run_id:
                other_run += 1
                continue
            if self._event_time is not None and (late := self._event_time.check(event, rec.timestamp)) is not None:
                dead.append(self._dead_letter(rec, late, event.run_id, reason="event_time"))  # it must not move any watermark
                continue
            inbound.append(_Inbound(rec, event))
        if other_run:
            m.EVENTS_SKIPPED.labels(name, "other_run").inc(other_run)
        if self._guard is not None and any(type(i.event) is OperatorCommand for i in inbound):
            inbound, refused = await self._retrying(partial(self._screen, inbound))
            dead += refused
        # The ordering rule: what reaches a step depends only on the events, never on how the
        # batch was cut or which partition was fetched first (see merge_key).
        rank = self._rank
        inbound.sort(key=lambda i: merge_key(i.event, rank[i.record.topic]))
        pending, unrouted = self._by_entity(inbound)
        dead += unrouted
        if dead:  # derived from the records alone (ids from their addresses): no entity state to win first
            await self._retrying(partial(self._deliver, self._messages([], dead), [], dead))
        published: list[tuple[EntityRef, int]] = []  # outboxes delivered, to trim: (entity, version that stored them)
        written: list[tuple[EntityRef, Known, bool]] = []
        while pending:
            pending = await self._retrying(partial(self._apply_once, pending, published, written))
        marks = None
        if self._marks is not None:  # after the state: Redis holds the mark only if it holds the state
            highest: dict[tuple[str, int], int] = {}
            for rec in records:
                if rec.offset > highest.get((rec.topic, rec.partition), -1):
                    highest[(rec.topic, rec.partition)] = rec.offset
            marks = partial(self._marks.advance, highest)
        # One round trip for both: a batch's last Redis call delays the next batch's events.
        trimmed = await self._retrying(partial(self._store.trim, published, then=marks))
        done = {ref for (ref, _), ok in zip(published, trimmed, strict=True) if ok}
        for ref, known, outboxed in written:  # cached only once Redis holds exactly the entry (no outbox)
            if not outboxed or ref in done:
                self._cache.put(ref, known)
        m.BATCH_SECONDS.labels(name).observe(time.perf_counter() - started)
        m.EVENTS_DONE.labels(name).inc(len(records))

    async def _screen(self, inbound: list[_Inbound]) -> tuple[list[_Inbound], list[DeadLetter]]:
        """Operator commands pass the guard (signature, freshness, nonce) or become dead letters, never effects."""
        assert self._guard is not None
        commands = [i for i in inbound if type(i.event) is OperatorCommand]
        reasons = await self._guard.screen(
            [(i.record.topic, i.record.partition, i.record.offset, i.record.timestamp, i.event) for i in commands]
        )
        refused = {id(i): r for i, r in zip(commands, reasons, strict=True) if r is not None}
        if not refused:
            return inbound, []
        dead = [
            self._dead_letter(
                i.record, f"operator command refused: {refused[id(i)]}", i.event.run_id, reason="command_refused"
            )
            for i in commands
            if id(i) in refused
        ]
        return [i for i in inbound if id(i) not in refused], dead

    def _by_entity(self, inbound: Sequence[_Inbound]) -> tuple[dict[EntityRef, list[_Inbound]], list[DeadLetter]]:
        grouped: dict[tuple[str, str], list[_Inbound]] = {}
        dead: list[DeadLetter] = []
        keyed = self._p.keyed_topics
        for item in inbound:
            if item.record.topic in keyed and item.record.key:
                grouped.setdefault((item.event.run_id, item.record.key.decode()), []).append(item)
                continue
            try:
                entities = list(dict.fromkeys(self._p.entities_of(item.event)))
            except Exception as exc:  # a bug in entities_of must not stop the stream
                log.exception("entities_of failed; event dead-lettered", extra={"processor": self._p.name})
                dead.append(
                    self._dead_letter(
                        item.record, f"entities_of: {type(exc).__name__}: {exc}", item.event.run_id, reason="unroutable"
                    )
                )
                continue
            for entity in entities:
                grouped.setdefault((item.event.run_id, entity), []).append(item)
        return {EntityRef(run_id, entity): items for (run_id, entity), items in grouped.items()}, dead

    async def _apply_once(
        self,
        pending: dict[EntityRef, list[_Inbound]],
        published: list[tuple[EntityRef, int]],
        written: list[tuple[EntityRef, Known, bool]],
    ) -> dict[EntityRef, list[_Inbound]]:
        """One read-step-write round; the delivered outboxes are added to `published` (trimmed by the caller:
        until then a reader of the entity would publish them again, a duplicate by id, as after a crash), and
        what the won writes stored to `written` (entity, snapshot, whether its outbox awaits that trim)."""
        known = {ref: k for ref in pending if (k := self._cache.take(ref)) is not None}
        asked = self._parts_asked(pending)  # parts are not cached: an entity that names some is read
        snapshots = await self._store.read(
            [ref for ref in pending if ref not in known or (asked and asked[ref])], asked
        )
        await self._publish_left_behind(snapshots)
        token = f"{self._token_prefix}{next(self._attempts):x}"  # one per round: each writes an entity once
        changes: list[_Change] = []
        for ref, items in pending.items():
            cached = known.get(ref)
            snap = snapshots.get(ref)
            if snap is None:  # stepping from what this worker wrote: expect its token too
                snap, expected_token = cached.snapshot, cached.token
            else:
                expected_token = ""
            fresh, fences = self._new_events(snap, items)
            if not fences:
                if cached is not None and ref not in snapshots:  # all redelivered: the entry still holds
                    self._cache.put(ref, cached)
                continue
            if not fresh:  # only duplicates: advance the fences, nothing else
                write = Write(ref, snap.version, fences, token=token, expected_token=expected_token)
                changes.append(_Change(write, snap, None, None, (), [], []))
                continue
            recent = self._recent(snap, fresh)
            failed: list[DeadLetter] = []
            try:
                if cached is not None and cached.state is not None and cached.snapshot.state_raw == snap.state_raw:
                    state = cached.state
                else:
                    state = self._load(snap.state_raw)
                step = self._p.apply(ref.entity, state, [i.event for i in fresh], snap.parts)
            except Exception:  # one event's failure must cost only that event: step them one by one
                step, failed = self._step_each(ref, snap, fresh)
            messages = self._messages(step.outputs, failed)
            state_raw = self._codec.encode(step.state) if step.state is not None else None
            write = Write(
                ref,
                snap.version,
                fences,
                state_raw,
                tuple(step.history),
                ids_json(recent) if recent is not None else None,
                outbox.encode(messages),
                step.parts,
                token,
                expected_token,
            )
            changes.append(_Change(write, snap, step.state, recent, step.outputs, failed, messages))
        results = await self._store.write([c.write for c in changes])
        won = [c for c, r in zip(changes, results, strict=True) if r == APPLIED]
        # The outbox rule: only what a winning write stored goes out; a lost race publishes nothing.
        sent = [c for c in won if c.messages]
        if sent:
            await self._deliver(
                [msg for c in sent for msg in c.messages],
                [o for c in sent for o in c.outputs],
                [d for c in sent for d in c.failed],
            )
            published += [(c.write.ref, c.write.expected_version + 1) for c in sent]
        written += [(c.write.ref, self._known(c), bool(c.messages)) for c in won]
        moved = {c.write.ref: pending[c.write.ref] for c, r in zip(changes, results, strict=True) if r == VERSION_MOVED}
        if moved:
            m.STATE_CONFLICTS.labels(self._p.name).inc(len(moved))
        if self._p.on_applied is not None:
            self._notify([(c.write.ref, c.state) for c in won if c.state is not None])
        return moved

    def _known(self, change: _Change) -> Known:
        """What Redis holds after `change` won, its outbox published and trimmed."""
        w, snap = change.write, change.snapshot
        return Known(
            Snapshot(
                w.expected_version + 1,
                w.state_raw if w.state_raw is not None else snap.state_raw,
                {**snap.fences, **w.fences},
                change.recent if change.recent is not None else snap.recent_ids,
            ),
            change.state,
            w.token,
        )

    def _parts_asked(self, pending: dict[EntityRef, list[_Inbound]]) -> dict[EntityRef, list[str]] | None:
        """The parts each entity's events name (Processor.parts_of), to read with its state."""
        parts_of = self._p.parts_of
        if parts_of is None:
            return None
        return {ref: sorted({p for i in items for p in parts_of(i.event)}) for ref, items in pending.items()}

    async def _publish_left_behind(self, snapshots: dict[EntityRef, Snapshot]) -> None:
        """Publish, then trim, the outboxes a winning write stored but its worker did not trim (it
        crashed, its produce failed and this is the retry, or it is still publishing): they must go
        out before this worker's write replaces them. Same event ids, so a repeat is a duplicate by id."""
        left = [(ref, snap) for ref, snap in snapshots.items() if snap.outbox]
        if not left:
            return
        messages: list[OutMessage] = []
        for ref, snap in left:
            try:
                messages += outbox.decode(snap.outbox)
            except outbox.OutboxCorrupt as exc:  # a bug: say so, and do not let it block the entity forever
                log.error(
                    "unreadable outbox dropped",
                    extra={"processor": self._p.name, "entity": ref.entity, "error": str(exc)},
                )
        if messages:
            await deliver(self._send, messages, self._p.name)
            m.OUTBOX_REPUBLISHED.labels(self._p.name).inc(len(messages))
        await self._store.trim([(ref, snap.version) for ref, snap in left])

    def _step_each(self, ref: EntityRef, snap: Snapshot, fresh: Sequence[_Inbound]) -> tuple[Step, list[DeadLetter]]:
        log.exception("step failed; retrying its events one by one", extra={"processor": self._p.name})
        try:
            step, failed = step_each(
                self._p, ref.entity, self._load(snap.state_raw), [i.event for i in fresh], snap.parts
            )
        except Exception as exc:  # unreadable stored state: no event of this entity can apply
            step, failed = Step(), [(n, exc) for n in range(len(fresh))]
        m.STEP_FAILURES.labels(self._p.name).inc(len(failed))
        dead = [
            self._dead_letter(fresh[n].record, f"{type(exc).__name__}: {exc}", fresh[n].event.run_id, reason="step_failed")
            for n, exc in failed
        ]
        return step, dead

    def _notify(self, applied: Sequence[tuple[EntityRef, Any]]) -> None:
        hook = self._p.on_applied
        assert hook is not None
        for ref, state in applied:
            try:
                hook(ref.entity, state)
            except Exception:  # a metrics hook must never stop the stream
                log.exception("on_applied hook failed", extra={"processor": self._p.name})

    def _new_events(self, snap: Snapshot, items: Sequence[_Inbound]) -> tuple[list[_Inbound], dict[str, int]]:
        """The entity's events not yet applied (above their source's fence, not a known id) and the
        fences to advance (duplicates by id included)."""
        seen = set(snap.recent_ids) if self._dedupe_ids else set()
        new: list[_Inbound] = []
        fences: dict[str, int] = {}
        redelivered = duplicates = 0
        fields: dict[tuple[str, int], str] = {}
        stored = snap.fences
        for i in items:
            rec = i.record
            source = (rec.topic, rec.partition)
            field = fields.get(source)
            if field is None:
                field = fields[source] = fence_field(rec.topic, rec.partition)
            if rec.offset <= stored.get(field, -1):
                redelivered += 1
                continue
            if rec.offset > fences.get(field, -1):
                fences[field] = rec.offset
            if self._dedupe_ids and i.event.event_id in seen:
                duplicates += 1
                continue
            seen.add(i.event.event_id)
            new.append(i)
        if redelivered:
            m.EVENTS_SKIPPED.labels(self._p.name, "redelivered").inc(redelivered)
        if duplicates:
            m.EVENTS_SKIPPED.labels(self._p.name, "duplicate").inc(duplicates)
        return new, fences

    def _recent(self, snap: Snapshot, fresh: Sequence[_Inbound]) -> tuple[str, ...] | None:
        if not self._dedupe_ids:
            return None
        return (*snap.recent_ids, *(i.event.event_id for i in fresh))[-self._dedupe_ids :]

    def _load(self, raw: bytes | None) -> Any:
        return self._codec.decode(raw) if raw is not None else None

    @staticmethod
    def _messages(outputs: Sequence[Output], dead: Sequence[DeadLetter]) -> list[OutMessage]:
        messages = [
            # No record timestamp from occurred_at: replayed events are old, and retention would
            # delete a segment whose newest record looks older than the retention period.
            OutMessage(o.topic.name, o.topic.key_of(o.event), o.event.__pydantic_serializer__.to_json(o.event))
            for o in outputs
        ]
        messages += [
            OutMessage(DEADLETTER.name, DEADLETTER.key_of(d), d.__pydantic_serializer__.to_json(d)) for d in dead
        ]
        return messages

    async def _deliver(
        self, messages: Sequence[OutMessage], outputs: Sequence[Output], dead: Sequence[DeadLetter]
    ) -> None:
        """Send `messages` (built by _messages from `outputs` and `dead`) and count them."""
        if not messages:
            return
        replaced = await deliver(self._send, messages, self._p.name)
        for d in replaced:
            if d.error.startswith(REFUSED_PREFIX):  # an output the broker refused (a refused dead letter was counted)
                m.DEAD_LETTERS.labels(self._p.name, d.source_topic, "refused_by_broker").inc()
        dead = [*dead, *replaced]
        now = time.time()
        by_topic: dict[str, list[Output]] = {}
        for o in outputs:
            by_topic.setdefault(o.topic.name, []).append(o)
        for topic, outs in by_topic.items():  # one label lookup per topic, not per event
            m.EVENTS_OUT.labels(self._p.name, topic).inc(len(outs))
            if kind_field := m.DECISION_KIND.get(topic):
                for kind, count in Counter(str(getattr(o.event, kind_field, "")) for o in outs).items():
                    m.DECISIONS.labels(self._p.name, topic, kind).inc(count)
            latency = m.DECISION_LATENCY.labels(self._p.name, topic)
            for o in outs:
                latency.observe(max(0.0, now - o.event.occurred_at.timestamp()))
        for d in dead:
            log.warning(
                "dead letter",
                extra={
                    "processor": self._p.name,
                    "topic": d.source_topic,
                    "partition": d.partition,
                    "offset": d.offset,
                    "error": d.error,
                },
            )

    def _dead_letter(self, rec: Record, error: str, run_id: str | None = None, *, reason: str) -> DeadLetter:
        original = self._p.copies.get(rec.topic)
        if original is not None:  # the address stays the record's own, so the bytes can be found there
            error = f"{error} (a copy of {original} on the internal topic {rec.topic})"
        m.DEAD_LETTERS.labels(self._p.name, original or rec.topic, reason).inc()
        return dead_letter(
            self._p.name,
            topic=rec.topic,
            partition=rec.partition,
            offset=rec.offset,
            value=rec.value,
            key=rec.key,
            error=error,
            timestamp=rec.timestamp,
            run_id=run_id or run_id_of(rec.value) or (self._run_id if self._run_id != ALL_RUNS else "live"),
        )

    async def _retrying(self, attempt: Callable[[], Any]) -> Any:
        """Run attempt() until it succeeds; every failure is logged, counted and retried with backoff."""
        delay = 0.05
        while True:
            try:
                return await attempt()
            except (asyncio.CancelledError, PermanentFailure):
                raise
            except StateUnavailable as exc:
                m.REDIS_ERRORS.labels(self._p.name).inc()
                health.failing("redis", str(exc))
                log.warning(
                    "redis unavailable; retrying",
                    extra={"processor": self._p.name, "error": str(exc), "retry_in_s": delay},
                )
            except BrokerUnavailable as exc:
                m.KAFKA_ERRORS.labels(self._p.name).inc()
                health.failing("kafka", str(exc))
                log.warning(
                    "kafka unavailable; retrying",
                    extra={"processor": self._p.name, "error": str(exc), "retry_in_s": delay},
                )
            except Exception as exc:
                # Not known to be transient (a Lua error, a bug): still never skip the batch, but shout.
                m.BATCH_FAILURES.labels(self._p.name).inc()
                log.error(
                    "batch attempt failed; retrying",
                    exc_info=exc,
                    extra={"processor": self._p.name, "retry_in_s": delay},
                )
            if self._stopping():
                raise Stopping()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_backoff)


def merge_key(event: Event, rank: int) -> tuple[Any, int, str]:
    """Where an event goes in a processor's input order: event time, then the source's rank in the
    processor's sources (at equal times, e.g. a quarantine decision's causes before the intentions it
    holds), then the event id (a tie-break that is the same in every run of the same input; offsets and
    arrival are not)."""
    return (event.occurred_at, rank, event.event_id)
