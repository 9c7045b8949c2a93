"""The app factory: one Faust app per processor, running the runtime's batch pipeline."""

from __future__ import annotations

import asyncio
import gc
import logging
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import faust
import redis
import redis.asyncio as aioredis
from confluent_kafka import TopicPartition

from schemas import TopicSpec

from . import metrics
from .commands import CommandGuard
from .health import WORKER as health
from .ingress import EventTimeRule
from .kafka import ConfluentSender, FaustSender, Sender
from .logs import json_handler
from .processor import Processor
from .progress import ProgressMarks, behind
from .redisclient import async_client
from .relaystart import RelayStarts
from .runner import BatchRunner, Record, Stopping
from .security import client_config, describe, faust_credentials
from .services import redis_check, wait_for_services
from .settings import Settings
from .source import ConfluentSource
from .store import StateStore
from .topics import ensure_topics

log = logging.getLogger(__name__)
REPLY_TIMEOUT_S = 10.0  # redis-py's socket timeout for the worker's other Redis calls (gate, commands, marks)

Relay = Callable[[Sequence[Record], Sender], Awaitable[None]]
"""A stateless handler of an extra topic's batch (e.g. a repartition): returns once its effects are
delivered (the batch is committed after it), retrying transient errors itself."""


def app_id(name: str, settings: Settings) -> str:
    """The Faust app id, which is also the consumer group: `chorus-<name>` (+ an optional suffix)."""
    return f"chorus-{name}{settings.app_id_suffix}"


class _NoFaustConsumer(faust.App.BootStrategy):
    """Faust without its Kafka consumer: the confluent engine reads the sources itself (one group member)."""

    enable_kafka_consumer = False


class ProcessorApp(faust.App):
    """A Faust app that waits for its services and serves metrics before it starts consuming."""

    chorus_settings: Settings
    chorus_processor: str

    chorus_internal_topics: Sequence[TopicSpec] = ()

    async def on_first_start(self) -> None:
        s = self.chorus_settings
        # Probes answer while start-up waits for the services: live, not ready.
        health.redis_check = redis_check(s.redis_url)
        metrics.serve_metrics(self.chorus_processor, s.metrics_port)
        await wait_for_services(
            s.kafka_bootstrap_servers, s.redis_url, timeout_s=s.startup_timeout_s, should_stop=lambda: self.should_stop
        )
        # Internal topics must exist before the consumer subscribes (the broker may not auto-create,
        # and would not give them their partitions).
        if self.chorus_internal_topics:
            await _ensure_topics_retrying(s, self.chorus_internal_topics, lambda: self.should_stop)
        await super().on_first_start()


