"""The app factory: one Faust app per processor, running the runtime's batch pipeline."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import faust
import redis.asyncio as aioredis

from . import metrics
from .kafka import FaustSender
from .logs import json_handler
from .processor import Processor
from .runner import BatchRunner, Record, Stopping
from .services import wait_for_services
from .settings import Settings
from .store import StateStore

log = logging.getLogger(__name__)


def app_id(name: str, settings: Settings) -> str:
    """The Faust app id, which is also the consumer group: `chorus-<name>` (+ an optional suffix)."""
    return f"chorus-{name}{settings.app_id_suffix}"


class ProcessorApp(faust.App):
    """A Faust app that waits for its services and serves metrics before it starts consuming."""

    chorus_settings: Settings
    chorus_processor: str

    async def on_first_start(self) -> None:
        s = self.chorus_settings
        await wait_for_services(
            s.kafka_bootstrap_servers, s.redis_url, timeout_s=s.startup_timeout_s, should_stop=lambda: self.should_stop
        )
        metrics.serve_metrics(self.chorus_processor, s.metrics_port)
        await super().on_first_start()


def build_app(processor: Processor[Any], settings: Settings | None = None, **faust_options: Any) -> ProcessorApp:
    """A Faust app running `processor`: its own app id / consumer group, no tables, no changelogs.

    `faust_options` override Faust settings (for example topic_allow_declare=True for an app
    that adds its own internal topics). The app also exposes `.chorus_store()` for extra agents.
    """
    s = settings or Settings()
    ident = app_id(processor.name, s)
    options: dict[str, Any] = {
        "broker": [f"kafka://{host.strip()}" for host in s.kafka_bootstrap_servers.split(",")],
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
    app = ProcessorApp(ident, **options)
    app.chorus_settings = s
    app.chorus_processor = processor.name

    source = app.topic(*(spec.name for spec in processor.sources), key_serializer="raw", value_serializer="raw")

    @app.agent(source, name=f"{processor.name}-batches")
    async def consume(stream: faust.StreamT) -> None:
        client = aioredis.Redis.from_url(s.redis_url, socket_connect_timeout=5, socket_timeout=10)
        runner = BatchRunner(
            processor,
            StateStore(client, processor.name, s.history_cap),
            FaustSender(app),
            run_id=s.run_id,
            max_backoff_s=s.retry_max_backoff_s,
            dedupe_ids=s.dedupe_ids,
            stopping=lambda: app.should_stop,
        )
        log.info("processor consuming", extra={"processor": processor.name, "app_id": ident, "run_id": s.run_id})

        async def apply(batch: list[faust.EventT]) -> bool:
            """Apply a batch and ack it; False if the worker stopped first (the batch stays uncommitted)."""
            try:
                await runner.process([_record(event) for event in batch])
            except Stopping:
                log.warning("stopping with a batch unfinished; it will be redelivered")
                return False
            for event in batch:
                await stream.ack(event)
            return True

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


def _record(event: faust.EventT) -> Record:
    msg = event.message
    return Record(msg.topic, msg.partition, msg.offset, msg.key, msg.value, msg.timestamp)
