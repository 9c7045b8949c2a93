"""Record once, replay twice: plain, and with replicas, small batches, kill -9s, a Redis restart and
a broker restart during the replay. The decisions and the final Redis state must be identical.

Runs on a broker and Redis of its own (tests/integration/private_stack.py): the suite's shared
services are not this test's to restart.
"""

from __future__ import annotations

import os

import pytest
import redis

from chorus import admin, recording
from chorus.capture import capture
from chorus.diff import compare
from chorus.replay import final_state, replay
from simulator import FleetLink, Simulation, load_scenario, run

from .private_stack import private_stack

pytestmark = pytest.mark.integration


@pytest.mark.timeout(900)
def test_a_replay_through_kills_and_restarts_decides_exactly_as_a_plain_one(tmp_path) -> None:
    with private_stack(tmp_path / "stack") as ps:
        kafka, redis_url = ps.kafka.address, ps.redis.address
        admin.create_topics(kafka)
        # A short hoarder run without processors (no feedback), recorded like `chorus record` does.
        scenario = load_scenario("hoarder").with_overrides(agents=60, duration=30, seed=7)
        sim = Simulation(scenario, "drill-rec", gate=False)
        link = FleetLink(kafka, "drill-rec", gate=False)
        link.check()
        assert run(sim, link, speed=None).ok
        capacities = dict(zip(sim.resource_names, sim.capacity.tolist(), strict=True))
        path = tmp_path / "drill.jsonl.zst"
        count = recording.write(
            path,
            recording.header("drill-rec", recording.INPUT_TOPICS, 0, settings={}, capacities=capacities),
            capture(kafka, "drill-rec", recording.INPUT_TOPICS),
        )
        assert count > 1000

        plain = replay(path, run_id="drill-a", bootstrap=kafka, redis_url=redis_url, log_dir=tmp_path / "a")

        restarted: list[str] = []

        def faults(stage: str) -> None:
            if stage == "trust":
                ps.restart_redis()
                restarted.append("redis")
            elif stage == "quarantine":
                ps.restart_kafka()
                restarted.append("kafka")

        os.environ["CHORUS_BATCH_MAX_EVENTS"] = "50"  # other batch cuts than the plain replay's
        try:
            drilled = replay(
                path,
                run_id="drill-b",
                bootstrap=kafka,
                redis_url=redis_url,
                log_dir=tmp_path / "b",
                replicas=2,
                kill_every=3.0,
                during=faults,
            )
        finally:
            os.environ.pop("CHORUS_BATCH_MAX_EVENTS", None)

        assert restarted == ["redis", "kafka"]
        assert drilled.kills >= 2
        counts = plain.counts
        assert counts.get("immune.trust", 0) > 0 and counts.get("immune.conflicts", 0) > 0, counts
        assert counts.get("agent.intentions.admitted", 0) > 0, counts
        report = compare(plain.decisions, drilled.decisions)
        assert report.identical, report.to_json(limit=5)
        store = redis.Redis.from_url(redis_url)
        state_a, state_b = final_state(store, "drill-a"), final_state(store, "drill-b")
        assert state_a and state_a == state_b
        assert plain.state_digest == drilled.state_digest
