"""A run's decisions as read off the decision topics: the operator surface's source of truth.

`Ledger` keeps every decision event of one run (anomalies, trust changes, conflicts,
quarantine decisions, operator commands, diagnoses, healing actions and outcomes, dead letters) in the order it was read, each
with a sequence number, and indexes them by id and by agent. `read_decisions` fills it
once (a finished run, the CLI) or follows the topics (the API, `chorus watch`).
`find_inputs` looks up the input events (intentions, vitals) at the bottom of a cause
chain, reading only the agent's partition over a bounded time span.
"""

from __future__ import annotations

import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from processors.runtime.kafka import take
from processors.runtime.security import client_config
from processors.runtime.topics import probe_consumer, serving_end_offsets
from schemas import (
    ANOMALIES,
    COMMANDS,
    CONFLICTS,
    DEADLETTER,
    DIAGNOSES,
    HEALING,
    INTENTIONS,
    MEMORY,
    QUARANTINE,
    RECOVERY,
    TRUST,
    VITALS,
    ConflictPrediction,
    DecodeError,
    Event,
    ImmuneMemory,
    QuarantineDecision,
    TopicSpec,
    decode,
    partition_for,
)

DECISION_TOPICS: tuple[TopicSpec, ...] = (
    ANOMALIES, TRUST, CONFLICTS, QUARANTINE, COMMANDS, DIAGNOSES, HEALING, RECOVERY, MEMORY, DEADLETTER
)
_AGENT_KEYED = {spec.name for spec in (ANOMALIES, TRUST, QUARANTINE, COMMANDS, DIAGNOSES, HEALING, RECOVERY)}
_MODELS = {spec.name: spec.model for spec in (*DECISION_TOPICS, INTENTIONS, VITALS)}
_EVENT_ID = re.compile(rb'"event_id":"([^"]+)"')
INPUT_LOOKBACK_MS = 180_000  # how far before its first effect an input event is looked for
# librdkafka's consume(n, timeout) waits for n messages or the timeout: short while catching up (the
# messages are there), longer once following (it bounds the feed's added latency).
_CATCH_UP_POLL_S = 0.01
_FOLLOW_POLL_S = 0.1


@dataclass(frozen=True, slots=True)
class Record:
    """One event as read: its place in the ledger (seq) and on the broker."""

    seq: int
    topic: str
    partition: int
    offset: int
    broker_ms: int
    event: Event
    read_at: float = 0.0  # time.monotonic() when this process read it (latency measurements)


def agents_of(event: Event) -> tuple[str, ...]:
    if isinstance(event, ConflictPrediction):
        return tuple(a.agent_id for a in event.affected)
    agent = getattr(event, "agent_id", None)
    return (agent,) if agent else ()


@dataclass
class Ledger:
    """Everything decided in one run, in reading order; safe to share between threads."""

    run_id: str
    records: list[Record] = field(default_factory=list)
    by_id: dict[str, Record] = field(default_factory=dict)
    by_agent: dict[str, list[Record]] = field(default_factory=lambda: defaultdict(list))
    caught_up: bool = False
    undecodable: int = 0

    def __post_init__(self) -> None:
        self._changed = threading.Condition()

    def add(self, topic: str, partition: int, offset: int, broker_ms: int, event: Event) -> Record | None:
        with self._changed:
            if event.event_id in self.by_id:
                return None  # a redelivered duplicate: same id, same decision
            record = Record(len(self.records) + 1, topic, partition, offset, broker_ms, event, time.monotonic())
            self.records.append(record)
            self.by_id[event.event_id] = record
            for agent in agents_of(event):
                self.by_agent[agent].append(record)
            self._changed.notify_all()
            return record

    def mark_caught_up(self) -> None:
        with self._changed:
            self.caught_up = True
            self._changed.notify_all()

    @property
    def last_seq(self) -> int:
        return len(self.records)

    def since(self, seq: int, limit: int | None = None) -> list[Record]:
        """Records after sequence number `seq` (0 = from the start)."""
        with self._changed:
            tail = self.records[max(seq, 0) :]
        return tail[:limit] if limit is not None else tail

    def wait_after(self, seq: int, timeout_s: float) -> bool:
        """Block until a record after `seq` exists (True) or the timeout passes (False)."""
        with self._changed:
            return self._changed.wait_for(lambda: len(self.records) > seq, timeout=timeout_s)

    def of_agent(self, agent: str) -> list[Record]:
        with self._changed:
            return list(self.by_agent.get(agent, ()))

    def agents(self) -> set[str]:
        with self._changed:
            return set(self.by_agent)

    def snapshot(self) -> list[Record]:
        with self._changed:
            return list(self.records)

    def decision_state(self) -> dict[str, QuarantineDecision]:
        """Each agent's latest quarantine decision (quarantine, pending_approval or release).

        Reading order is publication order here: one agent's decisions share a partition."""
        latest: dict[str, QuarantineDecision] = {}
        for record in self.snapshot():
            if isinstance(record.event, QuarantineDecision):
                latest[record.event.agent_id] = record.event
        return latest

    def memory(self) -> dict[str, ImmuneMemory]:
        """The latest immune memory per condition (what healing learned)."""
        latest: dict[str, ImmuneMemory] = {}
        for record in self.snapshot():
            if isinstance(record.event, ImmuneMemory):
                latest[record.event.condition] = record.event
        return latest

    def newest_time(self) -> datetime | None:
        with self._changed:
            return max((r.event.occurred_at for r in self.records), default=None)


# --- reading the topics ---------------------------------------------------------------


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's murmur2 partitioner (the topic contract) puts a key on."""
    return partition_for(key.encode(), partitions)


