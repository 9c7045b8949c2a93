"""At-least-once delivery, exactly-once effect: redelivered events leave Redis state as if seen once."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from processors.baseline.app import make_processor as baseline_processor
from processors.runtime import BatchRunner, ConfluentSender, Record, Settings, StateStore
from processors.runtime.statecodec import as_json
from processors.runtime.store import VERSION_MOVED, EntityRef, Write
from processors.trust import TrustPolicy
from processors.trust.app import make_processor as trust_processor
from schemas import ANOMALIES, INTENTIONS, VITALS, Anomaly, Intention, Vitals, encode

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def vitals_records(run_id: str, n: int) -> list[Record]:
    rnd = random.Random(7)
    records = []
    for i in range(n):
        agent = f"a{i % 3}"
        spike = agent == "a1" and i > 60
        v = Vitals(
            event_id=f"{run_id}-v{i}",
            occurred_at=T0 + timedelta(seconds=i),
            run_id=run_id,
            producer="sim",
            agent_id=agent,
            latency_ms=900.0 if spike else 100 + rnd.gauss(0, 3),
            error_rate=0.01,
            queue_depth=2,
            cpu=0.3,
            requests_per_s=10,
        )
        # one partition per agent, as the agent_id key guarantees on the broker
        records.append(Record(VITALS.name, i % 3, 1000 + i, agent.encode(), encode(v), None))
    return records


def trust_records(run_id: str) -> list[Record]:
    records = []
    for i in range(60):
        at = T0 + timedelta(seconds=i)
        if i % 10 == 3:
            e = Anomaly(
                event_id=f"{run_id}-an{i}",
                occurred_at=at,
                run_id=run_id,
                producer="baseline",
                agent_id="a1",
                metric="cpu",
                value=1,
                mean=0.3,
                stddev=0.01,
                zscore=70,
                severity="high",
                sustained_samples=3,
            )
            records.append(Record(ANOMALIES.name, 2, 500 + i, b"a1", encode(e), None))
        else:
            e = Intention(
                event_id=f"{run_id}-in{i}",
                occurred_at=at,
                run_id=run_id,
                producer="sim",
                agent_id="a1",
                action="acquire",
                resource="gpu",
                amount=1,
            )
            records.append(Record(INTENTIONS.name, 5, 700 + i, b"a1", encode(e), None))
    return records


async def apply(
    services, processor, run_id: str, batches: list[list[Record]], *, workers: int = 1, state_cache: int = 1000
) -> tuple[dict, list[str]]:
    """Apply the batches (round-robin over `workers` runners, each with its own state cache as in a
    worker process); the resulting states (as stored, fences) and histories."""
    client = aioredis.Redis.from_url(services.redis_url)
    try:
        store = StateStore(client, processor.name, history_cap=50)
        send = ConfluentSender(services.kafka)
        runners = [BatchRunner(processor, store, send, run_id=run_id, state_cache=state_cache) for _ in range(workers)]
        for i, batch in enumerate(batches):
            await runners[i % workers].process(batch)
        agents = sorted({rec.key.decode() for batch in batches for rec in batch})
        states = {a: await store.get(run_id, a) for a in agents}
        histories = [h for a in agents for h in await store.history(run_id, a)]
        return {a: (s.state_raw, dict(s.fences)) for a, s in states.items()}, histories
    finally:
        await client.aclose()


def chunks(records: list[Record], size: int) -> list[list[Record]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def test_redelivered_vitals_leave_baseline_state_as_if_applied_once(services, run_id) -> None:
    records = vitals_records(run_id, 90)
    processor = baseline_processor(Settings())
    once = asyncio.run(apply(services, processor, run_id, chunks(records, 25)))
    # Crash-and-rebalance shaped redelivery: overlapping, differently cut batches of the same offsets.
    replay = chunks(records[10:], 7) + chunks(records, 40)
    twice = asyncio.run(apply(services, processor, run_id, replay))
    assert twice == once
    assert any(s for s, _ in once[0].values())


def test_redelivered_anomalies_and_intentions_leave_trust_and_its_history_as_if_applied_once(services, run_id) -> None:
    records = trust_records(run_id)
    processor = trust_processor(TrustPolicy(recovery_clean_events=5))
    once = asyncio.run(apply(services, processor, run_id, chunks(records, 16)))
    twice = asyncio.run(apply(services, processor, run_id, chunks(records[5:], 9) + [records]))
    assert twice == once
    assert len(once[1]) > 6  # anomalies and recoveries each left a history entry, exactly once


def test_a_duplicate_event_at_a_new_offset_is_applied_once(services, run_id) -> None:
    """An upstream processor re-emitting after a crash writes the same event (same id) at a new offset."""
    processor = trust_processor(TrustPolicy())

    def with_duplicate(rid: str) -> list[list[Record]]:
        records = trust_records(rid)[:4]  # three intentions, then an anomaly
        anomaly = records[3]
        return [records, [Record(anomaly.topic, anomaly.partition, anomaly.offset + 100, anomaly.key, anomaly.value)]]

    once = asyncio.run(apply(services, processor, run_id, with_duplicate(run_id)[:1]))
    twice = asyncio.run(apply(services, processor, f"{run_id}-b", with_duplicate(f"{run_id}-b")))
    assert len(once[1]) == len(twice[1]) == 1  # one TrustChange in the history, not two
    assert json.loads(once[0]["a1"][0])["score"] == json.loads(twice[0]["a1"][0])["score"] < 100


def test_a_write_computed_from_an_old_version_is_refused(services, run_id) -> None:
    async def scenario() -> list[int]:
        client = aioredis.Redis.from_url(services.redis_url)
        try:
            store = StateStore(client, "cas-test", history_cap=5)
            ref = EntityRef(run_id, "a1")
            first = await store.write([Write(ref, 0, {"f:t:0": 1}, '{"n":1}')])
            stale = await store.write([Write(ref, 0, {"f:t:1": 1}, '{"n":2}')])
            return first + stale + [(await store.get(run_id, "a1")).version]
        finally:
            await client.aclose()

    assert asyncio.run(scenario()) == [1, VERSION_MOVED, 1]


def test_workers_taking_turns_on_the_same_agents_never_step_from_a_stale_cached_state(services, run_id) -> None:
    """Each worker caches the states it wrote; a state another worker wrote since must be read, not reused."""
    processor = baseline_processor(Settings())
    alone = asyncio.run(apply(services, processor, run_id, chunks(vitals_records(run_id, 90), 10), state_cache=0))
    other = f"{run_id}-b"
    taking_turns = asyncio.run(apply(services, processor, other, chunks(vitals_records(other, 90), 10), workers=2))
    as_alone = {
        agent: (json.loads(as_json(state).decode().replace(other, run_id)), fences)
        for agent, (state, fences) in taking_turns[0].items()
    }
    assert as_alone == {agent: (json.loads(as_json(state)), fences) for agent, (state, fences) in alone[0].items()}


class CountingStore(StateStore):
    """The real store, counting the entities it reads."""

    reads = 0

    async def read(self, refs, parts=None):
        refs = list(refs)
        self.reads += len(refs)
        return await super().read(refs, parts)


def test_an_entity_this_worker_wrote_is_stepped_from_its_cache_without_a_read(services, run_id) -> None:
    async def scenario() -> tuple[int, int]:
        client = aioredis.Redis.from_url(services.redis_url)
        try:
            store = CountingStore(client, "baseline", history_cap=50)
            runner = BatchRunner(
                baseline_processor(Settings()), store, ConfluentSender(services.kafka), run_id=run_id, state_cache=100
            )
            batches = chunks(vitals_records(run_id, 90), 9)
            await runner.process(batches[0])
            first = store.reads
            for batch in batches[1:]:
                await runner.process(batch)
            return first, store.reads
        finally:
            await client.aclose()

    first, total = asyncio.run(scenario())
    assert first == 3  # three new agents: read once
    assert total == first  # then every batch steps from what the worker wrote


def test_a_state_written_by_another_writer_since_is_never_overwritten_from_the_cache(services, run_id) -> None:
    """Even when the other writes bring the version back to the number the cache expects: the key was
    lost and written again (a Redis that lost its data, another worker during a rebalance)."""
    processor = baseline_processor(Settings())
    records = vitals_records(run_id, 90)
    first, second, third = records[:30], records[30:60], records[60:]

    async def scenario() -> dict:
        client = aioredis.Redis.from_url(services.redis_url)
        try:
            store = StateStore(client, processor.name, history_cap=50)
            send = ConfluentSender(services.kafka)
            cached = BatchRunner(processor, store, send, run_id=run_id, state_cache=100)
            await cached.process(first)  # version 1 of each agent, cached by this worker
            keys = [k async for k in client.scan_iter(match=f"chorus:{processor.name}:*{run_id}*")]
            await client.delete(*keys)
            other = BatchRunner(processor, store, send, run_id=run_id)
            await other.process(second)  # version 1 again, another state
            await cached.process(third)
            states = {a: await store.get(run_id, a) for a in ("a0", "a1", "a2")}
            return {a: (s.state_raw, dict(s.fences)) for a, s in states.items()}
        finally:
            await client.aclose()

    result = asyncio.run(scenario())
    alone_id = f"{run_id}-alone"
    shift = {rec.value: rec.value.replace(run_id.encode(), alone_id.encode()) for rec in records}
    alone_records = [Record(r.topic, r.partition, r.offset, r.key, shift[r.value]) for r in second + third]
    alone = asyncio.run(apply(services, processor, alone_id, [alone_records[:30], alone_records[30:]], state_cache=0))
    as_alone = {a: (json.loads(as_json(s).decode().replace(alone_id, run_id)), f) for a, (s, f) in alone[0].items()}
    assert {a: (json.loads(as_json(s)), f) for a, (s, f) in result.items()} == as_alone


def test_an_entitys_parts_are_written_with_its_state_or_not_at_all(services, run_id) -> None:
    """Processor.parts_of: the parts go through the same compare-and-set as the state."""

    async def scenario() -> tuple[list[int], dict[str, bytes], dict[str, bytes]]:
        client = aioredis.Redis.from_url(services.redis_url)
        try:
            store = StateStore(client, "parts-test", history_cap=5)
            ref = EntityRef(run_id, "fleet")
            first = await store.write([Write(ref, 0, {"f:t:0": 1}, '{"n":1}', parts={"a1": '{"x":1}'})])
            stale = await store.write([Write(ref, 0, {"f:t:0": 2}, '{"n":2}', parts={"a1": '{"x":2}', "a2": "{}"})])
            read = (await store.read([ref], {ref: ["a1", "a2", "a3"]}))[ref]
            plain = (await store.read([ref]))[ref]
            return first + stale, dict(read.parts), dict(plain.parts)
        finally:
            await client.aclose()

    results, parts, unasked = asyncio.run(scenario())
    assert results == [1, VERSION_MOVED]
    assert parts == {"a1": b'{"x":1}'}  # the refused write stored none of its parts; a3 never existed
    assert unasked == {}
