"""The agent SDK against the real broker and Redis, with the real quarantine worker as the gate."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from chorus.agent import Agent, Connection, GateTimeout, Quarantined, SyncAgent
from processors.runtime.settings import Settings
from schemas import (
    ANOMALIES,
    COMMANDS,
    CONFLICTS,
    INTENTIONS,
    TRUST,
    VITALS,
    Intention,
    IntentionHeld,
    Vitals,
)
from tests.integration.runtime_workers import TopicReader, produce, running_worker
from tests.operators import make_key

pytestmark = pytest.mark.integration

GATE_SOURCES = (TRUST, CONFLICTS, ANOMALIES, COMMANDS, INTENTIONS)


def settings_for(services, run_id: str, **extra: object) -> Settings:
    return Settings(kafka_bootstrap_servers=services.kafka, redis_url=services.redis_url, run_id=run_id, **extra)  # type: ignore[call-arg]


def test_an_agent_is_admitted_then_quarantined_across_a_restart_then_released(services, run_id, tmp_path: Path) -> None:
    settings = settings_for(services, run_id, agent_gate_timeout_s=30.0)
    operator = make_key(tmp_path)
    with running_worker(
        "quarantine", services, run_id, GATE_SOURCES, tmp_path, CHORUS_OPERATOR_PUBLIC_KEYS=str(operator.public_path)
    ):

        async def scenario() -> None:
            decisions: list[str] = []
            async with Agent("sdk-1", settings, on_decision=lambda _a, d: decisions.append(d.action)) as agent:
                admitted = await agent.intend("gpu", 2.0, hold_s=5.0)  # waits for the worker to join, too
                assert admitted.agent_id == "sdk-1" and not agent.quarantined

                produce(services, [(COMMANDS, operator.sign("sdk-1", "quarantine", run_id=run_id))])
                decision = await agent.wait_quarantined(timeout=30)
                assert decision.action == "quarantine" and decision.reason == "operator"
                assert decisions == ["quarantine"]
                with pytest.raises(Quarantined) as refused:
                    await agent.intend("gpu", 1.0)
                assert refused.value.decision == decision and refused.value.reason == "operator"

            # Another client of the same agent that has not heard yet: the gate itself holds its intention.
            async with Connection(["sdk-1"], settings) as conn:
                assert conn.status("sdk-1").quarantined  # a restart still knows: read back from the decisions
                late = Intention(
                    event_id=uuid.uuid4().hex,
                    occurred_at=datetime.now(UTC),
                    run_id=run_id,
                    producer="test",
                    agent_id="sdk-1",
                    action="acquire",
                    resource="gpu",
                    amount=1.0,
                )
                verdict = conn.expect(late)
                await conn.publish(INTENTIONS, late)
                held = await asyncio.wait_for(verdict, 30)
                assert isinstance(held, IntentionHeld)
                assert held.intention_id == late.event_id and held.reason == "operator"
                assert held.decision_id == decision.event_id

            async with Agent("sdk-1", settings) as restarted:
                assert restarted.quarantined and restarted.decision == decision
                with pytest.raises(Quarantined):
                    await restarted.intend("gpu", 1.0)
                produce(services, [(COMMANDS, operator.sign("sdk-1", "release", run_id=run_id))])
                await restarted.wait_released(timeout=30)
                assert restarted.decision is not None and restarted.decision.action == "release"
                async with restarted.hold("gpu", 1.0, hold_s=2.0) as granted:
                    assert granted.resource == "gpu"

        asyncio.run(scenario())


def test_without_a_gate_intend_times_out_with_a_clear_error(services, run_id) -> None:
    settings = settings_for(services, run_id, agent_gate_timeout_s=1.0)

    async def scenario() -> None:
        async with Agent("lonely", settings, vitals=False) as agent:
            with pytest.raises(GateTimeout, match="chorus worker quarantine"):
                await agent.intend("gpu", 1.0)

    asyncio.run(scenario())


def test_vitals_published_by_the_meter_match_the_measured_calls(services, run_id) -> None:
    settings = settings_for(services, run_id)
    reader = TopicReader(services, [VITALS], run_id)
    try:

        async def scenario() -> tuple[Vitals, list[float], float]:
            async with Agent("metered", settings, gated=False, tick_s=3600) as agent:

                @agent.meter
                async def call(i: int) -> None:
                    await asyncio.sleep(0.01 * (i % 3))
                    if i % 4 == 0:
                        raise RuntimeError("upstream said no")

                measured: list[float] = []
                agent.stats.take()  # a fresh tick
                tick_started = time.perf_counter()

                async def timed(i: int) -> None:
                    started = time.perf_counter()
                    with contextlib.suppress(RuntimeError):
                        await call(i)
                    measured.append(time.perf_counter() - started)

                await asyncio.gather(*(timed(i) for i in range(5)))  # 5 in flight at once
                for i in range(5, 20):
                    await timed(i)
                with agent.meter.call():
                    pass
                tick_ended = time.perf_counter()  # publish_vitals closes the tick before its first await
                published = await agent.publish_vitals()
                return published, measured, tick_ended - tick_started

        published, measured, elapsed = asyncio.run(scenario())
        seen = reader.wait_for(lambda s: any(v["event_id"] == published.event_id for _, v in s), 30)
    finally:
        reader.close()
    [(_, on_topic)] = [(t, v) for t, v in seen if v["event_id"] == published.event_id]
    assert Vitals.model_validate(on_topic) == published
    calls = len(measured) + 1
    assert published.error_rate == pytest.approx(5 / calls)  # i = 0, 4, 8, 12, 16 raised
    assert published.queue_depth == 5
    assert published.requests_per_s * elapsed == pytest.approx(calls, rel=0.05)
    assert published.latency_ms == pytest.approx(sum(measured) / calls * 1000, rel=0.1, abs=0.5)


def test_the_sync_wrapper_publishes_and_closes_cleanly(services, run_id) -> None:
    settings = settings_for(services, run_id)
    reader = TopicReader(services, [INTENTIONS], run_id)
    try:
        with SyncAgent("plain", settings, gated=False, vitals=False) as agent:
            sent = agent.intend("api", 3.0, hold_s=1.0)
            with agent.hold("api", 1.0):
                pass
            released = agent.release("api")
        seen = reader.wait_for(lambda s: len(s) >= 4, 30)
    finally:
        reader.close()
    assert [v["action"] for _, v in seen] == ["acquire", "acquire", "release", "release"]
    assert seen[0][1]["event_id"] == sent.event_id and released is not None and released.amount == 3.0
