"""Healing is not replayed, but its verdicts are recorded inputs: a verified cure in a recording
releases its agent in the replay, as it did live, and changes nothing that happened before it."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from chorus import admin, recording
from chorus.capture import capture
from chorus.diff import compare
from chorus.replay import replay
from schemas import QUARANTINE, RECOVERY, HealingOutcome
from simulator import FleetLink, Simulation, load_scenario, run

pytestmark = pytest.mark.integration


def _quarantines(decisions: list[recording.Record]) -> list[dict]:
    return [e for d in decisions if d.topic == QUARANTINE.name and (e := d.event()) is not None]


@pytest.mark.timeout(600)
def test_a_recorded_cure_releases_its_agent_in_the_replay(services, tmp_path) -> None:
    kafka, redis_url = services.kafka, services.redis_url
    admin.create_topics(kafka)
    source = f"cures-{uuid.uuid4().hex[:8]}"
    scenario = load_scenario("hoarder").with_overrides(agents=60, duration=30, seed=7)
    sim = Simulation(scenario, source, gate=False)
    link = FleetLink(kafka, source, gate=False)
    link.check()
    assert run(sim, link, speed=None).ok
    capacities = dict(zip(sim.resource_names, sim.capacity.tolist(), strict=True))
    inputs = list(capture(kafka, source, recording.INPUT_TOPICS))
    head = recording.header(source, recording.INPUT_TOPICS, 0, settings={}, capacities=capacities)
    plain_path = tmp_path / "plain.jsonl.zst"
    recording.write(plain_path, head, inputs)

    plain = replay(plain_path, run_id=f"{source}-a", bootstrap=kafka, redis_url=redis_url, log_dir=tmp_path / "a")
    quarantined = [e for e in _quarantines(plain.decisions) if e["action"] == "quarantine"]
    assert quarantined, plain.counts
    q = quarantined[0]
    assert not [e for e in _quarantines(plain.decisions) if e["agent_id"] == q["agent_id"] and e["action"] == "release"]

    # What the healing processor would have published live after curing that quarantine.
    cured_at = recording.occurred_at(
        next(d for d in plain.decisions if d.topic == QUARANTINE.name and d.event()["event_id"] == q["event_id"])
    ) + timedelta(seconds=5)
    cure = HealingOutcome(
        event_id=f"{source}-cure", occurred_at=cured_at, producer="healing", run_id=source, agent_id=q["agent_id"],
        condition="resource_hoarding", action="reset_state", outcome="cured", attempt=1, diagnosis_id="d-1",
        quarantine_id=q["event_id"], time_to_cure_s=5.0, samples=5,
    )  # fmt: skip
    cured_path = tmp_path / "cured.jsonl.zst"
    cure_record = recording.Record(RECOVERY.name, 0, 0, q["agent_id"].encode(), cure.model_dump_json().encode())
    recording.write(cured_path, head, [*inputs, cure_record])

    cured = replay(cured_path, run_id=f"{source}-b", bootstrap=kafka, redis_url=redis_url, log_dir=tmp_path / "b")
    releases = [e for e in _quarantines(cured.decisions) if e["agent_id"] == q["agent_id"] and e["action"] == "release"]
    assert len(releases) == 1, json.dumps(releases)
    assert releases[0]["reason"] == "recovered" and cure.event_id in releases[0]["causation_ids"]

    def before_the_cure(decisions: list[recording.Record]) -> list[recording.Record]:
        return [d for d in decisions if (at := recording.occurred_at(d)) is not None and at < cured_at]

    report = compare(before_the_cure(plain.decisions), before_the_cure(cured.decisions))
    assert report.identical, report.to_json(limit=5)
