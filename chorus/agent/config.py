"""How the SDK reads the one settings model and turns it into Kafka client configuration."""

from __future__ import annotations

from typing import Any

from processors.runtime.security import client_config
from processors.runtime.settings import Settings
from schemas import PARTITIONER


def load_settings(settings: Settings | None = None) -> Settings:
    return settings if settings is not None else Settings()


def kafka_config(settings: Settings) -> dict[str, Any]:
    """librdkafka configuration common to the SDK's and the ingest's clients: bootstrap servers and
    the Kafka security settings (SASL/TLS) of the settings model, through the runtime's one builder."""
    return client_config(settings)


def producer_config(settings: Settings, *, queue_max: int, linger_ms: float) -> dict[str, Any]:
    """Idempotent (no duplicate and no reordering on retries), murmur2-partitioned, bounded by `queue_max`."""
    return kafka_config(settings) | {
        "partitioner": PARTITIONER,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": linger_ms,
        "queue.buffering.max.messages": queue_max,
        # The message count is the bound the SDK reports; the byte bound is set out of its way.
        "queue.buffering.max.kbytes": 2097151,
        "compression.type": "lz4",
    }
