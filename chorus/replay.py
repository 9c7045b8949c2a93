"""Replaying a recording through the real pipeline, in dependency order, optionally with a kill drill.

The recorded inputs are re-published under a new run id (only `run_id` is rewritten; every
record goes back to its recorded partition, in its recorded order). The four processors run as
`chorus worker` processes, `replicas` per processor, each consumer group positioned at the end
of every topic before anything is published. Each processor holds its events (the runtime's
`hold_until_key`) until every input it reads is complete, which is known from the upstream
consumer groups' committed offsets:

    inputs published ─► baseline, conflict's re-key of intentions
    conflict's claims complete ─► conflict windows
    anomalies + conflicts complete, trust's re-key of conflicts done ─► trust
    trust complete, quarantine's sequencing of its inputs done ─► quarantine

Every processor then applies complete inputs in the ordering rule's order, so the decisions are
a function of the recording alone: not of speed, replicas, batching or crashes. The kill drill
SIGKILLs a random worker every `kill_every` seconds and restarts it at once (same static group
membership, so it gets its partitions back without a rebalance).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from confluent_kafka import Consumer, Producer, TopicPartition

from processors.conflict import CLAIMS
from processors.quarantine import SEQUENCED
from processors.runtime.kafka import commit_group_offsets, end_offsets
from processors.runtime.security import client_config
from processors.runtime.statecodec import as_json
from processors.trust import CONFLICTS_BY_AGENT
from schemas import ANOMALIES, COMMANDS, CONFLICTS, INTENTIONS, QUARANTINE, VITALS

from . import admin, recording
from .capture import capture, run_marker
from .errors import ReplayError
from .pipeline import Workers

STAGE_TIMEOUT_S = 600.0
# Held events of a replay wait for complete inputs, never for a clock (see Settings.merge_max_wait_s).
REPLAY_MAX_WAIT_S = "3600"
QUARANTINE_INPUTS = tuple(SEQUENCED)  # the topics the quarantine app copies into its sequence
# The healing processor is not replayed: it reads quarantine decisions and quarantine reads its
# recoveries, a cycle that no dependency order settles (see docs/architecture.md). Its recorded
# verdicts are inputs instead (recording.INPUT_TOPICS), so a recorded cure releases as it did live.
REPLAYED = ("baseline", "trust", "conflict", "quarantine")


@dataclass
class ReplayResult:
    run_id: str
    source_run_id: str
    published: int
    decisions: list[recording.Record]
    kills: int = 0
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)
    state_digest: str = ""

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "replay_of": self.source_run_id,
            "inputs_published": self.published,
            "decisions": self.counts,
            "kills": self.kills,
            "restarts": self.kills,
            "seconds": round(self.seconds, 1),
            "final_state_sha256": self.state_digest,
        }


class Drill:
    """SIGKILL a random worker every `every_s` seconds and restart it at once."""

    def __init__(self, workers: Workers, every_s: float | None, say: Callable[[str], None], seed: int = 0) -> None:
        self.workers = workers
        self.every_s = every_s
        self.say = say
        self.kills = 0
        self._rng = random.Random(seed)
        self._next = time.monotonic() + every_s if every_s else float("inf")

    def tick(self) -> None:
        if time.monotonic() < self._next:
            return
        assert self.every_s is not None
        self._next = time.monotonic() + self.every_s
        member = self._rng.choice(sorted(self.workers.procs))
        self.workers.kill(member)
        self.workers.spawn(member)
        self.kills += 1
        self.say(f"  drill: SIGKILL {member}, restarted (kill {self.kills})")


def hold_key(run_id: str, processor: str) -> str:
    return f"chorus:replay:{{{run_id}}}:go:{processor}"


def settings_env(settings: dict[str, Any], capacities: dict[str, float] | None) -> dict[str, str]:
    """The recorded decision settings as CHORUS_* variables (pydantic-settings reads JSON for complex types)."""
    env: dict[str, str] = {}
    for name, value in settings.items():
        if value is None:
            continue
        if isinstance(value, bool):
            env[f"CHORUS_{name.upper()}"] = "true" if value else "false"
        elif isinstance(value, dict | list):
            env[f"CHORUS_{name.upper()}"] = json.dumps(value)
        else:
            env[f"CHORUS_{name.upper()}"] = str(value)
    if capacities:
        env["CHORUS_CONFLICT_CAPACITIES"] = json.dumps(capacities)
    return env


def rewrite_run_id(value: bytes | None, old: str, new: str) -> bytes | None:
    """The same bytes with only the run id changed."""
    if value is None:
        return None
    marker = run_marker(old)
    if marker in value:
        return value.replace(marker, run_marker(new), 1)
    try:  # not compact JSON: parse, change, re-serialise
        event = json.loads(value)
    except ValueError:
        return value  # not JSON: a poison record stays poison
    if isinstance(event, dict) and "run_id" in event:
        event["run_id"] = new
        return json.dumps(event, separators=(",", ":")).encode()
    return value


def publish(
    bootstrap: str,
    records: Sequence[recording.Record],
    old_run: str,
    new_run: str,
    *,
    speed: float | None,
    tick: Callable[[], None] = lambda: None,
) -> int:
    """Re-publish the records to their recorded partitions, paced by event time (`speed` x; None = max)."""
    producer = Producer(
        {
            **client_config(bootstrap=bootstrap),
            "enable.idempotence": True,
            "linger.ms": 20,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 1_000_000,
        }
    )
    errors: list[str] = []

    def report(err: object, _msg: object) -> None:
        if err is not None:
            errors.append(str(err))

    started = time.monotonic()
    first: float | None = None
    count = 0
    for rec in recording.in_time_order(records):
        at = recording.occurred_at(rec)
        if speed is not None and at is not None:
            first = at.timestamp() if first is None else first
            while (wait := (at.timestamp() - first) / speed - (time.monotonic() - started)) > 0:
                producer.poll(min(wait, 0.2))
                tick()
        while True:
            try:
                producer.produce(
                    rec.topic,
                    rewrite_run_id(rec.value, old_run, new_run),
                    rec.key,
                    partition=rec.partition,
                    headers=rec.headers or None,
                    on_delivery=report,
                )
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        if count % 5000 == 0:
            producer.poll(0)
            tick()
    while producer.flush(1.0):
        tick()
    if errors:
        raise ReplayError(f"{len(errors)} records were not delivered: {errors[0]}")
    return count


class Progress:
    """Knows, from a consumer group's committed offsets, whether it has processed topics to their end."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._consumers: dict[str, Consumer] = {}

    def done(self, group: str, topics: Iterable[str]) -> bool:
        ends = end_offsets(self.bootstrap, topics)
        consumer = self._consumers.get(group)
        if consumer is None:
            consumer = self._consumers[group] = Consumer(
                {**client_config(bootstrap=self.bootstrap), "group.id": group, "enable.auto.commit": False}
            )
        committed = consumer.committed([TopicPartition(tp.topic, tp.partition) for tp in ends], timeout=10)
        return all(c.offset >= e.offset for c, e in zip(committed, ends, strict=True) if e.offset > 0)

    def close(self) -> None:
        for consumer in self._consumers.values():
            consumer.close()


