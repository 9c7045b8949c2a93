"""The foundation against real services: topics exist as the registry says, every event
type crosses the real broker intact, and Redis answers."""

from __future__ import annotations

import time

import pytest
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from hypothesis import HealthCheck, given, settings

from chorus import admin
from schemas import PARTITIONER, REGISTRY, decode, encode
from tests.services import Services
from tests.strategies import EVENTS

pytestmark = pytest.mark.integration


def test_every_registry_topic_exists_with_its_partitions_and_cleanup_policy(services: Services) -> None:
    states = {state.name: state for state in admin.describe_topics(services.kafka) if not isinstance(state, str)}
    for spec in REGISTRY:
        assert states[spec.name].partitions >= spec.partitions
        assert states[spec.name].cleanup_policy == spec.cleanup_policy


def test_creating_the_topics_again_changes_nothing(services: Services) -> None:
    assert set(admin.create_topics(services.kafka).values()) == {"exists"}


def test_one_event_of_every_type_round_trips_through_the_broker(services: Services, run_id: str) -> None:
    sample = {}

    @given(**{spec.name.replace(".", "_"): EVENTS[spec.model] for spec in REGISTRY})
    @settings(max_examples=1, database=None, suppress_health_check=list(HealthCheck))
    def draw(**events) -> None:
        sample.update(events)

    draw()
    sent = {
        spec.name: sample[spec.name.replace(".", "_")].model_copy(update={"run_id": run_id}) for spec in REGISTRY
    }
    producer = Producer({"bootstrap.servers": services.kafka, "enable.idempotence": True, "partitioner": PARTITIONER})
    positions = {}

    def delivered(err, msg) -> None:
        assert err is None, err
        positions[msg.topic()] = (msg.partition(), msg.offset())

    for spec in REGISTRY:
        producer.produce(spec.name, key=spec.key_of(sent[spec.name]), value=encode(sent[spec.name]), on_delivery=delivered)
    assert producer.flush(30) == 0
    assert set(positions) == {spec.name for spec in REGISTRY}

    consumer = Consumer({"bootstrap.servers": services.kafka, "group.id": f"{run_id}-reader", "enable.auto.commit": False})
    consumer.assign([TopicPartition(name, partition, offset) for name, (partition, offset) in positions.items()])
    received = {}
    deadline = time.monotonic() + 30
    while len(received) < len(REGISTRY) and time.monotonic() < deadline:
        msg = consumer.poll(0.5)
        if msg is None or msg.error():
            continue
        spec = next(s for s in REGISTRY if s.name == msg.topic())
        received[msg.topic()] = (msg.key(), decode(spec.model, msg.value()))
    consumer.close()

    for spec in REGISTRY:
        key, event = received[spec.name]
        assert event == sent[spec.name]
        assert key == spec.key_of(event)


def test_redis_stores_and_returns_a_value(services: Services, run_id: str) -> None:
    client = redis.Redis.from_url(services.redis_url)
    key = f"chorus:{run_id}:probe"
    client.set(key, "alive", ex=60)
    assert client.get(key) == b"alive"
    client.delete(key)
