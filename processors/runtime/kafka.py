"""Kafka plumbing shared by processors, tests and the bench: senders and consumer-group positioning."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from schemas import PARTITIONER

from .topics import probe_consumer, serving_end_offsets


@dataclass(frozen=True)
class OutMessage:
    topic: str
    key: bytes | None
    value: bytes
    timestamp: float | None = None


class Sender(Protocol):
    """Produces messages and returns only once the broker has acknowledged every one of them."""

    async def __call__(self, messages: Sequence[OutMessage]) -> None: ...


class FaustSender:
    """Sends through a Faust app's producer (aiokafka), awaiting every delivery."""

    def __init__(self, app: object) -> None:
        self._app = app

    async def __call__(self, messages: Sequence[OutMessage]) -> None:
        producer = self._app.producer  # type: ignore[attr-defined]
        futures = [await producer.send(m.topic, m.key, m.value, None, m.timestamp, None) for m in messages]
        if futures:
            await asyncio.gather(*futures)


class ConfluentSender:
    """Sends with confluent-kafka (tests, bench, tools), flushing until every delivery is confirmed."""

    def __init__(self, bootstrap: str, **config: str | int) -> None:
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, "linger.ms": 5, "partitioner": PARTITIONER, **config}
        )

    async def __call__(self, messages: Sequence[OutMessage]) -> None:
        await asyncio.to_thread(self.send_sync, messages)

    def send_sync(self, messages: Sequence[OutMessage]) -> None:
        errors: list[str] = []

        def report(err: object, _msg: object) -> None:
            if err is not None:
                errors.append(str(err))

        for m in messages:
            ts = int(m.timestamp * 1000) if m.timestamp else 0
            while True:
                try:
                    self._producer.produce(m.topic, m.value, m.key, timestamp=ts, on_delivery=report)
                    break
                except BufferError:
                    self._producer.poll(0.1)
        self._producer.flush()
        if errors:
            raise KafkaException(errors[0])


def end_offsets(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    """The current end (high watermark) of every partition of the topics."""
    consumer = probe_consumer(bootstrap)
    try:
        positions: list[TopicPartition] = []
        for name in topics:
            partitions = sorted(consumer.list_topics(name, timeout=10).topics[name].partitions)
            ends = serving_end_offsets(consumer, name, partitions)
            positions.extend(TopicPartition(name, p, end) for p, end in zip(partitions, ends, strict=True))
        return positions
    finally:
        consumer.close()


def commit_group_offsets(bootstrap: str, group: str, positions: Sequence[TopicPartition]) -> None:
    """Make `group` start at these positions (the group must have no live members)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=list(positions), asynchronous=False)
    finally:
        consumer.close()


def start_group_at_end(bootstrap: str, group: str, topics: Iterable[str]) -> list[TopicPartition]:
    """Position a fresh consumer group at the current end of the topics; returns the positions."""
    positions = end_offsets(bootstrap, topics)
    commit_group_offsets(bootstrap, group, positions)
    return positions
