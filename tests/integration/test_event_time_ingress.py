"""Issue 10, on the real pipeline: an agent cannot move time. A quarantined agent's intention dated 2100
neither releases it nor passes the gate; every processor that reads it dead-letters it; replays
(old event times, new broker times) still pass."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import pytest

from processors.conflict.topics import CLAIMS, INTERNAL_TOPICS
from processors.runtime.topics import ensure_topics
from schemas import (
    ADMITTED,
    ANOMALIES,
    COMMANDS,
    CONFLICTS,
    DEADLETTER,
    INTENTIONS,
    QUARANTINE,
    RECOVERY,
    TRUST,
    Anomaly,
    Intention,
)

from .runtime_workers import TopicReader, produce, running_worker

pytestmark = pytest.mark.integration


def test_a_quarantined_agents_intention_dated_2100_neither_releases_it_nor_passes_the_gate(
    services, run_id, tmp_path
) -> None:
    ensure_topics(services.kafka, INTERNAL_TOPICS)
    now = datetime.now(UTC)

    def intention(name: str, agent: str, at: datetime) -> Intention:
        return Intention(
            event_id=f"{run_id}-{name}", occurred_at=at, run_id=run_id, producer="test", agent_id=agent,
            action="acquire", resource="gpu", amount=1.0,
        )  # fmt: skip

    fleet = [intention(f"hello-{i}", f"a{i}", now - timedelta(seconds=5)) for i in range(6)]
    infection = Anomaly(
        event_id=f"{run_id}-anomaly", occurred_at=now - timedelta(seconds=4), run_id=run_id, producer="test",
        agent_id="a0", metric="cpu", value=0.99, mean=0.2, stddev=0.01, zscore=79, severity="critical",
        sustained_samples=3,
    )  # fmt: skip
    from_2100 = intention("from-2100", "a0", datetime(2100, 1, 1, tzinfo=UTC))
    honest_but_held = intention("held", "a0", now - timedelta(seconds=3))
    replayed = intention("replayed", "a1", datetime(2026, 1, 1, tzinfo=UTC))  # old event time, new broker time
    later = intention("later", "a2", now - timedelta(seconds=2))

    reader = TopicReader(services, [ADMITTED, QUARANTINE, DEADLETTER], run_id)
    workers = [
        ("quarantine", [TRUST, CONFLICTS, ANOMALIES, COMMANDS, RECOVERY, INTENTIONS]),
        ("trust", [ANOMALIES, CONFLICTS, INTENTIONS, QUARANTINE, COMMANDS]),
        ("conflict", [INTENTIONS, CLAIMS]),
    ]
    try:
        with (
            # Release by term expiry, the policy under which event time alone could free an agent.
            running_worker(
                workers[0][0], services, run_id, workers[0][1], tmp_path, CHORUS_QUARANTINE_RELEASE_ON_RECOVERY="false"
            ) as quarantine,
            running_worker(workers[1][0], services, run_id, workers[1][1], tmp_path) as trust,
            running_worker(workers[2][0], services, run_id, workers[2][1], tmp_path) as conflict,
        ):
            produce(services, [(INTENTIONS, e) for e in fleet])
            reader.wait_for(lambda s: sum(t == ADMITTED.name for t, _ in s) >= len(fleet), timeout_s=120)
            produce(services, [(ANOMALIES, infection)])
            reader.wait_for(lambda s: any(t == QUARANTINE.name and v["action"] == "quarantine" for t, v in s))
            produce(services, [(INTENTIONS, e) for e in (from_2100, honest_but_held, replayed, later)])

            def settled(seen) -> bool:
                admitted = {v["event_id"] for t, v in seen if t == ADMITTED.name}
                letters = [v for t, v in seen if t == DEADLETTER.name]
                return {replayed.event_id, later.event_id} <= admitted and len(letters) >= 3

            seen = reader.wait_for(settled, timeout_s=90)
            time.sleep(2)  # anything the 2100 intention wrongly caused would arrive with or right after these
            seen = reader.drain(2)
            assert all(w.poll() is None for w in (quarantine, trust, conflict)), "a worker stopped"
    finally:
        reader.close()
    (decision,) = [v for t, v in seen if t == QUARANTINE.name]
    assert (decision["agent_id"], decision["action"]) == ("a0", "quarantine")  # and no release
    admitted = {v["event_id"] for t, v in seen if t == ADMITTED.name}
    assert {e.event_id for e in fleet} | {replayed.event_id, later.event_id} == admitted
    letters = [v for t, v in seen if t == DEADLETTER.name]
    assert sorted(v["producer"] for v in letters) == ["conflict", "quarantine", "trust"]
    for letter in letters:
        assert from_2100.event_id.encode() in base64.b64decode(letter["raw_value_b64"])
        assert "ahead of the broker timestamp" in letter["error"] and letter["source_topic"] == INTENTIONS.name