def replay(
    path: Path,
    *,
    run_id: str,
    bootstrap: str,
    redis_url: str,
    log_dir: Path,
    speed: float | None = None,
    replicas: int = 1,
    kill_every: float | None = None,
    drill_seed: int = 0,
    say: Callable[[str], None] = print,
    during: Callable[[str], None] | None = None,
) -> ReplayResult:
    """Replay a recording; returns the run's decisions. `during(stage)` is called as each stage starts
    (tests use it to restart Redis or the broker mid-replay)."""
    head, stream = recording.read(path)
    source_run = head["run_id"]
    inputs = [rec for rec in stream if rec.topic in recording.INPUT_TOPICS]
    if not inputs:
        raise ReplayError(f"{path} holds no input records")
    started = time.monotonic()
    admin.create_topics(bootstrap)
    workers = Workers(bootstrap, redis_url, run_id, log_dir, REPLAYED, replicas=replicas)
    workers.env.update(settings_env(head.get("settings") or {}, head.get("capacities")))
    workers.env["CHORUS_MERGE_MAX_WAIT_S"] = REPLAY_MAX_WAIT_S
    for name in REPLAYED:
        workers.processor_env[name] = {"CHORUS_HOLD_UNTIL_KEY": hold_key(run_id, name)}
    everything = [spec.name for spec in admin.ALL_TOPICS]
    start = end_offsets(bootstrap, everything)
    for name in REPLAYED:  # every group starts at today's end of every topic, restarts included
        commit_group_offsets(bootstrap, workers.group(name), start)
    store = redis.Redis.from_url(redis_url)
    progress = Progress(bootstrap)
    drill = Drill(workers, kill_every, say, drill_seed)
    with contextlib.ExitStack() as cleanup:
        cleanup.callback(workers.stop)
        cleanup.callback(progress.close)
        cleanup.callback(store.close)
        say(f"starting processors ({replicas} per processor): " + ", ".join(REPLAYED) + " ...")
        workers.start()
        workers.wait_ready(say)

        def tick() -> None:
            workers.check()
            drill.tick()

        say(f"publishing {len(inputs):,} input records as run {run_id!r} (speed {speed or 'max'}) ...")
        published = publish(bootstrap, inputs, source_run, run_id, speed=speed, tick=tick)

        def stage(name: str, needs: list[tuple[str, Sequence[str]]]) -> None:
            if during is not None:
                during(name)
            _wait(progress, [(workers.group(g), topics) for g, topics in needs], tick, name)
            _open(store, hold_key(run_id, name))
            say(f"  {name}: inputs complete, applying")

        stage("baseline", [])
        stage("conflict", [("conflict", [INTENTIONS.name])])
        stage(
            "trust",
            [("baseline", [VITALS.name]), ("conflict", [CLAIMS.name]), ("trust", [CONFLICTS.name])],
        )
        stage(
            "quarantine",
            [
                ("trust", [ANOMALIES.name, CONFLICTS_BY_AGENT.name, INTENTIONS.name, COMMANDS.name]),
                ("quarantine", QUARANTINE_INPUTS),
            ],
        )
        if during is not None:
            during("done")
        _wait(progress, [(workers.group("quarantine"), [s.name for s in SEQUENCED.values()])], tick, "quarantine")
        # Baseline reads quarantine decisions too (no learning while held): its state is final only once it
        # has applied the last of them.
        _wait(progress, [(workers.group("baseline"), [QUARANTINE.name])], tick, "baseline")
        say("every input processed; reading the decisions ...")
        decisions = list(capture(bootstrap, run_id, recording.DECISION_TOPICS, start=start))
        digest = state_digest(store, run_id)
    counts = Counter(rec.topic for rec in decisions)
    return ReplayResult(
        run_id=run_id,
        source_run_id=source_run,
        published=published,
        decisions=decisions,
        kills=drill.kills,
        seconds=time.monotonic() - started,
        counts=dict(sorted(counts.items())),
        state_digest=digest,
    )


