"""Where the test suite gets its real Kafka and Redis from, in order of preference:

1. KAFKA_BOOTSTRAP_SERVERS and REDIS_URL, when both are set;
2. testcontainers, when a Docker engine answers;
3. the project's local stack (`chorus stack up`): reused when already running,
   else started for the session and stopped after it.

With CHORUS_REQUIRE_SERVICES=1 (CI sets it) a service that cannot be had fails the
run; otherwise the integration tests are skipped with the reason.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from chorus import admin, stack
from schemas import ChorusError


@dataclass(frozen=True)
class Services:
    kafka: str
    redis_url: str
    source: str


@contextlib.contextmanager
def provide_services() -> Iterator[Services]:
    try:
        with _acquire() as services:
            admin.create_topics(services.kafka)
            yield services
    except ChorusError as exc:
        _missing(str(exc))


@contextlib.contextmanager
def _acquire() -> Iterator[Services]:
    kafka, redis_url = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("REDIS_URL")
    if kafka and redis_url:
        yield Services(kafka, redis_url, "environment")
    elif _docker_answers():
        with _containers() as services:
            yield services
    else:
        with _local_stack() as services:
            yield services


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=3).ping()
        return True
    except Exception:
        return False


@contextlib.contextmanager
def _containers() -> Iterator[Services]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.redis import RedisContainer

    with KafkaContainer().with_kraft() as kafka, RedisContainer() as redis:
        host, port = redis.get_container_host_ip(), redis.get_exposed_port(6379)
        yield Services(kafka.get_bootstrap_server(), f"redis://{host}:{port}/0", "testcontainers")


@contextlib.contextmanager
def _local_stack() -> Iterator[Services]:
    with stack.running(print) as (kafka, redis_url):  # reused when running; else started, then stopped
        yield Services(kafka, redis_url, "local stack")


def _missing(reason: str) -> None:
    message = f"Kafka/Redis not available: {reason}"
    if os.environ.get("CHORUS_REQUIRE_SERVICES") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
