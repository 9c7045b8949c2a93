"""The ordering rule: one flush of a processor's inputs gives the same outputs and state whatever order
its partitions were fetched in (trust: anomalies, re-keyed conflicts and intentions of one agent)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from processors.runtime import BatchRunner, Record, StateStore
from processors.trust import CONFLICTS_BY_AGENT, TrustPolicy
from processors.trust.app import make_processor as trust_processor
from schemas import ANOMALIES, INTENTIONS, Anomaly, ConflictPrediction, Intention, encode
from schemas.events import AffectedAgent

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def inputs(run_id: str) -> list[Record]:
    """Per partition in offset order: 40 intentions, an anomaly every 7 s, a hoarding conflict at 20 s."""
    records: list[Record] = []
    for i in range(40):
        e = Intention(
            event_id=f"in{i:02}", occurred_at=T0 + timedelta(seconds=i), run_id=run_id, producer="sim",
            agent_id="a1", action="acquire", resource="gpu", amount=1,
        )  # fmt: skip
        records.append(Record(INTENTIONS.name, 5, 100 + i, b"a1", encode(e)))
    for n, i in enumerate(range(3, 40, 7)):
        e = Anomaly(
            event_id=f"an{i:02}", occurred_at=T0 + timedelta(seconds=i, milliseconds=500), run_id=run_id,
            producer="baseline", agent_id="a1", metric="cpu", value=1, mean=0.3, stddev=0.01, zscore=70,
            severity="high", sustained_samples=3,
        )  # fmt: skip
        records.append(Record(ANOMALIES.name, 5, 10 + n, b"a1", encode(e)))
    conflict = ConflictPrediction(
        event_id="c20", occurred_at=T0 + timedelta(seconds=20), run_id=run_id, producer="conflict",
        resource="gpu", window_start=T0 + timedelta(seconds=15), window_end=T0 + timedelta(seconds=20),
        capacity=10, demand=30, risk=0.9, confidence=0.9, failure_mode="hoarding", most_aggressive="a1",
        affected=[AffectedAgent(agent_id="a1", demand=24, share=0.8, fair_share=0.25, priority=9, aggressiveness=1.0)],
    )  # fmt: skip
    records.append(Record(CONFLICTS_BY_AGENT.name, 5, 3, b"a1", encode(conflict)))
    return records


class Captured:
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    async def __call__(self, messages) -> None:  # noqa: ANN001
        self.sent += [m.value for m in messages]


async def apply(redis_url: str, records: list[Record], run_id: str) -> tuple[list[bytes], bytes | None, list[str]]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        store = StateStore(client, "trust", history_cap=100)
        send = Captured()
        await BatchRunner(trust_processor(TrustPolicy()), store, send, run_id=run_id).process(records)
        snap = await store.get(run_id, "a1")
        return send.sent, snap.state_raw, await store.history(run_id, "a1")
    finally:
        await client.aclose()


def test_fetch_order_does_not_change_what_trust_decides(services, run_id) -> None:
    results = []
    for seed in range(4):
        rid = f"{run_id}-{seed}"
        records = inputs(rid)
        if seed:  # another interleaving of the partitions (each one's own order kept)
            rnd = random.Random(seed)
            streams = {}
            for rec in records:
                streams.setdefault(rec.topic, []).append(rec)
            records = []
            while streams:
                topic = rnd.choice(sorted(streams))
                records.append(streams[topic].pop(0))
                if not streams[topic]:
                    del streams[topic]
        sent, state, history = asyncio.run(apply(services.redis_url, records, rid))
        results.append(([s.replace(rid.encode(), b"<run>") for s in sent], state.replace(rid.encode(), b"<run>"), history))
    assert results[0][0], "the inputs must cause trust changes"
    assert all(r == results[0] for r in results[1:])