def _consumer(bootstrap: str, group: str) -> Consumer:
    # Assigned partitions only: the group is never joined, nothing is committed. A short broker-side
    # fetch wait: a reader that stops at the end must not sit out the default 500 ms per fetch there.
    return Consumer({**client_config(bootstrap=bootstrap), "group.id": group, "enable.auto.commit": False,
                     "fetch.wait.max.ms": 10})


def _assignment(consumer: Consumer, agent: str | None) -> list[TopicPartition]:
    positions = []
    for spec in DECISION_TOPICS:
        meta = consumer.list_topics(spec.name, timeout=10).topics[spec.name]
        partitions = sorted(meta.partitions)
        if agent is not None and spec.name in _AGENT_KEYED:
            partitions = [partition_of(agent, len(partitions))]
        elif agent is not None and spec.name == DEADLETTER.name:
            continue
        positions.extend(TopicPartition(spec.name, p, OFFSET_BEGINNING) for p in partitions)
    return positions


def read_decisions(
    bootstrap: str,
    ledger: Ledger,
    *,
    agent: str | None = None,
    follow: Callable[[], bool] | None = None,
    group: str = "chorus-operator",
) -> Ledger:
    """Read the run's decision events into `ledger`: up to the topics' current end, then, while
    `follow()` is true, everything new. With `agent`, only what concerns that agent (its
    partition of each agent-keyed topic, conflicts naming it)."""
    needle = b'"run_id":"' + ledger.run_id.encode() + b'"'
    agent_needle = b'"' + agent.encode() + b'"' if agent else None
    consumer = _consumer(bootstrap, group)
    try:
        assignment = _assignment(consumer, agent)
        ends = _ends(assignment, bootstrap)
        consumer.assign(assignment)
        remaining = {key for key, (low, high) in ends.items() if high > low}
        if not remaining:
            ledger.mark_caught_up()
        while remaining or (follow is not None and follow()):
            for msg in take(consumer, 5000, _CATCH_UP_POLL_S if remaining else _FOLLOW_POLL_S):
                if msg.error():
                    continue
                where = (msg.topic(), msg.partition())
                if where in remaining and msg.offset() + 1 >= ends[where][1]:
                    remaining.discard(where)
                value = msg.value()
                if value is None or needle not in value or (agent_needle and agent_needle not in value):
                    continue
                try:
                    event = decode(_MODELS[msg.topic()], value)
                except DecodeError:
                    ledger.undecodable += 1
                    continue
                if event.run_id == ledger.run_id and (agent is None or agent in agents_of(event)):
                    ledger.add(msg.topic(), msg.partition(), msg.offset(), msg.timestamp()[1], event)
            if not remaining and not ledger.caught_up:
                ledger.mark_caught_up()
        return ledger
    finally:
        consumer.close()


def _ends(assignment: list[TopicPartition], bootstrap: str) -> dict[tuple[str, int], tuple[int, int]]:
    """(low, high) watermark per partition: a partition whose records all expired has low == high."""
    probe = probe_consumer(bootstrap)
    try:
        ends = {}
        by_topic: dict[str, list[int]] = defaultdict(list)
        for tp in assignment:
            by_topic[tp.topic].append(tp.partition)
        for name, partitions in by_topic.items():
            for p, high in zip(partitions, serving_end_offsets(probe, name, partitions), strict=True):
                low = probe.get_watermark_offsets(TopicPartition(name, p), timeout=10)[0]
                ends[(name, p)] = (low, high)
        return ends
    finally:
        probe.close()


def find_inputs(bootstrap: str, agent: str, ids: Iterable[str], around_ms: tuple[int, int]) -> dict[str, Event]:
    """The agent's intentions and vitals among `ids`, read from its partition between
    `around_ms[0] - INPUT_LOOKBACK_MS` and `around_ms[1]` (broker time)."""
    wanted = set(ids)
    if not wanted:
        return {}
    start_ms, end_ms = around_ms[0] - INPUT_LOOKBACK_MS, around_ms[1] + 1
    found: dict[str, Event] = {}
    consumer = _consumer(bootstrap, "chorus-operator")
    try:
        bounds = []
        for spec in (INTENTIONS, VITALS):
            n = len(consumer.list_topics(spec.name, timeout=10).topics[spec.name].partitions)
            p = partition_of(agent, n)
            start, end = consumer.offsets_for_times([TopicPartition(spec.name, p, start_ms)], timeout=10)[0], (
                consumer.offsets_for_times([TopicPartition(spec.name, p, end_ms)], timeout=10)[0]
            )
            high = consumer.get_watermark_offsets(TopicPartition(spec.name, p), timeout=10)[1]
            first = start.offset if start.offset >= 0 else high
            last = end.offset if end.offset >= 0 else high
            if first < last:
                bounds.append((TopicPartition(spec.name, p, first), last))
        if not bounds:
            return found
        consumer.assign([tp for tp, _ in bounds])
        remaining = {(tp.topic, tp.partition): last for tp, last in bounds}
        while remaining and len(found) < len(wanted):
            for msg in take(consumer, 5000, _CATCH_UP_POLL_S):
                if msg.error():
                    continue
                where = (msg.topic(), msg.partition())
                if where not in remaining:
                    continue
                if msg.offset() + 1 >= remaining[where]:
                    del remaining[where]
                match = _EVENT_ID.search(msg.value() or b"")
                if match and match.group(1).decode() in wanted:
                    try:
                        event = decode(_MODELS[msg.topic()], msg.value())
                    except DecodeError:
                        continue
                    found[event.event_id] = event
        return found
    finally:
        consumer.close()
