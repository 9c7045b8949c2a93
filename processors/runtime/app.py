"""The app factory: one Faust app per processor, running the runtime's batch pipeline."""

from __future__ import annotations

import gc
import logging
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import faust
import redis.asyncio as aioredis

from . import metrics
from .commands import CommandGuard
from .health import WORKER as health
from .ingress import EventTimeRule
from .kafka import ConfluentSender, FaustSender, Sender
from .logs import json_handler
from .processor import Processor
from .runner import BatchRunner, Record, Stopping
from .security import client_config, describe, faust_credentials
from .services import redis_check, wait_for_services
from .settings import Settings
from .source import ConfluentSource
from .store import StateStore

log = logging.getLogger(__name__)

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

    async def on_first_start(self) -> None:
        s = self.chorus_settings
        # Probes answer while start-up waits for the services: live, not ready.
        health.redis_check = redis_check(s.redis_url)
        metrics.serve_metrics(self.chorus_processor, s.metrics_port)
        await wait_for_services(
            s.kafka_bootstrap_servers, s.redis_url, timeout_s=s.startup_timeout_s, should_stop=lambda: self.should_stop
        )
        await super().on_first_start()


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
    return app


def event_time_rule(s: Settings) -> EventTimeRule:
    """The ingress rule on event time (processors/runtime/ingress.py), from the settings."""
    return EventTimeRule(max_skew_s=s.max_clock_skew_s, max_age_s=s.max_event_age_s)


def _runner(processor: Processor[Any], s: Settings, client: aioredis.Redis, sender: Any, app: faust.App) -> BatchRunner:
    guard = CommandGuard(processor.name, client, s) if processor.verifies_commands else None
    return BatchRunner(
        processor,
        StateStore(client, processor.name, s.history_cap),
        sender,
        run_id=s.run_id,
        max_backoff_s=s.retry_max_backoff_s,
        dedupe_ids=s.dedupe_ids,
        stopping=lambda: app.should_stop,
        state_cache=s.state_cache_entities,
        event_time=event_time_rule(s),
        guard=guard,
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
        client = aioredis.Redis.from_url(s.redis_url, socket_connect_timeout=5, socket_timeout=10)
        sender = ConfluentSender(
            s.kafka_bootstrap_servers,
            **{**client_config(s), "linger.ms": s.producer_linger_ms, "enable.idempotence": True},
        )
        runner = _runner(processor, s, client, sender, app)
        source = ConfluentSource(
            s.kafka_bootstrap_servers,
            ident,
            list(dict.fromkeys([*(spec.name for spec in processor.sources), *relays])),
            auto_offset_reset=s.consumer_auto_offset_reset,
            processor=processor.name,
            client=client_config(s),
        )
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
                if not records:
                    continue
                health.batch_started()
                try:
                    for topic, relay in relays.items():
                        if mine := [r for r in records if r.topic == topic]:
                            await relay(mine, sender)
                    own = [r for r in records if r.topic not in relays] if relays else records
                    if own:
                        await runner.process(own)
                except Stopping:
                    log.warning("stopping with a batch unfinished; it will be redelivered")
                    return
                await source.commit(records)
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

    return app


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
        client = aioredis.Redis.from_url(s.redis_url, socket_connect_timeout=5, socket_timeout=10)
        runner = _runner(processor, s, client, FaustSender(app), app)
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
