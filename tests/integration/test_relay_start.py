"""A new consumer group starts its internal (re-keyed) partitions where its relays began copying.

A second worker that takes over an internal partition before anything was committed there reads
every copy the first worker's relay wrote, and none of the copies older runs left on the topic.
"""

from __future__ import annotations

import asyncio

import pytest
import redis

from processors.runtime.relaystart import RelayStarts
from processors.runtime.source import ConfluentSource
from processors.runtime.topics import ensure_topics
from schemas import INTENTIONS, TopicSpec

from .runtime_workers import produce

pytestmark = pytest.mark.integration


def _source(services, topic: str, group: str, starts: RelayStarts | None) -> ConfluentSource:
    return ConfluentSource(
        services.kafka, group, [topic], auto_offset_reset="earliest", processor="test",
        own_topics=[topic], internal_topics=[topic], relay_starts=starts,
    )  # fmt: skip


async def _read(source: ConfluentSource, want: int, timeout_s: float = 60.0) -> list[int]:
    offsets: list[int] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while len(offsets) < want and loop.time() < deadline:
        offsets += [r.offset for r in await source.batch(100, 0.5)]
    return offsets


def test_a_new_owner_reads_the_copies_relayed_before_any_commit_and_no_older_ones(services, run_id) -> None:
    topic = TopicSpec(f"chorus-test.relay-start-{run_id}", "agent_id", INTENTIONS.model, "test", partitions=1)
    ensure_topics(services.kafka, [topic])
    produce(services, [(topic.name, b"k", b"an older run's copy") for _ in range(3)])
    group = f"chorus-test-{run_id}"
    starts = RelayStarts(redis.Redis.from_url(services.redis_url), group)

    async def scenario() -> list[int]:
        relaying = _source(services, topic.name, group, starts)  # the first worker, whose relay copies
        try:
            await relaying.start()  # it marks where its copies will begin
        finally:
            relaying.close()
        produce(services, [(topic.name, b"k", f"copy {n}".encode()) for n in range(2)])
        owner = _source(services, topic.name, group, starts)  # the second worker: no commit on the partition yet
        try:
            await owner.start()
            return await _read(owner, want=2)
        finally:
            owner.close()

    assert asyncio.run(scenario()) == [3, 4]


def test_a_new_group_never_rereads_the_copies_older_runs_left(services, run_id) -> None:
    topic = TopicSpec(f"chorus-test.relay-start-{run_id}", "agent_id", INTENTIONS.model, "test", partitions=1)
    ensure_topics(services.kafka, [topic])
    produce(services, [(topic.name, b"k", b"an older run's copy") for _ in range(3)])
    starts = RelayStarts(redis.Redis.from_url(services.redis_url), f"chorus-test-{run_id}")

    async def scenario() -> list[int]:
        owner = _source(services, topic.name, f"chorus-test-{run_id}", starts)
        try:
            await owner.start()
            first: list[int] = []
            for _ in range(120):  # until the partition is assigned (an empty batch may come first)
                first += [r.offset for r in await owner.batch(100, 0.5)]
                if owner.take_assigned():
                    break
            first += await _read(owner, want=1, timeout_s=3.0)  # nothing older is re-read
            produce(services, [(topic.name, b"k", b"a new copy")])
            return first + await _read(owner, want=1)
        finally:
            owner.close()

    assert asyncio.run(scenario()) == [3]
