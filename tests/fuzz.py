"""The fuzz drill (issue 10): hostile messages into every input topic while a healthy stream flows.

    python -m tests.fuzz [--hostile 10000] [--agents 40] [--seed 7] [--json OUT]

Against the real broker and Redis (KAFKA_BOOTSTRAP_SERVERS / REDIS_URL) and every processor's
real worker (`chorus worker NAME`, one consumer group each, for a fresh run id):

1. writes a healthy fleet's vitals and intentions, and, interleaved with them, N hostile
   messages spread over every processor input topic: random bytes, empty and null values,
   non-objects, deep nesting, invalid UTF-8 and lone surrogates, truncated JSON, valid events
   mutated (unknown field, missing field, wrong type, whitespace in an id, out of range,
   naive time, wrong model, unknown schema version), events dated in 2100 / 9999 / year 1,
   and oversized values (700-990 kB). Each hostile message is checked offline with the same
   decoder and ingress rule the processors use; one that would be valid is not sent.
2. checks afterwards:
   - every worker is still running and its consumer group has committed up to the end of
     every source partition (no crash, no stall);
   - every hostile message is in `immune.deadletter` once per processor that reads its topic
     (matched by producer, source topic, partition and offset), and no good event is;
   - every good intention was admitted by the gate exactly once; every agent's baseline
     counted each good vitals sample exactly once; every agent's trust state counted each
     good intention exactly once (its clean streak); every good intention reached the
     conflict processor's claims topic.

Exit status 0 only when every check holds. `tests/integration/test_fuzz_drill.py` runs a short one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis.asyncio as aioredis
from confluent_kafka import Consumer, Producer, TopicPartition

from chorus import admin
from processors.conflict.topics import CLAIMS, INTERNAL_TOPICS
from processors.runtime import EntityRef, Settings, StateStore
from processors.runtime.app import event_time_rule
from processors.runtime.kafka import end_offsets
from processors.runtime.statecodec import as_json
from processors.runtime.topics import ensure_topics
from schemas import (
    ADMITTED,
    DEADLETTER,
    INTENTIONS,
    PARTITIONER,
    VITALS,
    AffectedAgent,
    Anomaly,
    ConflictPrediction,
    DecodeError,
    Event,
    Intention,
    OperatorCommand,
    QuarantineDecision,
    TopicSpec,
    TrustChange,
    Vitals,
    decode,
    encode,
)
from tests.integration.runtime_workers import running_worker
from tests.services import Services


def processor_sources() -> dict[str, tuple[TopicSpec, ...]]:
    """What each worker reads, from the processors' own definitions (so the drill never drifts from them).

    The conflict worker also reads agent.intentions in its repartition relay (its Gemini relay on
    immune.conflicts runs only with a key, which the drill never has).
    """
    from processors.baseline import app as baseline
    from processors.conflict import app as conflict
    from processors.healing import app as healing
    from processors.quarantine import app as quarantine
    from processors.trust import app as trust

    s = Settings()
    return {
        "baseline": baseline.make_processor(s).sources,
        "trust": trust.make_processor(trust.load_policy(s)).sources,
        "conflict": (INTENTIONS, *conflict.make_processor(s).sources),
        "quarantine": quarantine.make_processor(s).sources,
        "healing": healing.make_processor(healing.load_policy(s.healing_policy)).sources,
    }


SOURCES = processor_sources()
# A hostile message is dead-lettered once by each processor that reads its topic.
READERS: dict[str, tuple[str, ...]] = {}
for _name, _specs in sorted(SOURCES.items()):
    for _spec in _specs:
        READERS[_spec.name] = (*READERS.get(_spec.name, ()), _name)
MODELS: dict[str, type[Event]] = {spec.name: spec.model for specs in SOURCES.values() for spec in specs}
GOOD_INTENTIONS_PER_AGENT = 15  # below the trust policy's 20: the clean streak counts every one
GOOD_VITALS_PER_AGENT = 30
OVERSIZED_SHARE = 0.01


# --- hostile messages ---------------------------------------------------------------------


TEMPLATED = (Vitals, Intention, Anomaly, TrustChange, ConflictPrediction, QuarantineDecision, OperatorCommand)


def valid_event(topic: str, run_id: str, n: int, now: datetime) -> Event:
    """A valid event about an agent outside the healthy fleet, to be mutated before sending: of the topic's
    model when the drill has a template for it, else of another model (which the topic refuses anyway)."""
    base = {"event_id": f"fuzz-{run_id}-{n}", "occurred_at": now, "run_id": run_id, "producer": "fuzz"}
    agent = f"fuzz-victim-{n % 7}"
    model = MODELS[topic] if MODELS[topic] in TEMPLATED else TEMPLATED[n % len(TEMPLATED)]
    if model is Vitals:
        return Vitals(**base, agent_id=agent, latency_ms=1, error_rate=0, queue_depth=0, cpu=0, requests_per_s=0)
    if model is Intention:
        return Intention(**base, agent_id=agent, action="acquire", resource="fuzz-gpu", amount=1)
    if model is Anomaly:
        return Anomaly(
            **base, agent_id=agent, metric="cpu", value=1, mean=0, stddev=0.1, zscore=10, severity="critical",
            sustained_samples=3,
        )  # fmt: skip
    if model is TrustChange:
        return TrustChange(**base, agent_id=agent, before=100, after=10, reason="anomaly")
    if model is ConflictPrediction:
        return ConflictPrediction(
            **base, resource="fuzz-gpu", window_start=now, window_end=now + timedelta(seconds=5), capacity=1,
            demand=9, risk=0.99, confidence=1, failure_mode="hoarding", most_aggressive=agent,
            affected=(AffectedAgent(agent_id=agent, demand=9, share=1, fair_share=1, priority=10, aggressiveness=1),),
        )  # fmt: skip
    if model is QuarantineDecision:
        return QuarantineDecision(**base, agent_id=agent, action="release", reason="operator")
    return OperatorCommand(**base, agent_id=agent, command="release", operator="mallory")


def _mutations(rng: random.Random, event: Event) -> tuple[str, bytes]:
    d = json.loads(encode(event))
    kind = rng.choice(
        ["extra_field", "drop_field", "wrong_type", "whitespace_id", "out_of_range", "naive_time", "from_2100",
         "from_9999", "from_year_1", "wrong_model", "schema_version", "bad_event_type"]
    )  # fmt: skip
    if kind == "extra_field":
        d[f"x{rng.randrange(10**6)}"] = rng.random()
    elif kind == "drop_field":
        d.pop(rng.choice(["event_id", "occurred_at", "producer", *(k for k in d if k not in _OPTIONAL)]), None)
    elif kind == "wrong_type":
        d[rng.choice(sorted(d))] = rng.choice([[1, 2], {"a": 1}, True, None, 10**30])
    elif kind == "whitespace_id":
        d[rng.choice(["event_id", "run_id", "producer", *(k for k in ("agent_id", "resource") if k in d)])] = (
            rng.choice(["a\tb", "a b", " ", "", "\n", "x" * 300])
        )
    elif kind == "out_of_range":  # may hit an unbounded field and stay valid: is_bad() filters those out
        numeric = [k for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        d[rng.choice(numeric or ["schema_version"])] = rng.choice([-5, 7.5, 1000, 1e300])
    elif kind == "naive_time":
        d["occurred_at"] = "2026-12-02T07:00:00"
    elif kind == "from_2100":
        d["occurred_at"] = "2100-01-01T00:00:00Z"
    elif kind == "from_9999":
        d["occurred_at"] = "9999-12-31T23:59:59Z"
    elif kind == "from_year_1":
        d["occurred_at"] = "0001-01-01T00:00:00Z"
    elif kind == "wrong_model":
        other = rng.choice([m for m in TEMPLATED if m is not type(event)])
        topic = next(t for t, m in MODELS.items() if m is other)
        d = json.loads(encode(valid_event(topic, event.run_id, rng.randrange(10**6), event.occurred_at)))
    elif kind == "schema_version":
        d["schema_version"] = rng.choice([0, 2, "1", None])
    else:
        d["event_type"] = rng.choice(["intention_v2", "", "dead_letter"])
    return kind, json.dumps(d).encode()


_OPTIONAL = {"event_type", "schema_version", "run_id", "causation_ids", "priority", "hold_s", "detail", "affected",
             "most_aggressive", "equilibrium", "recommended_actions", "source", "analysis", "until", "offense_count",
             "trust", "note"}  # fmt: skip


def hostile_message(rng: random.Random, topic: str, run_id: str, n: int, now: datetime) -> tuple[str, bytes | None]:
    """(kind, value) of one hostile message for the topic."""
    roll = rng.random()
    if roll < OVERSIZED_SHARE:
        size = rng.randrange(700_000, 990_000)
        return "oversized", json.dumps({"run_id": run_id, "event_id": f"big-{n}", "junk": "x" * size}).encode()
    if roll < 0.55:
        return _mutations(rng, valid_event(topic, run_id, n, now))
    raw = rng.choice(
        ["random_bytes", "empty", "null", "not_object", "deep_nesting", "invalid_utf8", "lone_surrogate",
         "truncated_json", "classic_tab_run_id", "huge_number"]
    )  # fmt: skip
    if raw == "random_bytes":
        return raw, rng.randbytes(rng.randrange(1, 4096))
    if raw == "empty":
        return raw, b""
    if raw == "null":
        return raw, None
    if raw == "not_object":
        return raw, rng.choice([b"[]", b"42", b'"a string"', b"true", b"null", b"[{}]"])
    if raw == "deep_nesting":
        depth = rng.randrange(1000, 100_000)
        return raw, rng.choice([b"[" * depth + b"]" * depth, b'{"a":' * depth + b"1" + b"}" * depth])
    if raw == "invalid_utf8":
        return raw, b'{"event_id":"\xff\xfe","run_id":"' + run_id.encode() + b'"}'
    if raw == "lone_surrogate":
        good = json.loads(encode(valid_event(topic, run_id, n, now)))
        good["event_id"] = "\ud800x"
        return raw, json.dumps(good).encode()
    if raw == "truncated_json":
        whole = encode(valid_event(topic, run_id, n, now))
        return raw, whole[: rng.randrange(1, len(whole) - 1)]
    if raw == "classic_tab_run_id":
        return raw, b'{"run_id":"a\\tb","garbage":true}'
    return raw, b'{"run_id":"' + run_id.encode() + b'","offset":1e400,"x":' + b"9" * 5000 + b"}"


def is_bad(topic: str, value: bytes | None, broker_ts: float) -> bool:
    """Would every reader of `topic` dead-letter it? The processors' own decoder and ingress rule say."""
    try:
        event = decode(MODELS[topic], value, topic=topic)
    except DecodeError:
        return True
    return event_time_rule(Settings()).judge(event.occurred_at.timestamp(), broker_ts) is not None


