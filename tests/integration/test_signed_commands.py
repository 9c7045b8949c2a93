"""Signed operator commands on the real broker and Redis: only a trusted, fresh, new command has an effect.

A quarantined agent stays quarantined after an unsigned, forged, untrusted, expired or replayed
`release` (each one a dead letter with its reason); `chorus command release` with the trusted
key releases it, and the decision names the key.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis
from confluent_kafka import Consumer, TopicPartition

from processors.quarantine import SEQUENCED
from processors.quarantine.step import FLEET, FleetHeader
from processors.runtime.kafka import end_offsets
from processors.runtime.store import StateStore
from schemas import ANOMALIES, COMMANDS, CONFLICTS, DEADLETTER, INTENTIONS, QUARANTINE, TRUST, Intention
from tests.integration.runtime_workers import TopicReader, produce, running_worker
from tests.operators import make_key

pytestmark = pytest.mark.integration

SOURCES = [TRUST, COMMANDS, INTENTIONS]


def decisions(seen, agent: str = "a1") -> list[dict]:
    return [v for t, v in seen if t == QUARANTINE.name and v["agent_id"] == agent]


def dead(seen) -> list[dict]:
    """Refused commands: the quarantine worker reads them from its single-partition copy of the topic."""
    return [v for t, v in seen if t == DEADLETTER.name and v["source_topic"] == SEQUENCED[COMMANDS.name].name]


def test_only_a_trusted_fresh_new_release_frees_a_quarantined_agent(services, run_id, tmp_path) -> None:
    alice = make_key(tmp_path / "alice", "alice")
    mallory = make_key(tmp_path / "mallory", "mallory")
    now = datetime.now(UTC)
    fleet = [
        (INTENTIONS, Intention(event_id=f"{run_id}-i{n}", occurred_at=now, producer="test", run_id=run_id,
                               agent_id=f"a{n}", action="acquire", resource="gpu", amount=1, priority=5, hold_s=1))
        for n in range(6)
    ]
    reader = TopicReader(services, [QUARANTINE, DEADLETTER], run_id)
    env = {"CHORUS_OPERATOR_PUBLIC_KEYS": str(alice.public_path)}
    try:
        with running_worker("quarantine", services, run_id, SOURCES, tmp_path, **env):
            produce(services, fleet)
            quarantine = alice.sign("a1", "quarantine", run_id=run_id, reason="suspicious")
            produce(services, [(COMMANDS, quarantine)])
            reader.wait_for(lambda seen: decisions(seen), timeout_s=90)

            release = alice.sign("a1", "release", run_id=run_id, reason="looks fine")
            forged = release.model_copy(update={"agent_id": "a1", "note": "tampered"})
            hostile = [
                release.model_copy(update={"signature": None, "key_id": None, "nonce": None}),  # unsigned
                forged,
                mallory.sign("a1", "release", run_id=run_id, reason="let me out"),  # untrusted key
                alice.sign("a1", "release", run_id=run_id, at=datetime.now(UTC) - timedelta(hours=1)),  # expired
                quarantine,  # a replay of the accepted command
            ]
            produce(services, [(COMMANDS, c) for c in hostile])
            reader.wait_for(lambda seen: len(dead(seen)) >= len(hostile), timeout_s=60)
            reader.drain(1.0)
            assert [d["action"] for d in decisions(reader.seen)] == ["quarantine"]

            # The operator's CLI, with the trusted key: the release goes through and names the key.
            cli_env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": services.kafka, "CHORUS_RUN_ID": run_id,
                       "CHORUS_OPERATOR_KEY": str(alice.private_path)}
            out = subprocess.run(
                [sys.executable, "-c", "from chorus.cli import main; main()", "command", "release", "a1",
                 "--reason", "checked by hand", "--operator", "alice"],
                env=cli_env, capture_output=True, text=True, timeout=60, check=True,
            ).stdout
            assert alice.key_id in out
            reader.wait_for(lambda seen: len(decisions(seen)) >= 2, timeout_s=60)

            # The accepted release, replayed byte for byte, does not free a1 again after a new quarantine.
            [accepted_release] = _commands_of(services, run_id, '"note":"checked by hand"')
            produce(services, [(COMMANDS, alice.sign("a1", "quarantine", run_id=run_id, reason="again"))])
            reader.wait_for(lambda seen: len(decisions(seen)) >= 3, timeout_s=60)
            produce(services, [(COMMANDS.name, b"a1", accepted_release)])
            reader.wait_for(lambda seen: len(dead(seen)) >= len(hostile) + 1, timeout_s=60)
            reader.drain(1.0)
    finally:
        reader.close()

    actions = [(d["action"], d["reason"], d.get("signed_by")) for d in decisions(reader.seen)]
    assert actions == [
        ("quarantine", "operator", alice.key_id),
        ("release", "operator", alice.key_id),
        ("quarantine", "operator", alice.key_id),
    ]
    assert "checked by hand" in decisions(reader.seen)[1]["detail"]
    errors = [d["error"] for d in dead(reader.seen)]
    for expected in ("unsigned", "bad signature", "not trusted", "expired", "replayed", "replayed"):
        assert any(expected in e for e in errors), (expected, errors)
        errors.remove(next(e for e in errors if expected in e))
    assert errors == []
    async def book_state():
        client = aioredis.Redis.from_url(services.redis_url)
        try:
            return await StateStore(client, "quarantine", 10).get(run_id, FLEET)
        finally:
            await client.aclose()

    book = FleetHeader.model_validate_json(asyncio.run(book_state()).state_raw)
    assert book.held["a1"].status == "quarantined"  # held at the end: no refused command freed it


def _commands_of(services, run_id: str, marker: str) -> list[bytes]:
    """Raw values of this run's commands on the topic (what a replaying attacker would copy)."""
    consumer = Consumer({"bootstrap.servers": services.kafka, "group.id": f"copy-{run_id}", "enable.auto.commit": False})
    try:
        ends = end_offsets(services.kafka, [COMMANDS.name])
        consumer.assign([TopicPartition(tp.topic, tp.partition, 0) for tp in ends if tp.offset > 0])
        found, remaining = [], {tp.partition: tp.offset for tp in ends if tp.offset > 0}
        while remaining:
            msg = consumer.poll(5)
            assert msg is not None, "commands topic not read to its end"
            if msg.error():
                continue
            if msg.offset() + 1 >= remaining.get(msg.partition(), 0):
                remaining.pop(msg.partition(), None)
            value = msg.value() or b""  # a tombstone or hostile null (the fuzz drill writes them) is no command
            if f'"run_id":"{run_id}"'.encode() in value and marker.encode() in value:
                found.append(value)
        return found
    finally:
        consumer.close()


