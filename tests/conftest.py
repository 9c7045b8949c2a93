"""Shared fixtures. Integration tests ask for `services`; nothing here mocks a service."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import HealthCheck, settings

from tests.services import Services, provide_services

# Properties are about decisions, never speed: on a loaded machine Hypothesis's per-example
# deadline and its "generation too slow" check fail runs that prove nothing wrong.
settings.register_profile("chorus", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("chorus")


@pytest.fixture(scope="session")
def services() -> Services:
    """A real Kafka broker and Redis server, with every registry topic created.

    From KAFKA_BOOTSTRAP_SERVERS / REDIS_URL when set, else testcontainers when a
    Docker engine answers, else the project's local stack (`chorus stack up`).
    With CHORUS_REQUIRE_SERVICES=1 (CI) a missing service fails the run.
    """
    with provide_services() as provided:
        yield provided


@pytest.fixture
def run_id() -> str:
    """A fresh run id, so tests sharing the broker and Redis never see each other's state."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def secure_broker():
    """A broker as `chorus stack up --secure` starts it (SASL_SSL, a SCRAM user per principal, ACLs),
    on free ports, with every registry topic created; stopped after the session."""
    import shutil
    import tempfile
    from pathlib import Path

    from tests.services import provide_secure_broker

    # Not under pytest's basetemp: concurrent pytest sessions of the same user prune each other's
    # older basetemps, and a broker whose data folder vanishes mid-session stalls.
    base = Path(tempfile.mkdtemp(prefix="chorus-secure-kafka-"))
    try:
        with provide_secure_broker(base) as broker:
            yield broker
    finally:
        shutil.rmtree(base, ignore_errors=True)
