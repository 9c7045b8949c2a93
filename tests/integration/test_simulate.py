"""`chorus simulate` against the real broker: the run's events land on their topics."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka.partitioner import DefaultPartitioner
from click.testing import CliRunner
from confluent_kafka import Consumer, Producer, TopicPartition

from chorus.cli import main
from schemas import (
    ADMITTED,
    INTENTIONS,
    QUARANTINE,
    TRUTH,
    VITALS,
    GroundTruth,
    Intention,
    QuarantineDecision,
    Vitals,
    decode,
    encode,
)
from simulator import BrokerUnreachable, FleetLink

pytestmark = pytest.mark.integration

COMMAND = ["simulate", "--scenario", "hoarder", "--agents", "200", "--duration", "20", "--seed", "7", "--speed", "max", "--no-gate"]


def _ends(bootstrap: str, topics: list[str]) -> dict[tuple[str, int], int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4().hex}"})
    try:
        ends = {}
        for name in topics:
            for p in consumer.list_topics(name, timeout=10).topics[name].partitions:
                ends[(name, p)] = consumer.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
        return ends
    finally:
        consumer.close()


def _read_between(bootstrap: str, before: dict[tuple[str, int], int], run_id: str) -> dict[str, list[bytes]]:
    """Every message of `run_id` written after `before`, per topic, in per-partition order."""
    after = _ends(bootstrap, sorted({t for t, _ in before}))
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"t-{uuid.uuid4().hex}", "enable.auto.commit": False})
    wanted = {tp: end for tp, end in after.items() if end > before[tp]}
    consumer.assign([TopicPartition(t, p, before[(t, p)]) for t, p in wanted])
    found: dict[str, list[bytes]] = {t: [] for t, _ in before}
    marker = f'"run_id":"{run_id}"'.encode()
    try:
        remaining = dict(wanted)
        while remaining:
            for message in consumer.consume(10_000, timeout=5):
                assert message.error() is None, message.error()
                tp = (message.topic(), message.partition())
                if marker in message.value():
                    found[message.topic()].append(message.value())
                    # Co-partitioned with what the Faust processors (aiokafka's murmur2 partitioner) write.
                    expected = DefaultPartitioner()(message.key(), list(range(8)), list(range(8)))
                    assert message.partition() == expected, (message.key(), message.partition())
                if message.offset() + 1 >= remaining.get(tp, 0):
                    remaining.pop(tp, None)
    finally:
        consumer.close()
    return found


def _simulate(services, run_id: str) -> dict[str, list[bytes]]:
    topics = [INTENTIONS.name, VITALS.name, TRUTH.name]
    before = _ends(services.kafka, topics)
    result = CliRunner().invoke(main, [*COMMAND, "--run-id", run_id], env={"KAFKA_BOOTSTRAP_SERVERS": services.kafka})
    assert result.exit_code == 0, result.output
    assert "done: run" in result.output
    return _read_between(services.kafka, before, run_id)


def test_a_run_puts_its_intentions_vitals_and_truth_on_their_topics_and_another_run_id_repeats_the_intentions(services, run_id):
    first = _simulate(services, run_id)

    vitals = [decode(Vitals, raw) for raw in first[VITALS.name]]
    assert len(vitals) == 200 * 20
    assert {v.run_id for v in vitals} == {run_id}
    truth = [decode(GroundTruth, raw) for raw in first[TRUTH.name]]
    assert [(t.mode, t.phase) for t in truth] == [("hoarder", "start")]
    intentions = [decode(Intention, raw) for raw in first[INTENTIONS.name]]
    assert intentions and {i.run_id for i in intentions} == {run_id}
    assert any(i.agent_id == truth[0].agent_id and i.priority == 10 for i in intentions)

    second = _simulate(services, run_id + "-again")
    again = [decode(Intention, raw) for raw in second[INTENTIONS.name]]

    def content(events: list[Intention]) -> list[dict]:
        return sorted((e.model_dump(exclude={"run_id"}) for e in events), key=lambda d: d["event_id"])

    assert content(again) == content(intentions)


def test_the_fleet_link_hands_back_quarantine_decisions_for_its_own_run_only(services, run_id):
    link = FleetLink(services.kafka, run_id, gate=False)
    link.check()
    producer = Producer({"bootstrap.servers": services.kafka})
    for rid, agent, action in [(run_id, "agent-00003", "quarantine"), ("another-run", "agent-00004", "quarantine"),
                               (run_id, "agent-00005", "release")]:
        decision = QuarantineDecision(
            event_id=str(uuid.uuid4()), occurred_at=datetime.now(UTC), run_id=rid, producer="test",
            agent_id=agent, action=action, reason="operator",
        )
        producer.produce(QUARANTINE.name, encode(decision), QUARANTINE.key_of(decision))
    assert producer.flush(10) == 0
    received: list[tuple[str, bool]] = []
    for _ in range(20):
        decisions, _ = link.feedback(wait_s=0.5)
        received += decisions
        if len(received) >= 2:
            break
    link.close()
    assert sorted(received) == [("agent-00003", True), ("agent-00005", False)]


def test_in_gated_mode_the_fleet_link_hands_back_admitted_intentions_of_its_run(services, run_id):
    link = FleetLink(services.kafka, run_id, gate=True)
    link.check()
    producer = Producer({"bootstrap.servers": services.kafka})
    for rid in (run_id, "another-run"):
        intention = Intention(
            event_id=str(uuid.uuid4()), occurred_at=datetime.now(UTC), run_id=rid, producer="quarantine",
            agent_id="agent-00001", action="acquire", resource="gpu-pool", amount=2, hold_s=3,
        )
        producer.produce(ADMITTED.name, encode(intention), ADMITTED.key_of(intention))
    assert producer.flush(10) == 0
    admitted: list[Intention] = []
    for _ in range(20):
        admitted += link.feedback(wait_s=0.5)[1]
        if admitted:
            break
    link.close()
    assert [(i.run_id, i.agent_id, i.amount) for i in admitted] == [(run_id, "agent-00001", 2.0)]


def test_an_unreachable_broker_is_a_clear_error_within_the_timeout():
    link = FleetLink("127.0.0.1:1", "r", gate=False)
    with pytest.raises(BrokerUnreachable, match="did not answer within 2s"):
        link.check(timeout_s=2)
    link.close(timeout_s=0)


FLOODER_SCENARIO = """
name: obedience
seed: 4
duration: 40
agents: {count: 20}
resources: [{name: gpu, capacity_per_agent: 5}]
chaos: [{at: 0, agents: [agent-00003], mode: flood}]
"""


def test_a_running_fleet_obeys_a_quarantine_decision_from_the_broker(services, run_id, tmp_path):
    scenario = tmp_path / "obedience.yaml"
    scenario.write_text(FLOODER_SCENARIO)
    topics = [INTENTIONS.name, VITALS.name, TRUTH.name]
    before = _ends(services.kafka, topics)
    process = subprocess.Popen(
        [sys.executable, "-m", "chorus.cli", "simulate", "--scenario", str(scenario), "--run-id", run_id,
         "--speed", "4", "--no-gate"],
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": services.kafka}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:  # the first progress line: the fleet is running and listening
            if line.startswith("sim"):
                break
        decision = QuarantineDecision(
            event_id=str(uuid.uuid4()), occurred_at=datetime.now(UTC), run_id=run_id, producer="test",
            agent_id="agent-00003", action="quarantine", reason="operator",
        )
        producer = Producer({"bootstrap.servers": services.kafka})
        producer.produce(QUARANTINE.name, encode(decision), QUARANTINE.key_of(decision))
        assert producer.flush(10) == 0
        out, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, out
    assert "quarantine decisions applied: 1" in out
    found = _read_between(services.kafka, before, run_id)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    flooder = [(decode(Intention, raw).occurred_at - start).total_seconds() for raw in found[INTENTIONS.name]
               if b'"agent_id":"agent-00003"' in raw]
    # A flooder issues about six intentions a second; once quarantined it falls silent for good.
    assert flooder and max(flooder) < 30
    assert sum(b'"agent_id":"agent-00003"' in raw for raw in found[VITALS.name]) == 40
