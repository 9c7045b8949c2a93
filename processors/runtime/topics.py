"""Topics from their specs: created when missing, usable when this returns.

Used by `chorus topics create` for the registry and by a processor for its internal topics.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from schemas import TopicSpec

from .errors import TopicError
from .security import client_config

TIMEOUT_S = 30.0
# What a partition answers while its new leader is still taking over.
NOT_READY = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._TIMED_OUT,
}


def ensure_topics(
    bootstrap: str, specs: Sequence[TopicSpec], *, replication: int | None = None, timeout_s: float = TIMEOUT_S
) -> dict[str, str]:
    """Create every topic that is missing; report 'created' or 'exists' per topic.

    Returns only once every partition of a new topic serves: a new topic reaches the
    metadata, and its partitions show leaders, a moment before clients can use them.
    An existing topic with fewer partitions than its spec is an error: its keys would be
    co-partitioned differently from the rest.
    """
    admin = AdminClient(client_config(bootstrap=bootstrap))
    new = [NewTopic(s.name, s.partitions, replication or s.replication, config=s.config()) for s in specs]
    outcome: dict[str, str] = {}
    for name, future in admin.create_topics(new, request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
            outcome[name] = "created"
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TopicError(f"cannot create topic {name}: {exc.args[0].str()}") from exc
            outcome[name] = "exists"
    metadata = _wait_for_leaders(admin, specs, timeout_s)
    created = [name for name, result in outcome.items() if result == "created"]
    if created:
        consumer = probe_consumer(bootstrap)
        try:
            for name in created:
                serving_end_offsets(consumer, name, sorted(metadata.topics[name].partitions), timeout_s)
        finally:
            consumer.close()
    return outcome


def probe_consumer(bootstrap: str) -> Consumer:
    """A consumer for offset look-ups only: it never subscribes or commits."""
    return Consumer({**client_config(bootstrap=bootstrap), "group.id": "chorus-offsets-probe", "enable.auto.commit": False})


def serving_end_offsets(
    consumer: Consumer, name: str, partitions: Sequence[int], timeout_s: float = TIMEOUT_S
) -> tuple[int, ...]:
    """End offset (high watermark) per partition, retrying while a new partition's leader is not serving yet."""
    deadline = time.monotonic() + timeout_s
    ends = []
    for partition in partitions:
        while True:
            try:
                ends.append(consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=timeout_s)[1])
                break
            except KafkaException as exc:
                if exc.args[0].code() not in NOT_READY or time.monotonic() > deadline:
                    raise TopicError(f"cannot read offsets of {name}[{partition}]: {exc.args[0].str()}") from exc
                time.sleep(0.2)
    return tuple(ends)


def _wait_for_leaders(admin: AdminClient, specs: Sequence[TopicSpec], timeout_s: float):  # -> ClusterMetadata
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = admin.list_topics(timeout=timeout_s)
        missing = [s.name for s in specs if not _led(metadata.topics.get(s.name))]
        if not missing:
            break
        if time.monotonic() > deadline:
            raise TopicError(f"topics without a leader for every partition: {', '.join(missing)}")
        time.sleep(0.2)
    for spec in specs:
        found = metadata.topics[spec.name]
        if len(found.partitions) < spec.partitions:
            raise TopicError(
                f"topic {spec.name} has {len(found.partitions)} partitions, its spec needs {spec.partitions}: "
                "delete it or add partitions"
            )
    return metadata


def _led(topic) -> bool:  # noqa: ANN001 - confluent-kafka's TopicMetadata
    """The topic exists and every partition has a leader."""
    return topic is not None and topic.error is None and all(p.leader >= 0 for p in topic.partitions.values())
