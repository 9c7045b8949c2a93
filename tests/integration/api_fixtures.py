"""Helpers of the API and dashboard tests: decision events published on the real topics, an API on a free port."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from chorus.api.server import ApiServer
from chorus.fleet import Fleet
from chorus.probe import free_port
from processors.runtime.kafka import ConfluentSender, OutMessage
from processors.runtime.settings import ApiToken, Settings
from schemas import QUARANTINE, TRUST, Event, QuarantineDecision, TopicSpec, TrustChange, encode
from tests.services import Services

READ, OPERATE = "read-token-1", "operate-token-1"
TOKENS = {READ: ApiToken(subject="viewer", role="read"), OPERATE: ApiToken(subject="alice", role="operate")}
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def settings_for(services: Services, **overrides: object) -> Settings:
    return Settings().model_copy(
        update={"kafka_bootstrap_servers": services.kafka, "redis_url": services.redis_url, **overrides}
    )


def publish(services: Services, events: Iterable[tuple[TopicSpec, Event]]) -> None:
    ConfluentSender(services.kafka).send_sync(
        [OutMessage(spec.name, spec.key_of(e), encode(e)) for spec, e in events]
    )


def trust_change(run_id: str, agent: str, n: int, before: float = 100.0, after: float = 90.0) -> TrustChange:
    return TrustChange(event_id=str(uuid.uuid4()), occurred_at=T0 + timedelta(seconds=n), run_id=run_id,
                       causation_ids=(f"cause-{n}",), producer="trust", agent_id=agent, before=before, after=after,
                       reason="anomaly")


def pending(run_id: str, agent: str, n: int) -> QuarantineDecision:
    return QuarantineDecision(event_id=str(uuid.uuid4()), occurred_at=T0 + timedelta(seconds=n), run_id=run_id,
                              causation_ids=(f"cause-{n}",), producer="quarantine", agent_id=agent,
                              action="pending_approval", reason="low_trust", detail="fleet cap reached")


def seed(services: Services, run_id: str, agent: str) -> tuple[TrustChange, QuarantineDecision]:
    change, decision = trust_change(run_id, agent, 1, after=20.0), pending(run_id, agent, 2)
    publish(services, [(TRUST, change), (QUARANTINE, decision)])
    return change, decision


def wait_for(condition: Callable[[], bool], timeout_s: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


def serve(services: Services, run_id: str, **settings: object) -> ApiServer:
    server = ApiServer(settings_for(services, **settings), run_id, TOKENS, "127.0.0.1", free_port()).start()
    wait_for(lambda: server.fleet.ledger.caught_up, what="the API to catch up with the decision topics")
    return server


def follow(services: Services, run_id: str) -> Fleet:
    fleet = Fleet.follow(settings_for(services), run_id)
    wait_for(lambda: fleet.ledger.caught_up, what="the ledger to catch up")
    return fleet
