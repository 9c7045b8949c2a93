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


@dataclass(frozen=True)
class SecureBroker:
    """A broker of `chorus stack up --secure` (SASL_SSL, SCRAM users, ACLs), started for the test session."""

    bootstrap: str
    materials: object  # chorus.secure.Materials

    def env(self, principal: str) -> dict[str, str]:
        """The environment of a client of `principal` (what `<principal>.env` holds)."""
        return self.materials.client_env(principal, self.bootstrap)  # type: ignore[attr-defined]

    def config(self, principal: str, **overrides: str) -> dict:
        """librdkafka settings of `principal`, built by the settings model like every client's."""
        from processors.runtime.security import client_config

        with principal_environment(self.env(principal) | overrides):
            return client_config()


@contextlib.contextmanager
def principal_environment(env: dict[str, str]) -> Iterator[None]:
    """This process's environment with `env` on top (the settings model reads the environment)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def provide_secure_broker(base) -> Iterator[SecureBroker]:  # noqa: ANN001 - a pathlib.Path
    """Start a secure broker on free ports under `base`; create the registry topics as admin; stop it after.

    Its ports are free ones, never the stack's, so several test sessions on one machine never collide.
    """
    from chorus import secure
    from chorus.probe import free_port

    try:
        classpath = stack.kafka_classpath(print)  # cached under the usual home: no Maven run after the first
        port, controller = free_port(), free_port()
        svc = stack.start_kafka(base, "127.0.0.1", port, controller, print, secure=True, classpath=classpath)
    except ChorusError as exc:
        _missing(f"secure broker: {exc}")
        return
    try:
        broker = SecureBroker(f"127.0.0.1:{port}", secure.materials(base / "secure"))
        with principal_environment(broker.env(secure.ADMIN)):
            admin.create_topics(broker.bootstrap)
        yield broker
    finally:
        stack._stop(svc)