# --- the healthy stream -----------------------------------------------------------------------


def good_stream(run_id: str, agents: int) -> Iterator[tuple[TopicSpec, Event]]:
    """Vitals and intentions of a healthy fleet, shuffled; the drill dates each one when it produces it."""
    plan = [("v", a, i) for a in range(agents) for i in range(GOOD_VITALS_PER_AGENT)]
    plan += [("i", a, i) for a in range(agents) for i in range(GOOD_INTENTIONS_PER_AGENT)]
    random.Random(1).shuffle(plan)
    per_agent: Counter[tuple[str, int]] = Counter()
    for kind, a, _ in plan:
        n = per_agent[(kind, a)]
        per_agent[(kind, a)] += 1
        now = datetime.now(UTC)
        agent = f"fuzz-ok-{a:03d}"
        if kind == "v":
            yield VITALS, Vitals(
                event_id=f"{run_id}-v{a}-{n}", occurred_at=now, run_id=run_id, producer="fuzz", agent_id=agent,
                latency_ms=100 + n % 3, error_rate=0.01, queue_depth=1, cpu=0.2, requests_per_s=5,
            )  # fmt: skip
        else:
            yield INTENTIONS, Intention(
                event_id=f"{run_id}-i{a}-{n}", occurred_at=now, run_id=run_id, producer="fuzz", agent_id=agent,
                action="acquire", resource=f"fuzz-pool-{a % 4}", amount=1, hold_s=1,
            )  # fmt: skip


