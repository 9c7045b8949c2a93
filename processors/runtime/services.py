"""Start-up: wait for Kafka and Redis, with a log line per attempt, instead of exiting."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import redis
import redis.asyncio as aioredis
from confluent_kafka.admin import AdminClient

from .errors import ServicesUnavailable
from .security import client_config

log = logging.getLogger(__name__)


def _kafka_answers(bootstrap: str) -> None:
    AdminClient({**client_config(bootstrap=bootstrap), "socket.timeout.ms": 3000}).list_topics(timeout=3)


async def _redis_answers(url: str) -> None:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    try:
        await client.ping()
    finally:
        await client.aclose()


def redis_check(url: str, timeout_s: float = 1.0) -> Callable[[], str | None]:
    """A probe's Redis check: None when Redis answers a PING within timeout_s, else why not."""
    client = redis.Redis.from_url(url, socket_connect_timeout=timeout_s, socket_timeout=timeout_s)

    def check() -> str | None:
        try:
            client.ping()
        except Exception as exc:  # the probe reports any failure, it never raises
            return f"ping failed: {exc}"
        return None

    return check


async def wait_for_services(
    bootstrap: str, redis_url: str, *, timeout_s: float = 0.0, should_stop: Callable[[], bool] = lambda: False
) -> bool:
    """Retry until Kafka and Redis both answer; False if asked to stop first.

    timeout_s 0 waits forever (a Kubernetes pod waits for its broker rather than crash-looping).
    """
    started = time.monotonic()
    delay = 0.5
    for service, probe in (
        ("kafka", lambda: asyncio.to_thread(_kafka_answers, bootstrap)),
        ("redis", lambda: _redis_answers(redis_url)),
    ):
        while True:
            try:
                await probe()
                log.info("service ready", extra={"service": service})
                break
            except Exception as exc:
                waited = time.monotonic() - started
                if timeout_s and waited >= timeout_s:
                    raise ServicesUnavailable(f"{service} did not answer within {timeout_s:.0f}s: {exc}") from exc
                log.warning(
                    "waiting for service", extra={"service": service, "error": str(exc), "waited_s": round(waited, 1)}
                )
            if should_stop():
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
    return True
