"""The Faust trap: a batch that could not be applied is never committed, so a restart applies it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio.connection import parse_url

from schemas import BASELINES, VITALS, Vitals

from .runtime_workers import TcpProxy, TopicReader, produce, running_worker

pytestmark = pytest.mark.integration


def test_a_batch_stuck_on_a_redis_outage_is_not_committed_and_is_applied_after_a_restart(
    services, run_id, tmp_path
) -> None:
    target = parse_url(services.redis_url)
    proxy = TcpProxy(target.get("host", "127.0.0.1"), int(target.get("port", 6379)))
    proxy.up()
    redis_env = {"REDIS_URL": f"redis://127.0.0.1:{proxy.port}/{target.get('db', 0)}"}
    agent = f"{run_id}-agent"
    samples = [
        Vitals(
            event_id=f"{run_id}-v{i}",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
            run_id=run_id,
            producer="sim",
            agent_id=agent,
            latency_ms=100 + i % 2,
            error_rate=0.01,
            queue_depth=1,
            cpu=0.2,
            requests_per_s=5,
        )
        for i in range(20)
    ]
    reader = TopicReader(services, [BASELINES], run_id)
    try:
        with running_worker("baseline", services, run_id, [VITALS], tmp_path, **redis_env) as worker:
            # Past start-up (which needs Redis): on a loaded machine imports alone can take 10 s.
            log, deadline = tmp_path / "baseline.log", time.monotonic() + 120
            while b"processor consuming" not in log.read_bytes() and time.monotonic() < deadline:
                time.sleep(0.2)
            proxy.down()
            produce(services, [(VITALS, v) for v in samples])
            assert reader.drain(6.0) == []  # nothing can be applied while Redis is away
        assert worker.returncode == 0
        proxy.up()
        (tmp_path / "again").mkdir()
        with running_worker("baseline", services, run_id, [VITALS], tmp_path / "again", keep_group=True, **redis_env):
            seen = reader.wait_for(lambda s: bool(s))
    finally:
        reader.close()
        proxy.down()
    # Had the stuck batch been committed, the restarted worker (same group) would start after it
    # and never learn these samples.
    assert seen and seen[0][1]["agent_id"] == agent and seen[0][1]["metrics"]["latency_ms"]["count"] == 15
