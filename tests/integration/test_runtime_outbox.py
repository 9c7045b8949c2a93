"""The transactional outbox: a decision is published only by the worker whose state write wins,
and a crash between the write and the publication loses nothing and publishes once (by id)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

import pytest
import redis.asyncio as aioredis
from confluent_kafka import Consumer, TopicPartition

from processors.runtime import BatchRunner, ConfluentSender, StateStore
from processors.runtime.kafka import OutMessage, end_offsets
from processors.runtime.store import Write
from processors.trust import TrustPolicy
from processors.trust.app import make_processor
from schemas import TRUST

from .test_runtime_redelivery import trust_records

pytestmark = pytest.mark.integration


class Recording:
    """A sender that remembers what it was asked to publish (and publishes it to the real broker)."""

    def __init__(self, send: ConfluentSender) -> None:
        self._send = send
        self.sent: list[OutMessage] = []

    async def __call__(self, messages: Sequence[OutMessage]) -> None:
        await self._send(messages)
        self.sent += messages


class Crash(BaseException):
    """The process dies here (not an Exception: the runner's retry loop must not catch it)."""


class CrashingSender:
    """Dies on its first publication, before anything reaches the broker: kill -9 between write and publish."""

    async def __call__(self, messages: Sequence[OutMessage]) -> None:
        raise Crash()


class OverlappingStore(StateStore):
    """Between this worker's read and its write, `other` runs to completion: a rebalance overlap in
    which a second owner of the same entity writes first, so this worker's compare-and-set loses."""

    def __init__(self, client: aioredis.Redis, other: Callable[[], Awaitable[None]]) -> None:
        super().__init__(client, "trust", history_cap=50)
        self._other: Callable[[], Awaitable[None]] | None = other

    async def write(self, writes: Sequence[Write]) -> list[int]:
        if self._other is not None and writes:
            other, self._other = self._other, None
            await other()
        return await super().write(writes)


def published_ids(services, starts: dict[tuple[str, int], int], run_id: str) -> Counter[str]:
    """How often each event id of the run appears on immune.trust after `starts`."""
    ends = {(tp.topic, tp.partition): tp.offset for tp in end_offsets(services.kafka, [TRUST.name])}
    consumer = Consumer({"bootstrap.servers": services.kafka, "group.id": f"outbox-{time.time()}"})
    consumer.assign([TopicPartition(t, p, starts.get((t, p), 0)) for (t, p) in ends])
    remaining = {tp for tp, end in ends.items() if end > starts.get(tp, 0)}
    ids: Counter[str] = Counter()
    deadline = time.monotonic() + 30
    try:
        while remaining and time.monotonic() < deadline:
            for msg in consumer.consume(500, 0.5):
                if msg.error():
                    continue
                if msg.offset() + 1 >= ends[(msg.topic(), msg.partition())]:
                    remaining.discard((msg.topic(), msg.partition()))
                event = json.loads(msg.value())
                if event["run_id"] == run_id:
                    ids[event["event_id"]] += 1
    finally:
        consumer.close()
    assert not remaining, "could not read immune.trust to its end"
    return ids


def trust_starts(services) -> dict[tuple[str, int], int]:
    return {(tp.topic, tp.partition): tp.offset for tp in end_offsets(services.kafka, [TRUST.name])}


def test_the_worker_whose_write_loses_the_race_publishes_nothing(services, run_id) -> None:
    records = trust_records(run_id)
    processor = make_processor(TrustPolicy(recovery_clean_events=5))
    starts = trust_starts(services)

    async def scenario() -> tuple[list[OutMessage], list[OutMessage], int]:
        client = aioredis.Redis.from_url(services.redis_url)
        try:
            kafka = ConfluentSender(services.kafka)
            winner_sends, loser_sends = Recording(kafka), Recording(kafka)
            winner = BatchRunner(processor, StateStore(client, "trust", 50), winner_sends, run_id=run_id)
            loser = BatchRunner(
                processor, OverlappingStore(client, lambda: winner.process(records)), loser_sends, run_id=run_id
            )
            await loser.process(records)  # reads, then the winner writes and publishes, then it writes: loses
            left = (await StateStore(client, "trust", 50).get(run_id, "a1")).outbox
            return winner_sends.sent, loser_sends.sent, len(left)
        finally:
            await client.aclose()

    won, lost, left = asyncio.run(scenario())
    assert len(won) > 6  # the anomalies' trust changes and recoveries
    assert lost == []  # before the outbox the loser had published its (identical) decisions first
    assert left == 0  # published, then trimmed
    ids = published_ids(services, starts, run_id)
    assert sorted(ids) == sorted(json.loads(m.value)["event_id"] for m in won)
    assert set(ids.values()) == {1}


def test_a_crash_between_state_write_and_publication_is_published_by_the_next_start_exactly_once(
    services, run_id
) -> None:
    records = trust_records(run_id)
    processor = make_processor(TrustPolicy(recovery_clean_events=5))
    starts = trust_starts(services)

    async def scenario() -> tuple[bytes, bytes, int, list[OutMessage]]:
        client = aioredis.Redis.from_url(services.redis_url)
        try:
            store = StateStore(client, "trust", 50)
            crashing = BatchRunner(processor, store, CrashingSender(), run_id=run_id)
            with pytest.raises(Crash):
                await crashing.process(records)
            after_crash = await store.get(run_id, "a1")
            # The restarted worker: the batch was never committed, so it is redelivered.
            restarted = Recording(ConfluentSender(services.kafka))
            await BatchRunner(processor, store, restarted, run_id=run_id).process(records)
            after_restart = await store.get(run_id, "a1")
            assert after_restart.version == after_crash.version  # nothing applied twice
            return after_crash.outbox, after_restart.outbox, after_crash.version, restarted.sent
        finally:
            await client.aclose()

    outbox_after_crash, outbox_after_restart, version, republished = asyncio.run(scenario())
    assert version == 1 and outbox_after_crash  # state written, its outputs waiting in the outbox
    assert outbox_after_restart == b""
    ids = published_ids(services, starts, run_id)
    assert len(ids) > 6
    assert set(ids.values()) == {1}  # everything the crashed write decided, once
    assert sorted(ids) == sorted(json.loads(m.value)["event_id"] for m in republished)