def _open(store: redis.Redis, key: str) -> None:
    deadline = time.monotonic() + STAGE_TIMEOUT_S
    while True:
        try:
            store.set(key, "1", ex=7 * 24 * 3600)
            return
        except redis.RedisError as exc:  # a Redis restart in a drill: try again
            if time.monotonic() > deadline:
                raise ReplayError(f"cannot reach Redis: {exc}") from exc
            time.sleep(0.5)


def _wait(progress: Progress, needs: list[tuple[str, Sequence[str]]], tick: Callable[[], None], stage: str) -> None:
    deadline = time.monotonic() + STAGE_TIMEOUT_S
    for group, topics in needs:
        while True:
            tick()
            try:
                if progress.done(group, topics):
                    break
            except Exception as exc:  # the broker restarting in a drill: look again
                if time.monotonic() > deadline:
                    raise ReplayError(f"{stage}: cannot read {group}'s progress: {exc}") from exc
            if time.monotonic() > deadline:
                raise ReplayError(
                    f"{stage}: {group} did not process {', '.join(topics)} within {STAGE_TIMEOUT_S:.0f} s"
                )
            time.sleep(0.3)


def final_state(store: redis.Redis, run_id: str) -> dict[str, Any]:
    """Every processor's stored state, parts and history for the run, with the run id taken out: what two
    replays of one recording must agree on (fences and versions hold offsets and write counts, which
    differ between runs, and are left out)."""
    state: dict[str, Any] = {}
    for key in store.scan_iter(match=f"chorus:*{{{run_id}:*", count=1000):
        name = key.decode().replace(run_id, "<run>")
        kind = store.type(key).decode()
        if kind == "hash" and name.endswith(":parts"):  # an entity's parts (the quarantine book's agents)
            state[name] = {
                k.decode(): json.loads(v.decode().replace(run_id, "<run>")) for k, v in store.hgetall(key).items()
            }
        elif kind == "hash":
            value = store.hget(key, "s")
            if value is not None:
                state[name] = json.loads(as_json(value).decode().replace(run_id, "<run>"))
        elif kind == "list":
            state[name] = [v.decode().replace(run_id, "<run>") for v in store.lrange(key, 0, -1)]
    return dict(sorted(state.items()))


def state_digest(store: redis.Redis, run_id: str) -> str:
    deadline = time.monotonic() + 60
    while True:
        try:
            state = final_state(store, run_id)
            break
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
