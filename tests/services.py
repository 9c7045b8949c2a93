"""Where the test suite gets its real Kafka and Redis from."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from chorus import admin


@dataclass(frozen=True)
class Services:
    kafka: str
    redis_url: str


@contextlib.contextmanager
def provide_services() -> Iterator[Services]:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    redis_url = os.environ.get("REDIS_URL")
    if not (kafka and redis_url):
        _missing("set KAFKA_BOOTSTRAP_SERVERS and REDIS_URL")
    admin.create_topics(kafka)
    yield Services(kafka=kafka, redis_url=redis_url)


def _missing(reason: str) -> None:
    message = f"Kafka/Redis not available: {reason}"
    if os.environ.get("CHORUS_REQUIRE_SERVICES") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
