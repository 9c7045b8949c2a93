"""The conflict processor's own internal topic: intentions repartitioned by resource."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from schemas import Intention, TopicSpec

CLAIMS = TopicSpec(
    "chorus-conflict.claims-by-resource",
    "resource",
    Intention,
    "Intentions repartitioned by resource, so every claim on one resource meets in one place (internal).",
    partitions=8,
    retention_ms=24 * 3600 * 1000,
)
INTERNAL_TOPICS = (CLAIMS,)


def ensure_internal_topic(bootstrap: str, timeout_s: float = 30.0) -> str:
    """Create the repartition topic before any consumer subscribes (the broker may not
    auto-create); 'created' or 'exists'."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(CLAIMS.name, CLAIMS.partitions, CLAIMS.replication, config=CLAIMS.config())
    try:
        admin.create_topics([new], request_timeout=timeout_s)[CLAIMS.name].result(timeout=timeout_s)
    except KafkaException as exc:
        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise
        return "exists"
    return "created"