# --- the drill -------------------------------------------------------------------------------


@dataclass
class Report:
    run_id: str
    hostile_sent: int = 0
    hostile_by_kind: dict[str, int] = field(default_factory=dict)
    hostile_by_topic: dict[str, int] = field(default_factory=dict)
    rejected_as_valid: int = 0
    oversized_sent: int = 0
    good_vitals: int = 0
    good_intentions: int = 0
    produce_seconds: float = 0.0
    drain_seconds: float | None = None
    workers_alive: dict[str, bool] = field(default_factory=dict)
    worker_cpu_seconds: dict[str, float] = field(default_factory=dict)
    lag_after: dict[str, int] = field(default_factory=dict)
    dead_letters_expected: int = 0
    dead_letters_found: int = 0
    dead_letters_missing: list[str] = field(default_factory=list)
    good_events_dead_lettered: int = 0
    admitted_exactly_once: int = 0
    admitted_missing: int = 0
    admitted_doubled: int = 0
    baseline_agents_exact: int = 0
    baseline_agents_wrong: list[str] = field(default_factory=list)
    trust_agents_exact: int = 0
    trust_agents_wrong: list[str] = field(default_factory=list)
    claims_missing: int = 0
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def crashes_or_stalls(self) -> int:
        return sum(not alive for alive in self.workers_alive.values()) + sum(1 for lag in self.lag_after.values() if lag)

    @property
    def ok(self) -> bool:
        return (
            self.crashes_or_stalls == 0
            and not self.dead_letters_missing
            and self.dead_letters_found == self.dead_letters_expected
            and self.good_events_dead_lettered == 0
            and self.admitted_missing == 0
            and self.admitted_doubled == 0
            and not self.baseline_agents_wrong
            and not self.trust_agents_wrong
            and self.claims_missing == 0
        )


