"""Kafka topic administration from the registry: create idempotently, describe."""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka.admin import AdminClient, ConfigResource

from processors.conflict import INTERNAL_TOPICS as CONFLICT_INTERNAL
from processors.quarantine import INTERNAL_TOPICS as QUARANTINE_INTERNAL
from processors.runtime.security import client_config
from processors.runtime.topics import TIMEOUT_S, ensure_topics, probe_consumer, serving_end_offsets
from processors.trust import INTERNAL_TOPICS as TRUST_INTERNAL
from schemas import REGISTRY, TopicSpec

# The registry's topics and the processors' internal ones: everything `chorus topics` manages.
ALL_TOPICS: tuple[TopicSpec, ...] = REGISTRY + CONFLICT_INTERNAL + TRUST_INTERNAL + QUARANTINE_INTERNAL


@dataclass(frozen=True)
class TopicState:
    name: str
    partitions: int
    cleanup_policy: str
    end_offsets: tuple[int, ...]

    @property
    def messages(self) -> int:
        return sum(self.end_offsets)


def create_topics(
    bootstrap: str, specs: tuple[TopicSpec, ...] = ALL_TOPICS, *, replication: int | None = None
) -> dict[str, str]:
    """Create every topic that is missing and wait until it serves; 'created' or 'exists' per topic."""
    return ensure_topics(bootstrap, specs, replication=replication)


def describe_topics(bootstrap: str, specs: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[TopicState | str]:
    """Partition count, cleanup policy and end offsets per topic; a plain name where it is missing."""
    admin = AdminClient(client_config(bootstrap=bootstrap))
    metadata = admin.list_topics(timeout=TIMEOUT_S)
    existing = [spec for spec in specs if spec.name in metadata.topics]
    policies = _cleanup_policies(admin, [spec.name for spec in existing])
    consumer = probe_consumer(bootstrap)
    try:
        states: list[TopicState | str] = []
        for spec in specs:
            if spec not in existing:
                states.append(spec.name)
                continue
            partitions = sorted(metadata.topics[spec.name].partitions)
            ends = serving_end_offsets(consumer, spec.name, partitions)
            states.append(TopicState(spec.name, len(partitions), policies.get(spec.name, "?"), ends))
        return states
    finally:
        consumer.close()


def _cleanup_policies(admin: AdminClient, names: list[str]) -> dict[str, str]:
    if not names:
        return {}
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    policies = {}
    for resource, future in admin.describe_configs(resources, request_timeout=TIMEOUT_S).items():
        entries = future.result(timeout=TIMEOUT_S)
        policies[resource.name] = entries["cleanup.policy"].value
    return policies
