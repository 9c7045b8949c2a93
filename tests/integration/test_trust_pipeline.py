"""Baseline and trust workers on the real broker and Redis: a latency spike costs that agent, and only it, trust."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest
import redis

from processors.runtime.keys import entity_key
from schemas import (
    ANOMALIES,
    COMMANDS,
    CONFLICTS,
    INTENTIONS,
    QUARANTINE,
    TRUST,
    VITALS,
    AffectedAgent,
    ConflictPrediction,
    Vitals,
)

from .runtime_workers import TopicReader, produce, running_worker

pytestmark = pytest.mark.integration
TRUST_SOURCES = [ANOMALIES, CONFLICTS, INTENTIONS, QUARANTINE, COMMANDS]


def fleet_vitals(run_id: str, agents: list[str], ticks: int, sick: str, spike_from: int) -> list[Vitals]:
    rnd = random.Random(3)
    out = []
    for i in range(ticks):
        for agent in agents:
            spiking = agent == sick and i >= spike_from
            out.append(
                Vitals(
                    event_id=f"{run_id}-{agent}-{i}",
                    occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
                    run_id=run_id,
                    producer="sim",
                    agent_id=agent,
                    latency_ms=2000.0 if spiking else 120 + rnd.gauss(0, 4),
                    error_rate=0.02,
                    queue_depth=4 + rnd.random(),
                    cpu=0.5,
                    requests_per_s=30,
                )
            )
    return out


def test_a_latency_spike_becomes_an_anomaly_and_lowers_that_agents_trust_only(services, run_id, tmp_path) -> None:
    agents = [f"{run_id}-a{i}" for i in range(4)]
    sick = agents[2]
    reader = TopicReader(services, [ANOMALIES, TRUST], run_id)
    try:
        with (
            running_worker("baseline", services, run_id, [VITALS], tmp_path) as baseline,
            running_worker("trust", services, run_id, TRUST_SOURCES, tmp_path) as trust,
        ):
            produce(services, [(VITALS, v) for v in fleet_vitals(run_id, agents, 30, sick, spike_from=22)])
            reader.wait_for(lambda s: any(t == TRUST.name for t, _ in s))
            seen = reader.drain(3.0)  # give a wrongly penalised agent time to show up
    finally:
        reader.close()
    anomalies = [v for t, v in seen if t == ANOMALIES.name]
    changes = [v for t, v in seen if t == TRUST.name]
    assert anomalies and {a["agent_id"] for a in anomalies} == {sick}
    assert anomalies[0]["metric"] == "latency_ms"
    assert changes and {c["agent_id"] for c in changes} == {sick}
    first = changes[0]
    assert first["before"] == 100 and first["after"] < 100 and first["reason"] == "anomaly"
    assert first["causation_ids"] == [anomalies[0]["event_id"]]
    stored = redis.Redis.from_url(services.redis_url).hget(entity_key("trust", run_id, sick), "s")
    assert json.loads(stored)["score"] == changes[-1]["after"]
    assert (baseline.returncode, trust.returncode) == (0, 0)  # SIGTERM stops both cleanly


def test_a_conflict_lowers_the_trust_of_its_aggressive_claimant_only(services, run_id, tmp_path) -> None:
    hawk, dove = f"{run_id}-hawk", f"{run_id}-dove"
    at = datetime(2026, 1, 1, tzinfo=UTC)
    prediction = ConflictPrediction(
        event_id=f"{run_id}-c1",
        occurred_at=at,
        run_id=run_id,
        producer="conflict",
        resource="gpu",
        window_start=at,
        window_end=at + timedelta(seconds=5),
        capacity=10,
        demand=30,
        risk=0.9,
        confidence=0.8,
        failure_mode="contention",
        most_aggressive=hawk,
        affected=(
            AffectedAgent(agent_id=hawk, demand=20, share=0.6, fair_share=0.5, priority=5, aggressiveness=0.95),
            AffectedAgent(agent_id=dove, demand=10, share=0.4, fair_share=0.5, priority=5, aggressiveness=0.1),
        ),
    )
    reader = TopicReader(services, [TRUST], run_id)
    try:
        with running_worker("trust", services, run_id, TRUST_SOURCES, tmp_path):
            produce(services, [(CONFLICTS, prediction), (CONFLICTS, prediction)])  # a duplicate delivery too
            reader.wait_for(lambda s: bool(s))
            seen = reader.drain(2.0)
    finally:
        reader.close()
    changes = [v for _t, v in seen]
    # the duplicate (same event id, new offset) is dropped by id: one change, for the hawk only
    assert [(c["agent_id"], c["reason"], c["causation_ids"]) for c in changes] == [
        (hawk, "conflict", [prediction.event_id])
    ]
    assert changes[0]["after"] < changes[0]["before"] == 100
