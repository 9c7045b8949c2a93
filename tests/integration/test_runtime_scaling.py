"""Scaling out: a second worker joining a processor's group mid-stream (a cooperative rebalance, the
confluent engine's manual commits) leaves every entity's state as if each event was applied once."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from processors.baseline.logic import AgentBaseline
from processors.runtime import StateStore
from processors.runtime.statecodec import StateCodec
from schemas import VITALS, Vitals

from .runtime_workers import produce, running_worker

pytestmark = pytest.mark.integration

AGENTS, ROUNDS = 40, 24


def vitals(run_id: str, rounds: range) -> list[tuple]:
    return [
        (
            VITALS,
            Vitals(
                event_id=f"{run_id}-{a}-{r}",
                occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=r),
                run_id=run_id,
                producer="sim",
                agent_id=f"{run_id}-a{a}",
                latency_ms=100 + r % 2,
                error_rate=0.01,
                queue_depth=1,
                cpu=0.2,
                requests_per_s=5,
            ),
        )
        for r in rounds
        for a in range(AGENTS)
    ]


async def sample_counts(redis_url: str, run_id: str) -> dict[str, int]:
    client = aioredis.Redis.from_url(redis_url)
    try:
        store = StateStore(client, "baseline", 10)
        counts = {}
        for a in range(AGENTS):
            snap = await store.get(run_id, f"{run_id}-a{a}")
            state = StateCodec(AgentBaseline).decode(snap.state_raw) if snap.state_raw else None
            counts[f"a{a}"] = state.metrics["latency_ms"].count if state else 0
        return counts
    finally:
        await client.aclose()


def _wait_for_line(log, text: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not (log.exists() and text in log.read_text()):
        assert time.monotonic() < deadline, f"{text!r} never appeared in {log}"
        time.sleep(0.2)


def test_a_worker_joining_mid_stream_shares_the_partitions_and_no_event_is_applied_twice_or_lost(
    services, run_id, tmp_path
) -> None:
    expected = {f"a{a}": ROUNDS for a in range(AGENTS)}
    (tmp_path / "second").mkdir()
    with running_worker("baseline", services, run_id, [VITALS], tmp_path):
        time.sleep(3)
        produce(services, vitals(run_id, range(0, ROUNDS // 2)))
        with running_worker("baseline", services, run_id, [VITALS], tmp_path / "second", keep_group=True):
            # The second member joins while the first is consuming; produce the rest once it holds partitions
            # (its start-up takes seconds on a busy machine).
            _wait_for_line(tmp_path / "second" / "baseline.log", "partitions assigned", timeout_s=90)
            produce(services, vitals(run_id, range(ROUNDS // 2, ROUNDS)))
            deadline = time.monotonic() + 60
            counts: dict[str, int] = {}
            while time.monotonic() < deadline:
                counts = asyncio.run(sample_counts(services.redis_url, run_id))
                if counts == expected:
                    break
                time.sleep(0.5)
            time.sleep(2)  # anything applied twice would show by now
            counts = asyncio.run(sample_counts(services.redis_url, run_id))
    assert counts == expected
    # Both members really held partitions: the second got its share from the first.
    assert "partitions assigned" in (tmp_path / "baseline.log").read_text()
    second = (tmp_path / "second" / "baseline.log").read_text()
    assert "partitions assigned" in second and "agent.vitals:" in second
    assert "partitions revoked" in (tmp_path / "baseline.log").read_text()
