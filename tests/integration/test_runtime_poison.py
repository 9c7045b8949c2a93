"""Poison input on the real broker: garbage and schema violations are dead-lettered and the worker goes on."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import pytest

from schemas import BASELINES, DEADLETTER, VITALS, Vitals

from .runtime_workers import TopicReader, produce, running_worker

pytestmark = pytest.mark.integration


def vitals(run_id: str, i: int) -> Vitals:
    return Vitals(
        event_id=f"{run_id}-v{i}",
        occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=i),
        run_id=run_id,
        producer="sim",
        agent_id=f"{run_id}-agent",
        latency_ms=100 + i % 3,
        error_rate=0.01,
        queue_depth=1,
        cpu=0.2,
        requests_per_s=5,
    )


def test_garbage_and_schema_violations_go_to_the_dead_letter_topic_and_processing_continues(
    services, run_id, tmp_path
) -> None:
    garbage = b"\x00\xffnot json at all " + run_id.encode()
    violation = json.loads(vitals(run_id, 0).model_dump_json())
    violation.update(event_id=f"{run_id}-bad", error_rate=7.5)  # a probability above 1
    reader = TopicReader(services, [DEADLETTER, BASELINES], run_id)
    try:
        with running_worker("baseline", services, run_id, [VITALS], tmp_path):
            produce(services, [(VITALS.name, b"x", garbage), (VITALS.name, b"x", json.dumps(violation).encode())])
            produce(services, [(VITALS, vitals(run_id, i)) for i in range(20)])
            seen = reader.wait_for(
                lambda s: sum(t == DEADLETTER.name for t, _ in s) >= 2 and any(t == BASELINES.name for t, _ in s)
            )
    finally:
        reader.close()
    dead = [v for t, v in seen if t == DEADLETTER.name]
    assert {base64.b64decode(d["raw_value_b64"]) for d in dead} >= {garbage}
    bad = next(d for d in dead if b"error_rate" in base64.b64decode(d["raw_value_b64"]))
    assert bad["source_topic"] == VITALS.name and "error_rate" in bad["error"]
    assert all(d["offset"] >= 0 and d["partition"] >= 0 for d in dead)
    # the valid vitals after the poison were still learned: warm-up completed, a snapshot was published
    snapshot = next(v for t, v in seen if t == BASELINES.name)
    assert snapshot["agent_id"] == f"{run_id}-agent" and snapshot["metrics"]["latency_ms"]["count"] == 15


def test_the_messages_that_used_to_stop_a_worker_cost_only_themselves(services, run_id, tmp_path) -> None:
    """Issue 10: a tab in a run id crashed the worker in a loop (the dead letter failed its own validation);
    a 780 kB value made a dead letter over the broker's 1 MB limit, retried forever; an event dated 2100
    moved event time. Now each is one dead letter, and the worker goes on with the stream."""
    tab = b'{"run_id":"a\\tb","garbage":true}'
    big = json.dumps({"run_id": run_id, "junk": "x" * 780_000}).encode()
    future = vitals(run_id, 0).model_copy(
        update={"event_id": f"{run_id}-2100", "occurred_at": datetime(2100, 1, 1, tzinfo=UTC)}
    )
    reader = TopicReader(services, [DEADLETTER, BASELINES], run_id)
    try:
        with running_worker("baseline", services, run_id, [VITALS], tmp_path) as worker:
            produce(services, [(VITALS.name, b"x", tab), (VITALS.name, b"x", big), (VITALS, future)])
            produce(services, [(VITALS, vitals(run_id, i)) for i in range(20)])
            seen = reader.wait_for(
                lambda s: sum(t == DEADLETTER.name for t, _ in s) >= 3 and any(t == BASELINES.name for t, _ in s)
            )
            assert worker.poll() is None, "the worker stopped"
    finally:
        reader.close()
    dead = {base64.b64decode(d["raw_value_b64"])[:40]: d for t, d in seen if t == DEADLETTER.name}
    assert dead[tab]["run_id"] == run_id  # "a\tb" is no run id: the letter belongs to the worker's run
    cut = dead[big[:40]]
    assert cut["truncated"] and cut["raw_value_length"] == len(big)
    assert cut["raw_value_sha256"] == hashlib.sha256(big).hexdigest()
    late = next(d for d in dead.values() if f"{run_id}-2100".encode() in base64.b64decode(d["raw_value_b64"]))
    assert "ahead of the broker timestamp" in late["error"]
    snapshot = next(v for t, v in seen if t == BASELINES.name)
    assert snapshot["metrics"]["latency_ms"]["count"] == 15  # the 2100 sample was never learned


def test_a_message_the_broker_refuses_as_too_large_is_dead_lettered_once_and_never_retried(services, run_id) -> None:
    """The produce-error rule on the real broker: the refusal is permanent (poison), the message's
    neighbours are delivered, and the refused one is replaced by a dead letter with its length and digest."""
    import asyncio

    from processors.runtime import ConfluentSender, OutMessage
    from processors.runtime.delivery import deliver
    from processors.runtime.errors import ProduceRefused

    huge = json.dumps({"run_id": run_id, "junk": "x" * 1_200_000}).encode()
    small = vitals(run_id, 1)
    batch = [OutMessage(VITALS.name, b"k", huge), OutMessage(VITALS.name, b"k", small.model_dump_json().encode())]
    sender = ConfluentSender(services.kafka, **{"enable.idempotence": True})
    with pytest.raises(ProduceRefused) as refused:
        sender.send_sync(batch)
    assert list(refused.value.refused) == [0] and refused.value.refused[0][0] == "poison"
    reader = TopicReader(services, [DEADLETTER, VITALS], run_id)
    try:
        (letter,) = asyncio.run(deliver(sender, batch, "baseline"))
        seen = reader.wait_for(lambda s: any(t == DEADLETTER.name for t, _ in s) and any(t == VITALS.name for t, _ in s))
    finally:
        reader.close()
    assert letter.source_topic == VITALS.name and letter.run_id == run_id and letter.truncated
    assert letter.raw_value_length == len(huge) and letter.raw_value_sha256 == hashlib.sha256(huge).hexdigest()
    assert [v["event_id"] for t, v in seen if t == DEADLETTER.name] == [letter.event_id]
    assert any(v["event_id"] == small.event_id for t, v in seen if t == VITALS.name)
