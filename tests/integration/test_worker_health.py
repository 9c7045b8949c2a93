"""Probes that tell the truth, on real workers: a worker stuck on a Redis outage goes unhealthy and comes
back; consumer lag rises while a processor is stopped and falls after it restarts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio.connection import parse_url

from chorus.probe import free_port, scrape
from schemas import VITALS, Vitals

from .runtime_workers import TcpProxy, produce, running_worker

pytestmark = pytest.mark.integration

STALL_S = 4.0


def probe(port: int, path: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return 0, {}


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until check() held; fails the test after timeout_s."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f"not within {timeout_s:.0f}s: {what}")
        time.sleep(0.2)
    return time.monotonic() - started


def vitals(run_id: str, agent: str, first: int, count: int) -> list[tuple]:
    return [
        (
            VITALS,
            Vitals(
                event_id=f"{run_id}-{agent}-v{i}",
                occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
                run_id=run_id,
                producer="sim",
                agent_id=agent,
                latency_ms=100 + i % 3,
                error_rate=0.01,
                queue_depth=1,
                cpu=0.2,
                requests_per_s=5,
            ),
        )
        for i in range(first, first + count)
    ]


def test_a_worker_stuck_on_a_redis_outage_goes_unhealthy_within_the_stall_limit_and_recovers(
    services, run_id, tmp_path
) -> None:
    target = parse_url(services.redis_url)
    proxy = TcpProxy(target.get("host", "127.0.0.1"), int(target.get("port", 6379)))
    proxy.up()
    port = free_port()
    env = {
        "REDIS_URL": f"redis://127.0.0.1:{proxy.port}/{target.get('db', 0)}",
        "CHORUS_METRICS_PORT": str(port),
        "CHORUS_HEALTH_STALL_S": str(STALL_S),
        "CHORUS_RETRY_MAX_BACKOFF_S": "0.5",
    }
    try:
        with running_worker("baseline", services, run_id, [VITALS], tmp_path, **env) as worker:
            wait_until(lambda: probe(port, "/readyz")[0] == 200, 90, "the worker is ready")
            assert probe(port, "/livez")[0] == 200

            proxy.down()
            produce(services, vitals(run_id, f"{run_id}-a", 0, 20))
            wait_until(lambda: probe(port, "/readyz")[0] == 503, 30, "readiness fails while Redis is away")
            status, body = probe(port, "/readyz")
            assert any(reason.startswith("redis failing") for reason in body["reasons"]), body
            assert probe(port, "/livez")[0] == 200  # retrying, not yet past the stall limit
            unhealthy_after = wait_until(lambda: probe(port, "/livez")[0] == 503, STALL_S + 30, "liveness fails")
            status, body = probe(port, "/livez")
            assert any("in flight" in reason for reason in body["reasons"]), body
            families = {f.name: f for f in scrape(port) or []}
            assert families["chorus_worker_live"].samples[0].value == 0.0
            assert families["chorus_batch_in_flight_seconds"].samples[0].value > STALL_S

            proxy.up()
            healthy_after = wait_until(lambda: probe(port, "/livez")[0] == 200, 60, "liveness recovers")
            wait_until(lambda: probe(port, "/readyz")[0] == 200, 60, "readiness recovers")
            assert worker.poll() is None
    finally:
        proxy.down()
    print(f"liveness 503 {unhealthy_after:.1f}s after readiness failed (stall limit {STALL_S}s); "
          f"200 again {healthy_after:.1f}s after Redis returned")


def lag_of(port: int) -> float | None:
    families = scrape(port)
    if families is None:
        return None
    return sum(s.value for f in families if f.name == "chorus_consumer_lag" for s in f.samples)


def test_consumer_lag_rises_while_a_processor_is_stopped_and_falls_after_it_restarts(
    services, run_id, tmp_path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": services.kafka,
        "REDIS_URL": services.redis_url,
        "CHORUS_APP_ID_SUFFIX": f"-{run_id}",
        "CHORUS_LAG_INTERVAL_S": "1",
    }
    log = (tmp_path / "exporter.log").open("w")
    exporter = subprocess.Popen(
        [sys.executable, "-c", "from chorus.cli import main; main()", "exporter", "--port", str(port),
         "--processor", "baseline"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    agent = f"{run_id}-a"
    try:
        with running_worker("baseline", services, run_id, [VITALS], tmp_path):
            produce(services, vitals(run_id, agent, 0, 30))
            wait_until(lambda: lag_of(port) == 0.0, 90, "the running worker keeps lag at 0")
        produce(services, vitals(run_id, agent, 30, 60))
        wait_until(lambda: (lag_of(port) or 0) >= 60, 30, "lag shows the 60 events produced while stopped")
        (tmp_path / "again").mkdir()
        with running_worker("baseline", services, run_id, [VITALS], tmp_path / "again", keep_group=True):
            wait_until(lambda: lag_of(port) == 0.0, 90, "lag falls back to 0 after the restart")
    finally:
        exporter.terminate()
        exporter.wait(30)
        log.close()
    assert exporter.returncode == 0
