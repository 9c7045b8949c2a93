"""Kafka topic administration from the registry: create idempotently, describe."""

from __future__ import annotations

import time
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic

from processors.conflict import INTERNAL_TOPICS
from schemas import REGISTRY, TopicSpec

from .errors import AdminError

# The registry's topics and the processors' internal ones: everything `chorus topics` manages.
ALL_TOPICS: tuple[TopicSpec, ...] = REGISTRY + INTERNAL_TOPICS
TIMEOUT_S = 30.0
# What a partition answers while its new leader is still taking over.
NOT_READY = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._TIMED_OUT,
}


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    cleanup_policy: str
    end_offsets: tuple[int, ...]

    @property
    def messages(self) -> int:
        return sum(self.end_offsets)


def _admin(bootstrap: str) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap})


def create_topics(
    bootstrap: str, specs: tuple[TopicSpec, ...] = ALL_TOPICS, *, replication: int | None = None
) -> dict[str, str]:
    """Create every topic that is missing; report 'created' or 'exists' per topic.

    An existing topic with fewer partitions than the registry asks for is an error:
    its keys would be co-partitioned differently from the rest.
    """
    admin = _admin(bootstrap)
    new = [
        NewTopic(spec.name, spec.partitions, replication or spec.replication, config=spec.config()) for spec in specs
    ]
    outcome: dict[str, str] = {}
    for name, future in admin.create_topics(new, request_timeout=TIMEOUT_S).items():
        try:
            future.result(timeout=TIMEOUT_S)
            outcome[name] = "created"
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise AdminError(f"cannot create topic {name}: {exc.args[0].str()}") from exc
            outcome[name] = "exists"
    metadata = _check_partitions(admin, specs)
    created = [name for name, result in outcome.items() if result == "created"]
    if created:
        # Leaders show in the metadata a moment before they serve: wait until each answers.
        consumer = _consumer(bootstrap)
        try:
            for name in created:
                _end_offsets(consumer, name, sorted(metadata.topics[name].partitions))
        finally:
            consumer.close()
    return outcome


def _check_partitions(admin: AdminClient, specs: tuple[TopicSpec, ...]):  # -> ClusterMetadata
    # A new topic reaches the metadata, and its partitions get leaders, a moment after create returns.
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        metadata = admin.list_topics(timeout=TIMEOUT_S)
        missing = [s.name for s in specs if not _led(metadata.topics.get(s.name))]
        if not missing:
            break
        if time.monotonic() > deadline:
            raise AdminError(f"topics without a leader for every partition: {', '.join(missing)}")
        time.sleep(0.2)
    for spec in specs:
        found = metadata.topics[spec.name]
        if len(found.partitions) < spec.partitions:
            raise AdminError(
                f"topic {spec.name} has {len(found.partitions)} partitions, the registry needs {spec.partitions}: "
                "delete it or add partitions"
            )
    return metadata


def _led(topic) -> bool:
    """The topic exists and every partition has a leader, so clients can use it."""
    return topic is not None and topic.error is None and all(p.leader >= 0 for p in topic.partitions.values())


def describe_topics(bootstrap: str, specs: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[TopicState | str]:
    """Partition count, cleanup policy and end offsets per topic; a plain name where it is missing."""
    admin = _admin(bootstrap)
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    existing = [spec for spec in specs if spec.name in metadata.topics]
    policies = _cleanup_policies(admin, [spec.name for spec in existing])
    consumer = _consumer(bootstrap)
    try:
        states: list[TopicState | str] = []
        for spec in specs:
            if spec not in existing:
                states.append(spec.name)
                continue
            partitions = sorted(metadata.topics[spec.name].partitions)
            ends = _end_offsets(consumer, spec.name, partitions)
            states.append(TopicState(spec.name, len(partitions), policies.get(spec.name, "?"), ends))
        return states
    finally:
        consumer.close()


def _consumer(bootstrap: str) -> Consumer:
    return Consumer({"bootstrap.servers": bootstrap, "group.id": "chorus-admin", "enable.auto.commit": False})


def _end_offsets(consumer: Consumer, name: str, partitions: list[int]) -> tuple[int, ...]:
    """End offset per partition, retrying while a new partition's leader is not serving yet."""
    deadline = time.monotonic() + TIMEOUT_S
    ends = []
    for partition in partitions:
        while True:
            try:
                ends.append(consumer.get_watermark_offsets(TopicPartition(name, partition), timeout=TIMEOUT_S)[1])
                break
            except KafkaException as exc:
                if exc.args[0].code() not in NOT_READY or time.monotonic() > deadline:
                    raise AdminError(f"cannot read offsets of {name}[{partition}]: {exc.args[0].str()}") from exc
                time.sleep(0.2)
    return tuple(ends)


def _cleanup_policies(admin: AdminClient, names: list[str]) -> dict[str, str]:
    if not names:
        return {}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    policies = {}
    for resource, future in admin.describe_configs(resources, request_timeout=TIMEOUT_S).items():
        entries = future.result(timeout=TIMEOUT_S)
        policies[resource.name] = entries["cleanup.policy"].value
    return policies