async def _ensure_topics_retrying(s: Settings, specs: Sequence[TopicSpec], stopping: Callable[[], bool]) -> None:
    delay = 0.5
    deadline = time.monotonic() + s.startup_timeout_s if s.startup_timeout_s else None
    while True:
        try:
            outcome = await asyncio.to_thread(ensure_topics, s.kafka_bootstrap_servers, specs, timeout_s=10.0)
            log.info("internal topics ready", extra={"topics": outcome})
            return
        except Exception as exc:
            if stopping() or (deadline is not None and time.monotonic() > deadline):
                raise
            log.warning("internal topics not created yet; retrying", extra={"error": repr(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


def build_app(
    processor: Processor[Any],
    settings: Settings | None = None,
    *,
    engine: str | None = None,
    relays: Mapping[str, Relay] | None = None,
    **faust_options: Any,
) -> ProcessorApp:
    """A Faust app running `processor`: its own app id / consumer group, no tables, no changelogs.

    `engine` (default `Settings.consumer_engine`): "confluent" reads the sources with a
    librdkafka batch consumer hosted in a Faust task (Faust's own consumer is off, so the app
    must not add Faust agents on topics); "faust" uses `stream.take_events`.
    `relays` maps extra topics to stateless batch handlers, run by the same engine and group
    (the conflict processor's repartition); the processor's batch and the relays' complete
    before the offsets are committed.
    `faust_options` override Faust settings (for example topic_allow_declare=True for an app
    that adds its own internal topics).
    """
    s = settings or Settings()
    engine = engine or s.consumer_engine
    ident = app_id(processor.name, s)
    options: dict[str, Any] = {
        "broker": [f"kafka://{host.strip()}" for host in s.kafka_bootstrap_servers.split(",")],
        # Faust's own Kafka client (aiokafka: its producer, and its consumer with the faust engine).
        "broker_credentials": faust_credentials(s),
        "store": "memory://",
        "topic_disable_leader": True,
        "topic_allow_declare": False,
        "consumer_auto_offset_reset": s.consumer_auto_offset_reset,
        "key_serializer": "raw",
        "value_serializer": "raw",
        "datadir": str(Path(tempfile.gettempdir()) / f"chorus-faust-{ident}"),
        "web_enabled": s.web_port is not None,
        "web_port": s.web_port or 6066,
        "logging_config": {"version": 1, "disable_existing_loggers": False, "root": {"level": s.log_level.upper()}},
        "loghandlers": [json_handler(s.log_json)],
        "producer_acks": -1,
        # A batch stuck retrying holds an unacked reference: waiting for it would hang every
        # shutdown and rebalance. Not waiting is safe: unacked offsets are never committed,
        # and fences + compare-and-set make a redelivery to another worker harmless.
        "stream_wait_empty": False,
    }
    options.update(faust_options)
    relays = dict(relays or {})
    if engine == "confluent":
        app = _build_confluent(processor, s, ident, options, relays)
    elif engine == "faust":
        app = _build_faust(processor, s, ident, options, relays)
    else:
        raise ValueError(f"unknown consumer engine {engine!r}")
    app.chorus_internal_topics = processor.internal_topics
    return app


def event_time_rule(s: Settings) -> EventTimeRule:
    """The ingress rule on event time (processors/runtime/ingress.py), from the settings."""
    return EventTimeRule(max_skew_s=s.max_clock_skew_s, max_age_s=s.max_event_age_s)


def _runner(
    processor: Processor[Any],
    s: Settings,
    client: aioredis.Redis,
    store_client: aioredis.Redis,
    sender: Any,
    app: faust.App,
    marks: ProgressMarks | None = None,
) -> BatchRunner:
    guard = CommandGuard(processor.name, client, s) if processor.verifies_commands else None
    return BatchRunner(
        processor,
        StateStore(store_client, processor.name, s.history_cap),
        sender,
        run_id=s.run_id,
        max_backoff_s=s.retry_max_backoff_s,
        dedupe_ids=s.dedupe_ids,
        stopping=lambda: app.should_stop,
        state_cache=s.state_cache_entities,
        event_time=event_time_rule(s),
        guard=guard,
        marks=marks,
    )


def _build_confluent(
    processor: Processor[Any], s: Settings, ident: str, options: dict[str, Any], relays: dict[str, Relay]
) -> ProcessorApp:
    app_cls = type("ConfluentProcessorApp", (ProcessorApp,), {"BootStrategy": _NoFaustConsumer})
    app: ProcessorApp = app_cls(ident, **options)
    app.chorus_settings = s
    app.chorus_processor = processor.name

    @app.task
    async def consume() -> None:
        client = async_client(s.redis_url, read_timeout_s=REPLY_TIMEOUT_S)
        # The store bounds each round trip itself (store.py): its client reads replies without a per-reply timer.
        store_client = async_client(s.redis_url, read_timeout_s=None)
        sender = ConfluentSender(
            s.kafka_bootstrap_servers,
            **{**client_config(s), "linger.ms": s.producer_linger_ms, "enable.idempotence": True},
        )
        marks = ProgressMarks(client, ident)
        runner = _runner(processor, s, client, store_client, sender, app, marks)
        own_topics = [spec.name for spec in processor.sources if spec.name not in relays]
        source = ConfluentSource(
            s.kafka_bootstrap_servers,
            ident,
            list(dict.fromkeys([*(spec.name for spec in processor.sources), *relays])),
            auto_offset_reset=s.consumer_auto_offset_reset,
            processor=processor.name,
            client=client_config(s),
            own_topics=own_topics,
            internal_topics=[spec.name for spec in processor.internal_topics],
            instance_id=s.group_instance_id,
            session_timeout_ms=s.consumer_session_timeout_ms,
            relay_starts=RelayStarts(
                redis.Redis.from_url(s.redis_url, socket_connect_timeout=5, socket_timeout=10), ident
            ),
            fetch_wait_ms=processor.fetch_wait_ms,
        )
        gate = _Gate(processor.name, s, client, source)
        log.info(
            "processor consuming",
            extra={
                "processor": processor.name,
                "app_id": ident,
                "run_id": s.run_id,
                "engine": "confluent",
                "kafka": describe(s),
            },
        )
        # Every event allocates many small objects (records, models, outputs): the default gen-0
        # threshold (700) would run the cyclic collector several times per batch over the whole
        # start-up heap. Freeze what start-up built and collect young objects less often.
        gc.freeze()
        gc.set_threshold(50_000, 20, 20)
        try:
            await source.start()
            health.consuming(s.health_stall_s, reports_turns=True, reports_assignment=True)
            while not app.should_stop:
                records = await source.batch(s.batch_max_events, s.batch_within_s)
                health.turned()
                gate.drop(source.take_revoked())
                assigned = source.take_assigned()
                if assigned and (lost := await _check_state(processor.name, source, marks, assigned)):
                    records = [r for r in records if (r.topic, r.partition) not in lost]
                    gate.drop(lost)
                if not records and not gate.held:
                    continue
                health.batch_started()
                try:
                    done: list[Record] = []
                    gate.hold([r for r in records if r.topic not in relays] if relays else records)
                    if released := await gate.release():
                        await runner.process(released)
                        done += released
                    # Relays last: their copies come back through the broker and are applied on a later
                    # turn whatever the order here, and relaying first made the copies of the previous
                    # turn, already fetched, wait for this turn's relay too.
                    for topic, relay in relays.items():
                        if mine := [r for r in records if r.topic == topic]:
                            await relay(mine, sender)
                            done += mine
                except Stopping:
                    log.warning("stopping with a batch unfinished; it will be redelivered")
                    return
                # Held events stay uncommitted: a crash or rebalance re-reads them.
                await source.commit(done)
                health.batch_done()
        except Exception as exc:  # the consume loop is the worker: without it the process must not live on
            if app.should_stop:  # a relay gave up its retries because we stop: the batch stays uncommitted
                log.warning("stopping with a batch unfinished; it will be redelivered", extra={"error": repr(exc)})
                return
            log.exception("consume loop failed; stopping the worker", extra={"processor": processor.name})
            await app.crash(exc)
        finally:
            health.stopped()
            source.close()
            await client.aclose()
            await store_client.aclose()

    return app


async def _check_state(
    name: str, source: ConfluentSource, marks: ProgressMarks, assigned: list[TopicPartition]
) -> set[tuple[str, int]]:
    """On assignment: is Redis behind the group's committed offsets? Then re-read from what it holds."""
    try:
        committed = {(tp.topic, tp.partition): tp.offset for tp in await source.committed(assigned)}
        lost = behind(committed, await marks.read(list(committed)))
    except Exception as exc:  # cannot judge now (Redis or the broker away): the fences still hold
        log.warning("state check on assignment skipped", extra={"processor": name, "error": repr(exc)})
        return set()
    if lost:
        metrics.STATE_BEHIND.labels(name).inc(len(lost))
        log.error(
            "STATE LOST: Redis is behind the committed offsets (writes lost after they were committed); "
            "re-reading those partitions from the last offset Redis holds",
            extra={
                "processor": name,
                "partitions": {
                    f"{t}:{p}": {"committed": committed[(t, p)], "reread_from": o} for (t, p), o in lost.items()
                },
            },
        )
        await source.rewind([TopicPartition(t, p, o) for (t, p), o in lost.items()])
    return set(lost)


class _Gate:
    """The ordering rule's hold: the processor's own events wait until every input partition has handed
    over what the broker holds (so the batch is the same whatever was fetched first), for at most
    `merge_max_wait_s`; and, with `hold_until_key`, until that Redis key exists (replays)."""

    def __init__(self, name: str, s: Settings, client: aioredis.Redis, source: ConfluentSource) -> None:
        self._name = name
        self._max_wait = s.merge_max_wait_s
        self._key = s.hold_until_key
        self._client = client
        self._source = source
        self._open = self._key is None
        self._checked = 0.0
        self.held: list[Record] = []
        self._since = 0.0

    def hold(self, records: Sequence[Record]) -> None:
        if records and not self.held:
            self._since = time.monotonic()
        self.held += records

    def drop(self, revoked: set[tuple[str, int]]) -> None:
        if revoked and self.held:
            self.held = [r for r in self.held if (r.topic, r.partition) not in revoked]

    async def release(self) -> list[Record]:
        if not self.held or not await self._opened():
            return []
        if not self._source.caught_up():
            if time.monotonic() - self._since < self._max_wait:
                return []
            metrics.MERGE_FORCED.labels(self._name).inc()
        released, self.held = self.held, []
        metrics.MERGE_WAIT.labels(self._name).observe(time.monotonic() - self._since)
        return released

    async def _opened(self) -> bool:
        if not self._open and time.monotonic() - self._checked >= 0.2:
            self._checked = time.monotonic()
            try:
                self._open = bool(await self._client.exists(self._key))
            except Exception as exc:  # Redis down: keep holding, the next look may succeed
                log.warning("hold key not readable; holding", extra={"processor": self._name, "error": repr(exc)})
            if self._open:
                log.info("hold key present; applying events", extra={"processor": self._name, "key": self._key})
        return self._open


def _build_faust(
    processor: Processor[Any], s: Settings, ident: str, options: dict[str, Any], relays: dict[str, Relay]
) -> ProcessorApp:
    app = ProcessorApp(ident, **options)
    app.chorus_settings = s
    app.chorus_processor = processor.name
    for topic, relay in relays.items():
        _faust_relay(app, s, topic, relay)

    source = app.topic(*(spec.name for spec in processor.sources), key_serializer="raw", value_serializer="raw")

    @app.agent(source, name=f"{processor.name}-batches")
    async def consume(stream: faust.StreamT) -> None:
        client = async_client(s.redis_url, read_timeout_s=REPLY_TIMEOUT_S)
        # The store bounds each round trip itself (store.py): its client reads replies without a per-reply timer.
        store_client = async_client(s.redis_url, read_timeout_s=None)
        runner = _runner(processor, s, client, store_client, FaustSender(app), app)
        log.info(
            "processor consuming",
            extra={"processor": processor.name, "app_id": ident, "run_id": s.run_id, "engine": "faust"},
        )

        async def apply(batch: list[faust.EventT]) -> bool:
            """Apply a batch and ack it; False if the worker stopped first (the batch stays uncommitted)."""
            health.batch_started()
            try:
                await runner.process([_record(event) for event in batch])
            except Stopping:
                log.warning("stopping with a batch unfinished; it will be redelivered")
                return False
            for event in batch:
                await stream.ack(event)
            health.batch_done()
            return True

        # Faust's stream reports neither its turns nor its assignment here: only stuck batches count.
        health.consuming(s.health_stall_s, reports_turns=False, reports_assignment=False)

        try:
            async for batch in stream.take_events(s.batch_max_events, within=s.batch_within_s):
                # take_events acks the batch whatever happens; an extra reference keeps the
                # offsets uncommitted unless the batch really completed (redelivered otherwise).
                for event in batch:
                    event.message.incref()
                if not await apply(list(batch)):
                    return
        finally:
            await client.aclose()
            await store_client.aclose()

    return app


def _faust_relay(app: ProcessorApp, s: Settings, topic: str, relay: Relay) -> None:
    @app.agent(app.topic(topic, key_serializer="raw", value_serializer="raw"), name=f"{app.chorus_processor}-{topic}")
    async def handle(stream: faust.StreamT) -> None:
        send = FaustSender(app)
        async for batch in stream.take_events(s.batch_max_events, within=s.batch_within_s):
            for event in batch:  # uncommitted unless the relay completes (see the processor's agent)
                event.message.incref()
            await relay([_record(event) for event in batch], send)
            for event in batch:
                await stream.ack(event)


def _record(event: faust.EventT) -> Record:
    msg = event.message
    return Record(msg.topic, msg.partition, msg.offset, msg.key, msg.value, msg.timestamp)