def run_drill(
    services: Services,
    *,
    hostile: int = 10_000,
    agents: int = 40,
    seed: int = 7,
    log_dir: Path | None = None,
    timeout_s: float = 600.0,
    say: Callable[[str], None] = lambda _line: None,
) -> Report:
    run_id = f"fuzz-{seed}-{int(time.time())}"
    report = Report(run_id)
    rng = random.Random(seed)
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="chorus-fuzz-"))
    admin.create_topics(services.kafka)
    ensure_topics(services.kafka, INTERNAL_TOPICS)
    watched = [DEADLETTER.name, ADMITTED.name, CLAIMS.name]
    starts = {(tp.topic, tp.partition): tp.offset for tp in end_offsets(services.kafka, watched)}
    env = {"CHORUS_CONFLICT_DEFAULT_CAPACITY": "1000000000", "CHORUS_BATCH_WITHIN_S": "0.05"}
    with ExitStack() as stack:
        workers = {
            name: stack.enter_context(running_worker(name, services, run_id, sources, log_dir, **env))
            for name, sources in SOURCES.items()
        }
        say(f"run {run_id}: {len(workers)} workers started (logs in {log_dir}); producing")
        time.sleep(5)  # past start-up: the groups were positioned at the end, nothing is missed meanwhile
        expected, good_offsets, good_ids = _produce(services, rng, run_id, hostile, agents, report, say)
        say(f"produced {report.hostile_sent} hostile and {report.good_vitals + report.good_intentions} good "
            f"in {report.produce_seconds:.1f} s; waiting for every group to reach the end")  # fmt: skip
        report.drain_seconds = _wait_drained(services, run_id, workers, report, timeout_s)
        report.workers_alive = {name: proc.poll() is None for name, proc in workers.items()}
        report.worker_cpu_seconds = {name: _cpu_seconds(proc.pid) for name, proc in workers.items()}
        say(f"drained in {report.drain_seconds} s; reading the dead letters and the gate")
        _check_dead_letters(services, starts, expected, good_offsets, report, timeout_s)
        _check_admitted(services, starts, good_ids, report)
        _check_state(services, run_id, agents, report)
    report.load_average = os.getloadavg()
    return report


