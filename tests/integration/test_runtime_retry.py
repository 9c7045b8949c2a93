"""A transient Redis outage is waited out: the batch is retried until it applies, never skipped."""

from __future__ import annotations

import asyncio
import json
import socket
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from processors.runtime import BatchRunner, ConfluentSender, Record, StateStore
from processors.runtime import metrics as m
from processors.trust import TrustPolicy
from processors.trust.app import make_processor
from schemas import ANOMALIES, Anomaly, encode

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def start_proxy(port: int, target_host: str, target_port: int) -> asyncio.Server:
    """A plain TCP forwarder to the real Redis: 'Redis comes back' is this server starting."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection(target_host, target_port)
        await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w), return_exceptions=True)

    return await asyncio.start_server(handle, "127.0.0.1", port)


def test_a_batch_waits_out_a_redis_outage_and_is_then_applied(services, run_id) -> None:
    anomaly = Anomaly(
        event_id=f"{run_id}-an",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
        run_id=run_id,
        producer="baseline",
        agent_id="a1",
        metric="cpu",
        value=1,
        mean=0.3,
        stddev=0.01,
        zscore=70,
        severity="critical",
        sustained_samples=3,
    )
    record = Record(ANOMALIES.name, 0, 10, b"a1", encode(anomaly))
    target = parse_url(services.redis_url)
    port = free_port()

    async def scenario() -> tuple[float, float]:
        # redis-py's own retries off, so the outage reaches the runner's retry loop
        flaky = aioredis.Redis(
            host="127.0.0.1", port=port, db=target.get("db", 0), socket_connect_timeout=1, retry=Retry(NoBackoff(), 0)
        )
        direct = aioredis.Redis.from_url(services.redis_url)
        errors_before = m.REDIS_ERRORS.labels("trust")._value.get()
        runner = BatchRunner(
            make_processor(TrustPolicy()),
            StateStore(flaky, "trust", 10),
            ConfluentSender(services.kafka),
            run_id=run_id,
            max_backoff_s=0.2,
        )
        task = asyncio.create_task(runner.process([record]))
        await asyncio.sleep(1.0)
        assert not task.done()  # still retrying: the event was not skipped
        proxy = await start_proxy(port, target.get("host", "127.0.0.1"), int(target.get("port", 6379)))
        try:
            await asyncio.wait_for(task, 15)
        finally:
            proxy.close()
        errors = m.REDIS_ERRORS.labels("trust")._value.get() - errors_before
        score = (await StateStore(direct, "trust", 10).get(run_id, "a1")).state_raw
        await flaky.aclose()
        await direct.aclose()
        return errors, json.loads(score)["score"]

    errors, score = asyncio.run(scenario())
    assert errors >= 2
    assert score == 100 - TrustPolicy().anomaly_penalty["critical"]


def test_a_redis_that_lost_its_lua_scripts_gets_them_again_and_the_batch_applies(services, run_id) -> None:
    """Pipelines send EVALSHA only (scripts.py): after SCRIPT FLUSH (as after a Redis restart) the
    NOSCRIPT answer reloads the scripts and the runner's retry applies the batch, once."""
    anomaly = Anomaly(
        event_id=f"{run_id}-an", occurred_at=datetime(2026, 1, 1, tzinfo=UTC), run_id=run_id, producer="baseline",
        agent_id="a1", metric="cpu", value=1, mean=0.3, stddev=0.01, zscore=70, severity="critical",
        sustained_samples=3,
    )  # fmt: skip
    first = Record(ANOMALIES.name, 0, 10, b"a1", encode(anomaly))
    again = Record(ANOMALIES.name, 0, 11, b"a1", encode(anomaly.model_copy(update={"event_id": f"{run_id}-an2"})))

    async def scenario() -> tuple[float, tuple[str, ...], int]:
        client = aioredis.Redis.from_url(services.redis_url)
        store = StateStore(client, "trust", 10)
        runner = BatchRunner(
            make_processor(TrustPolicy()), store, ConfluentSender(services.kafka), run_id=run_id, max_backoff_s=0.2
        )
        errors_before = m.REDIS_ERRORS.labels("trust")._value.get()
        await runner.process([first])  # loads the scripts, applies
        await client.script_flush()
        await asyncio.wait_for(runner.process([again]), 15)  # NOSCRIPT, reloaded, retried
        errors = m.REDIS_ERRORS.labels("trust")._value.get() - errors_before
        snapshot = await store.get(run_id, "a1")
        await client.aclose()
        return errors, snapshot.recent_ids, snapshot.fence(ANOMALIES.name, 0)

    errors, applied, fence = asyncio.run(scenario())
    assert errors == 1  # the one NOSCRIPT answer
    assert applied == (f"{run_id}-an", f"{run_id}-an2") and fence == 11  # both applied, each once