def test_trust_obeys_only_a_signed_set_trust_and_names_the_key(services, run_id, tmp_path) -> None:
    alice = make_key(tmp_path, "alice")
    reader = TopicReader(services, [TRUST, DEADLETTER], run_id)
    sources = [ANOMALIES, CONFLICTS, INTENTIONS, QUARANTINE, COMMANDS]
    try:
        with running_worker("trust", services, run_id, sources, tmp_path,
                            CHORUS_OPERATOR_PUBLIC_KEYS=str(alice.public_path)):
            good = alice.sign("a1", "set_trust", run_id=run_id, trust=20.0, reason="incident review")
            forged = good.model_copy(update={"trust": 100.0, "agent_id": "a2"})
            produce(services, [(COMMANDS, forged), (COMMANDS, good)])
            reader.wait_for(lambda seen: len(seen) >= 2, timeout_s=90)
            reader.drain(1.0)
    finally:
        reader.close()
    changes = [v for t, v in reader.seen if t == TRUST.name]
    assert [(c["agent_id"], c["after"], c["signed_by"]) for c in changes] == [("a1", 20.0, alice.key_id)]
    assert [d["error"] for t, d in reader.seen if t == DEADLETTER.name] == [
        f"operator command refused: bad signature for key {alice.key_id} (forged or altered)"
    ]