def _produce(
    services: Services, rng: random.Random, run_id: str, hostile: int, agents: int, report: Report, say
) -> tuple[set[tuple[str, str, int, int]], set[tuple[str, int, int]], dict[str, list[str]]]:
    producer = Producer(
        {"bootstrap.servers": services.kafka, "partitioner": PARTITIONER, "linger.ms": 5,
         "message.max.bytes": 1_000_000, "queue.buffering.max.kbytes": 1_048_576}  # fmt: skip
    )
    delivered: list[tuple[str, str, int, int, str]] = []  # (role, topic, partition, offset, id/kind)
    errors: list[str] = []

    def on_delivery(role: str, tag: str):  # noqa: ANN202
        def report_delivery(err, msg) -> None:  # noqa: ANN001
            if err is not None:
                errors.append(f"{role} {tag}: {err}")
            else:
                delivered.append((role, msg.topic(), msg.partition(), msg.offset(), tag))

        return report_delivery

    good = list(good_stream(run_id, agents))
    COMPACTED = {spec.name for specs in SOURCES.values() for spec in specs if spec.cleanup_policy == "compact"}
    topics = list(READERS)
    started = time.monotonic()
    rounds = 50
    good_iter = iter(good)
    per_round_good = -(-len(good) // rounds)
    per_round_bad = -(-hostile // rounds)
    sent_bad = 0
    good_ids: dict[str, list[str]] = {"v": [], "i": []}
    for _ in range(rounds):
        for _ in range(per_round_good):
            item = next(good_iter, None)
            if item is None:
                break
            spec, event = item
            event = event.model_copy(update={"occurred_at": datetime.now(UTC)})
            producer.produce(spec.name, encode(event), spec.key_of(event), on_delivery=on_delivery("good", event.event_id))
            good_ids["v" if spec is VITALS else "i"].append(event.event_id)
        for _ in range(min(per_round_bad, hostile - sent_bad)):
            topic = topics[sent_bad % len(topics)]
            while True:
                kind, value = hostile_message(rng, topic, run_id, sent_bad, datetime.now(UTC))
                if is_bad(topic, value, time.time()):
                    break
                report.rejected_as_valid += 1  # a mutation that happened to stay valid: not hostile, not sent
            key = rng.choice([None, b"", rng.randbytes(8), rng.randbytes(rng.randrange(1, 2000)), b"fuzz-ok-000"])
            if topic in COMPACTED and not key:
                key = b"fuzz"  # a compacted topic's broker refuses keyless records before any processor sees them
            while True:
                try:
                    producer.produce(topic, value, key, on_delivery=on_delivery("bad", kind))
                    break
                except BufferError:
                    producer.poll(0.1)
            sent_bad += 1
            report.hostile_by_kind[kind] = report.hostile_by_kind.get(kind, 0) + 1
            report.hostile_by_topic[topic] = report.hostile_by_topic.get(topic, 0) + 1
            report.oversized_sent += kind == "oversized"
        producer.poll(0)
        time.sleep(0.05)
    while (item := next(good_iter, None)) is not None:  # the rounds' rounding can leave a few
        spec, event = item
        producer.produce(spec.name, encode(event), spec.key_of(event), on_delivery=on_delivery("good", event.event_id))
        good_ids["v" if spec is VITALS else "i"].append(event.event_id)
    if producer.flush(120) or errors:
        raise RuntimeError(f"the drill could not produce: {errors[:3]}")
    report.produce_seconds = time.monotonic() - started
    report.hostile_sent = sent_bad
    report.good_vitals, report.good_intentions = len(good_ids["v"]), len(good_ids["i"])
    expected = {
        (reader, topic, partition, offset)
        for role, topic, partition, offset, _ in delivered
        if role == "bad"
        for reader in READERS[topic]
    }
    good_offsets = {(topic, partition, offset) for role, topic, partition, offset, _ in delivered if role == "good"}
    report.dead_letters_expected = len(expected)
    return expected, good_offsets, good_ids


def _group_lag(services: Services, group: str, topics: list[str]) -> int:
    ends = end_offsets(services.kafka, topics)
    consumer = Consumer({"bootstrap.servers": services.kafka, "group.id": group, "enable.auto.commit": False})
    try:
        committed = consumer.committed([TopicPartition(tp.topic, tp.partition) for tp in ends], timeout=30)
    finally:
        consumer.close()
    return sum(max(0, end.offset - max(c.offset, 0)) for end, c in zip(ends, committed, strict=True))


def _wait_drained(services: Services, run_id: str, workers, report: Report, timeout_s: float) -> float | None:
    started = time.monotonic()
    while True:
        lags = {
            name: _group_lag(services, f"chorus-{name}-{run_id}", [s.name for s in SOURCES[name]]) for name in SOURCES
        }
        report.lag_after = lags
        if not any(lags.values()):
            return round(time.monotonic() - started, 1)
        if time.monotonic() - started > timeout_s or any(p.poll() is not None for p in workers.values()):
            return None
        time.sleep(1.0)


def _read(services: Services, starts: dict[tuple[str, int], int], topic: str, idle_s: float = 3.0) -> Iterator:
    """Every message of `topic` from the drill's start offsets to its end now."""
    ends = {(tp.topic, tp.partition): tp.offset for tp in end_offsets(services.kafka, [topic])}
    consumer = Consumer({"bootstrap.servers": services.kafka, "group.id": f"fuzz-reader-{time.time()}",
                         "enable.auto.commit": False})  # fmt: skip
    consumer.assign([TopicPartition(t, p, starts.get((t, p), 0)) for (t, p) in ends])
    remaining = {tp for tp, end in ends.items() if end > starts.get(tp, 0)}
    last = time.monotonic()
    try:
        while remaining and time.monotonic() - last < idle_s:
            for msg in consumer.consume(1000, 0.5):
                if msg.error():
                    continue
                last = time.monotonic()
                if msg.offset() + 1 >= ends[(msg.topic(), msg.partition())]:
                    remaining.discard((msg.topic(), msg.partition()))
                yield msg
    finally:
        consumer.close()


def _check_dead_letters(services, starts, expected, good_offsets, report: Report, timeout_s: float) -> None:
    found: set[tuple[str, str, int, int]] = set()
    deadline = time.monotonic() + timeout_s
    good_hit: set[tuple[str, str, int, int]] = set()
    while True:
        for msg in _read(services, starts, DEADLETTER.name):
            try:
                letter = json.loads(msg.value())
                key = (letter["producer"], letter["source_topic"], letter["partition"], letter["offset"])
            except Exception:  # hostile bytes (deep nesting: RecursionError) are not ours to read
                continue
            if key in expected:
                found.add(key)
            elif key[1:] in good_offsets:
                good_hit.add(key)
        if found >= expected or time.monotonic() > deadline:
            break
        time.sleep(2)  # then read it all again: a late dead letter may land on any partition
    report.dead_letters_found = len(found & expected)
    report.dead_letters_missing = [":".join(map(str, k)) for k in sorted(expected - found)[:20]]
    report.good_events_dead_lettered = len(good_hit)


def _check_admitted(services, starts, good_ids: dict[str, list[str]], report: Report) -> None:
    counts: Counter[str] = Counter()
    for msg in _read(services, starts, ADMITTED.name):
        try:
            counts[json.loads(msg.value())["event_id"]] += 1
        except Exception:  # hostile bytes (deep nesting: RecursionError) are not ours to read
            continue
    claims: set[str] = set()
    for msg in _read(services, starts, CLAIMS.name):
        try:
            claims.add(json.loads(msg.value())["event_id"])
        except Exception:  # hostile bytes (deep nesting: RecursionError) are not ours to read
            continue
    wanted = good_ids["i"]
    report.admitted_exactly_once = sum(counts[i] == 1 for i in wanted)
    report.admitted_missing = sum(counts[i] == 0 for i in wanted)
    report.admitted_doubled = sum(counts[i] > 1 for i in wanted)
    report.claims_missing = sum(i not in claims for i in wanted)


def _check_state(services: Services, run_id: str, agents: int, report: Report) -> None:
    async def read() -> None:
        client = aioredis.Redis.from_url(services.redis_url)
        try:
            refs = [EntityRef(run_id, f"fuzz-ok-{a:03d}") for a in range(agents)]
            baseline = await StateStore(client, "baseline", 1).read(refs)
            trust = await StateStore(client, "trust", 1).read(refs)
        finally:
            await client.aclose()
        for ref in refs:
            b = json.loads(as_json(baseline[ref].state_raw or b"{}"))
            counts = {m.get("count") for m in b.get("metrics", {}).values()}
            if counts == {GOOD_VITALS_PER_AGENT}:
                report.baseline_agents_exact += 1
            else:
                report.baseline_agents_wrong.append(f"{ref.entity}: {sorted(map(str, counts))}")
            t = json.loads(as_json(trust[ref].state_raw or b"{}"))
            if t.get("clean") == GOOD_INTENTIONS_PER_AGENT and t.get("changes", 0) == 0:
                report.trust_agents_exact += 1
            else:
                report.trust_agents_wrong.append(f"{ref.entity}: clean={t.get('clean')} changes={t.get('changes')}")

    asyncio.run(read())


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 1)
    except (OSError, IndexError, ValueError):
        return 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hostile", type=int, default=10_000, help="hostile messages to write")
    parser.add_argument("--agents", type=int, default=40, help="agents in the healthy fleet")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the workers to drain")
    parser.add_argument("--json", type=Path, help="write the report here")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the workers this drill started are stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = Settings()
    services = Services(settings.kafka_bootstrap_servers, settings.redis_url, "environment")
    report = run_drill(
        services, hostile=args.hostile, agents=args.agents, seed=args.seed, timeout_s=args.timeout,
        say=lambda line: print(line, flush=True),
    )  # fmt: skip
    data = asdict(report) | {"crashes_or_stalls": report.crashes_or_stalls, "ok": report.ok}
    print(json.dumps(data, indent=2))
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
