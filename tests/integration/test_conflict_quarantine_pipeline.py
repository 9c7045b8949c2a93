"""Conflict and quarantine workers (`chorus worker ...`, real Faust processes) on the real broker and Redis."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from processors.conflict.topics import CLAIMS, INTERNAL_TOPICS
from processors.runtime.kafka import end_offsets, start_group_at_end
from processors.runtime.topics import ensure_topics
from schemas import (
    ADMITTED,
    COMMANDS,
    CONFLICTS,
    DEADLETTER,
    INTENTIONS,
    QUARANTINE,
    TRUST,
    ConflictPrediction,
    DeadLetter,
    Event,
    Intention,
    OperatorCommand,
    QuarantineDecision,
    TopicSpec,
    TrustChange,
    decode,
    encode,
)
from tests.fakes import FakeGemini, Reply
from tests.operators import make_key

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
# In the past: event times ahead of the broker clock by more than CHORUS_MAX_CLOCK_SKEW_S (30 s) are
# dead-lettered at ingress, and these tests date intentions up to 41 s after T0.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)


@contextlib.contextmanager
def worker(name: str, services, run_id: str, sources: list[str], **env: str) -> Iterator[subprocess.Popen]:
    """`chorus worker NAME` in its own process and consumer group, positioned at the end of its sources."""
    suffix = f"-{run_id}"
    start_group_at_end(services.kafka, f"chorus-{name}{suffix}", sources)
    inherited = {k: v for k, v in os.environ.items() if k != "GEMINI_API_KEY"}  # never a real key in tests
    full_env = inherited | {
        "KAFKA_BOOTSTRAP_SERVERS": services.kafka,
        "REDIS_URL": services.redis_url,
        "CHORUS_RUN_ID": run_id,
        "CHORUS_APP_ID_SUFFIX": suffix,
        "CHORUS_METRICS_PORT": "0",
        "CHORUS_LOG_LEVEL": "INFO",
        "CHORUS_LOG_JSON": "false",
        **env,
    }
    log_path = Path(os.environ.get("TMPDIR", "/tmp")) / f"chorus-{name}{suffix}.log"  # kept for a failing test
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chorus.cli", "worker", name],
            cwd=ROOT,
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Tail:
    """Reads what arrives on some topics after its creation, for one run."""

    def __init__(self, bootstrap: str, specs: list[TopicSpec], run_id: str) -> None:
        self._models = {s.name: s.model for s in specs}
        self._run_id = run_id
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"tail-{run_id}", "enable.auto.commit": False}
        )
        self._consumer.assign(end_offsets(bootstrap, list(self._models)))
        self.seen: list[tuple[str, Event]] = []

    def until(
        self, done: Callable[[list[tuple[str, Event]]], bool], timeout_s: float = 150.0
    ) -> list[tuple[str, Event]]:
        deadline = time.monotonic() + timeout_s
        while not done(self.seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; saw {[(t, type(e).__name__) for t, e in self.seen]}")
            msg = self._consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            event = decode(self._models[msg.topic()], msg.value())
            if event.run_id == self._run_id:
                self.seen.append((msg.topic(), event))
        return self.seen

    def close(self) -> None:
        self._consumer.close()


def produce(bootstrap: str, spec: TopicSpec, events: list[Event]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for e in events:
        producer.produce(spec.name, encode(e), spec.key_of(e))
    assert producer.flush(30) == 0


def intention(
    run_id: str, n: int, agent: str, t: float, amount: float = 2.0, priority: int = 5, hold: float = 2.0
) -> Intention:
    return Intention(
        event_id=f"{run_id}-i{n}",
        occurred_at=T0 + timedelta(seconds=t),
        producer="test",
        run_id=run_id,
        agent_id=agent,
        action="acquire",
        resource="gpu",
        amount=amount,
        priority=priority,
        hold_s=hold,
    )


@pytest.fixture
def claims_topic(services) -> None:
    """The worker creates its internal topic at start; creating it here too keeps the tails simple."""
    ensure_topics(services.kafka, INTERNAL_TOPICS)
    meta = AdminClient({"bootstrap.servers": services.kafka}).list_topics(CLAIMS.name, timeout=10)
    assert len(meta.topics[CLAIMS.name].partitions) == CLAIMS.partitions


CONFLICT_ENV = {
    "CHORUS_CONFLICT_WINDOW_S": "2",
    "CHORUS_CONFLICT_LATENESS_S": "0.5",
    "CHORUS_CONFLICT_CAPACITIES": json.dumps({"gpu": 50}),
}


def hoarding_window(run_id: str) -> list[Intention]:
    """Five fair agents and a hoarder (large claims, top priority, 90 s holds) on gpu (capacity 50) within 1 s."""
    fair = [intention(run_id, n, f"a{n % 5}", 0.1 * n) for n in range(10)]
    hog = [intention(run_id, 100 + n, "hog", 0.15 * n + 0.05, amount=30, priority=10, hold=90) for n in range(4)]
    return fair + hog


def test_a_hoarder_on_an_overloaded_resource_becomes_a_high_risk_prediction_naming_it(
    services, run_id, claims_topic
) -> None:
    tail = Tail(services.kafka, [CONFLICTS], run_id)
    claims = Tail(services.kafka, [CLAIMS], run_id)  # the claims repartitioned by resource, before the window closes
    dead = Tail(services.kafka, [DEADLETTER], run_id)
    poison = json.dumps({"event_type": "intention", "run_id": run_id, "agent_id": "a1", "amount": -3}).encode()
    try:
        with worker(
            "conflict", services, run_id, [INTENTIONS.name, CLAIMS.name], **CONFLICT_ENV, CHORUS_CONFLICT_EARLY_RISK="1"
        ):  # predicted at the window's close only
            producer = Producer({"bootstrap.servers": services.kafka})
            producer.produce(INTENTIONS.name, poison, b"a1")
            producer.flush(30)
            produce(services.kafka, INTENTIONS, hoarding_window(run_id))
            claims.until(lambda seen: len(seen) >= len(hoarding_window(run_id)))
            produce(services.kafka, INTENTIONS, [intention(run_id, 999, "a1", 3.0)])  # event time closes [0, 2)
            [(_, prediction)] = tail.until(lambda seen: len(seen) >= 1)
            letters = dead.until(lambda seen: any(e.producer == "conflict" for _, e in seen))
    finally:
        tail.close()
        claims.close()
        dead.close()
    [letter] = [e for _, e in letters if e.producer == "conflict"]
    assert isinstance(letter, DeadLetter) and letter.source_topic == INTENTIONS.name
    assert "Field required" in letter.error and base64.b64decode(letter.raw_value_b64) == poison
    assert isinstance(prediction, ConflictPrediction)
    assert prediction.most_aggressive == "hog" and prediction.risk > 0.7 and prediction.failure_mode == "hoarding"
    assert prediction.window_start <= T0 < prediction.window_end and prediction.capacity == 50
    assert prediction.demand == pytest.approx(10 * 2 + 4 * 30 * 8 / 2)  # Little's law, holds capped at 4 windows
    assert f"{run_id}-i100" in prediction.causation_ids


def test_with_a_gemini_key_a_high_risk_prediction_is_followed_by_an_enriched_one_caused_by_it(
    services, run_id, claims_topic
) -> None:
    tail = Tail(services.kafka, [CONFLICTS], run_id)
    claims = Tail(services.kafka, [CLAIMS], run_id)
    analysis = {
        "summary": "hog takes most of gpu",
        "root_cause": "hoarding",
        "failure_mode": "hoarding",
        "recommended_actions": ["throttle hog"],
        "confidence": 0.8,
    }
    try:
        with (
            FakeGemini(default=Reply.json(analysis)) as fake,
            worker(
                "conflict",
                services,
                run_id,
                [INTENTIONS.name, CLAIMS.name, CONFLICTS.name],
                **CONFLICT_ENV,
                GEMINI_API_KEY="fake-key",
                CHORUS_GEMINI_BASE_URL=fake.base_url,
                NO_PROXY="127.0.0.1,localhost",
            ),
        ):
            produce(services.kafka, INTENTIONS, hoarding_window(run_id))
            claims.until(lambda seen: len(seen) >= len(hoarding_window(run_id)))
            produce(services.kafka, INTENTIONS, [intention(run_id, 999, "a1", 3.0)])
            seen = tail.until(lambda seen: len(seen) >= 2)
            requests = list(fake.requests)
    finally:
        tail.close()
        claims.close()
    fast, rich = (e for _, e in seen)
    assert (fast.source, rich.source) == ("fast_path", "gemini")
    assert rich.causation_ids == (fast.event_id,) and rich.recommended_actions == ("throttle hog",)
    assert rich.most_aggressive == fast.most_aggressive == "hog"
    assert len(requests) == 1 and requests[0]["api_key"] == "fake-key"


def test_the_aggressor_of_a_high_risk_conflict_is_quarantined_and_its_intentions_held_at_the_gate(
    services, run_id
) -> None:
    fleet = [f"a{i}" for i in range(10)]
    tail = Tail(services.kafka, [QUARANTINE, ADMITTED], run_id)
    sources = [INTENTIONS.name, CONFLICTS.name, TRUST.name, "immune.anomalies", COMMANDS.name]
    try:
        with worker("quarantine", services, run_id, sources, CHORUS_QUARANTINE_RELEASE_ON_RECOVERY="false"):
            produce(services.kafka, INTENTIONS, [intention(run_id, i, a, 0.0) for i, a in enumerate(fleet)])
            tail.until(lambda seen: sum(t == ADMITTED.name for t, _ in seen) >= 10)
            conflict = ConflictPrediction(
                event_id=f"{run_id}-c1",
                occurred_at=T0 + timedelta(seconds=1),
                producer="test",
                run_id=run_id,
                resource="gpu",
                window_start=T0,
                window_end=T0 + timedelta(seconds=1),
                capacity=50,
                demand=170,
                risk=0.9,
                confidence=0.9,
                failure_mode="hoarding",
                most_aggressive="a3",
            )
            produce(services.kafka, CONFLICTS, [conflict])
            tail.until(lambda seen: any(t == QUARANTINE.name for t, _ in seen))
            later = [intention(run_id, 100 + i, a, 2.0 + i * 0.01) for i, a in enumerate(["a3", "a4", "a3", "a4"])]
            produce(services.kafka, INTENTIONS, later)
            seen = tail.until(
                lambda seen: (
                    sum(t == ADMITTED.name and e.event_id in {later[1].event_id, later[3].event_id} for t, e in seen)
                    >= 2
                )
            )
            time.sleep(1.0)  # a held intention would have arrived with a4's
            held = tail.until(lambda s: True, timeout_s=1)[:]
            # Event time (not the wall clock) passes the 30 s term: a3, whose trust never fell, is released.
            produce(
                services.kafka, INTENTIONS, [intention(run_id, 200, "a4", 40.0), intention(run_id, 201, "a3", 41.0)]
            )
            # The release and a3's admitted intention go to different topics: either may be read first.
            seen = tail.until(
                lambda seen: any(e.event_id == f"{run_id}-i201" for _, e in seen)
                and any(t == QUARANTINE.name and e.action == "release" for t, e in seen)
            )
    finally:
        tail.close()
    decisions = [e for t, e in held if t == QUARANTINE.name]
    assert [(d.agent_id, d.action, d.reason, d.causation_ids) for d in decisions] == [
        ("a3", "quarantine", "conflict_aggressor", (f"{run_id}-c1",))
    ]
    assert decisions[0].until == T0 + timedelta(seconds=31)
    admitted = [e.event_id for t, e in held if t == ADMITTED.name]
    assert f"{run_id}-i3" in admitted  # before the decision, a3 was admitted
    assert [i.event_id for i in later if i.agent_id == "a4"] == [x for x in admitted if x.startswith(f"{run_id}-i10")]
    [release] = [e for t, e in seen if t == QUARANTINE.name and e.action == "release"]
    assert (release.agent_id, release.reason, release.occurred_at) == ("a3", "term_expired", T0 + timedelta(seconds=31))
    assert release.causation_ids == (decisions[0].event_id,)


def test_past_the_fleet_cap_an_operator_approves_a_pending_quarantine_and_releases_another(
    services, run_id, tmp_path
) -> None:
    tail = Tail(services.kafka, [QUARANTINE, ADMITTED], run_id)
    sources = [INTENTIONS.name, CONFLICTS.name, TRUST.name, "immune.anomalies", COMMANDS.name]

    def low_trust(n: int, agent: str, t: float) -> TrustChange:
        return TrustChange(
            event_id=f"{run_id}-t{n}",
            occurred_at=T0 + timedelta(seconds=t),
            producer="test",
            run_id=run_id,
            agent_id=agent,
            before=60,
            after=20,
            reason="anomaly",
        )

    alice = make_key(tmp_path, "alice")

    def command(agent: str, what: str) -> OperatorCommand:
        # Signed now: a command's time is when the operator signed it, checked against the broker's clock.
        return alice.sign(agent, what, run_id=run_id, operator="alice")

    def decided(seen: list[tuple[str, Event]]) -> int:
        return sum(t == QUARANTINE.name for t, _ in seen)

    try:
        with worker("quarantine", services, run_id, sources, CHORUS_OPERATOR_PUBLIC_KEYS=str(alice.public_path)):
            produce(services.kafka, INTENTIONS, [intention(run_id, i, f"a{i}", 0.0) for i in range(5)])  # cap: 1 of 5
            tail.until(lambda seen: len(seen) >= 5)  # the fleet is known before trust falls
            produce(services.kafka, TRUST, [low_trust(1, "a1", 1.0)])
            tail.until(lambda seen: decided(seen) >= 1)
            produce(services.kafka, TRUST, [low_trust(2, "a2", 2.0)])
            tail.until(lambda seen: decided(seen) >= 2)
            produce(services.kafka, COMMANDS, [command("a2", "approve")])
            tail.until(lambda seen: decided(seen) >= 3)
            produce(services.kafka, COMMANDS, [release := command("a1", "release")])
            tail.until(lambda seen: decided(seen) >= 4)
    finally:
        tail.close()
    seen = [(t, e) for t, e in tail.seen if t == QUARANTINE.name]
    assert [(e.agent_id, e.action, e.reason) for _, e in seen] == [
        ("a1", "quarantine", "low_trust"),
        ("a2", "pending_approval", "low_trust"),
        ("a2", "quarantine", "low_trust"),
        ("a1", "release", "operator"),
    ]
    assert "alice" in seen[2][1].detail and seen[3][1].causation_ids == (release.event_id,)
    assert seen[3][1].signed_by == alice.key_id


def test_end_to_end_a_hoarder_is_predicted_quarantined_and_stopped_while_the_others_pass(
    services, run_id, claims_topic
) -> None:
    tail = Tail(services.kafka, [CONFLICTS, QUARANTINE, ADMITTED], run_id)
    claims = Tail(services.kafka, [CLAIMS], run_id)
    q_sources = [INTENTIONS.name, CONFLICTS.name, "immune.trust", "immune.anomalies", "immune.commands"]
    try:
        with (
            worker("conflict", services, run_id, [INTENTIONS.name, CLAIMS.name], **CONFLICT_ENV),
            worker("quarantine", services, run_id, q_sources),
        ):
            fleet = [intention(run_id, 500 + i, f"a{i}", 0.0, amount=1) for i in range(10)]  # an active fleet of 11
            started = time.monotonic()
            produce(services.kafka, INTENTIONS, fleet + hoarding_window(run_id))
            claims.until(lambda seen: len(seen) >= len(fleet) + len(hoarding_window(run_id)))
            produce(services.kafka, INTENTIONS, [intention(run_id, 999, "a1", 3.0)])  # event time closes the window
            tail.until(lambda seen: any(t == QUARANTINE.name for t, _ in seen))
            decided_s = time.monotonic() - started
            produce(
                services.kafka,
                INTENTIONS,
                [intention(run_id, 2000 + n, a, 4.0 + n * 0.01) for n, a in enumerate(["hog", "a2", "hog", "a2"])],
            )
            seen = tail.until(
                lambda seen: sum(t == ADMITTED.name and e.event_id.startswith(f"{run_id}-i200") for t, e in seen) >= 2
            )
            time.sleep(1.0)
            seen = tail.until(lambda s: True, timeout_s=1)
    finally:
        tail.close()
        claims.close()
    [decision] = [e for t, e in seen if t == QUARANTINE.name]
    [prediction] = [e for t, e in seen if t == CONFLICTS.name]
    assert (decision.agent_id, decision.action, decision.reason) == ("hog", "quarantine", "conflict_aggressor")
    assert decision.causation_ids == (prediction.event_id,)
    assert isinstance(decision, QuarantineDecision)
    late = {e.event_id for t, e in seen if t == ADMITTED.name and e.event_id.startswith(f"{run_id}-i200")}
    assert late == {f"{run_id}-i2001", f"{run_id}-i2003"}  # a2's, never the hog's
    print(f"\nhoarding window -> prediction -> quarantine decision: {decided_s:.2f}s wall, workers warm-starting")
