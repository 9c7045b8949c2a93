"""The hot path's consumer: confluent-kafka (librdkafka) batches, hosted inside the Faust app.

Faust's per-message stream machinery tops out near 10,000 messages/s on this hardware
(a librdkafka consume->produce passthrough does ~200,000/s), so the processors read
their sources with a confluent-kafka consumer instead: librdkafka fetches and
decompresses in its own threads and `consume(n)` hands over a whole batch in one call.

Guarantees, and why they hold:
- Consumer group = the Faust app id; offsets are committed by hand, only for batches whose
  outputs were delivered and whose state was written (auto commit and auto offset store off).
- `consume`, processing and `commit` run strictly one after another (a completed batch's commit
  is requested by the next consume call, first thing, on the consumer's thread). librdkafka serves
  rebalance callbacks only inside `consume`, so a partition is never revoked while a batch of
  it is in flight and a completed batch is committed before its partitions can move.
- Range assignment: partition p of every source goes to the same worker, so every event of one
  agent (co-partitioned topics) meets one writer. Static membership (`group.instance.id`) gives a
  restarted worker its partitions back without waiting out the dead one's session.
- The source knows, per partition of the processor's own topics, whether everything the broker had
  at the last fetch has been handed over: the ordering rule holds events while an input still has
  unread data (`caught_up`). A partition is caught up when librdkafka reports its end (partition
  EOF, which comes with the next fetch that finds nothing new), or as soon as the last record handed
  over is the last one the broker reported (the high watermark of its latest fetch response, cached
  by librdkafka): under a steady trickle the EOF rarely comes before new data does, and waiting for
  it held every batch for most of `merge_max_wait_s`.
- A batch that cannot finish (Redis down past `max.poll.interval.ms`, SIGTERM) is never
  committed: the next owner re-reads it, and the offset fences + compare-and-set make the
  replay harmless. A failed commit is logged and counted, never fatal, for the same reason.
- A fatal consumer error (librdkafka's consumer is then unusable: for example fenced after a
  session timeout by a member with our `group.instance.id`) stops the worker loudly, so its
  supervisor restarts it and static membership hands its partitions back. Logging it and
  going on, as for a transient error, left a worker alive, turning, and deaf.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from . import metrics as m
from .errors import PermanentFailure
from .health import WORKER as health
from .kafka import take
from .relaystart import RelayStarts
from .runner import Record
from .security import client_config

log = logging.getLogger(__name__)


class ConfluentSource:
    """Batches of records from one consumer group, committed only when the caller says a batch is done."""

    def __init__(
        self,
        bootstrap: str,
        group: str,
        topics: Sequence[str],
        *,
        auto_offset_reset: str,
        processor: str,
        client: Mapping[str, Any] | None = None,
        own_topics: Sequence[str] = (),
        internal_topics: Sequence[str] = (),
        instance_id: str | None = None,
        session_timeout_ms: int = 10000,
        relay_starts: RelayStarts | None = None,
        fetch_wait_ms: int | None = None,
    ) -> None:
        """`client`: the connection's settings (security.client_config); default: the environment's.
        `relay_starts`: where a new group starts its internal topics (relaystart.py); without it, at their end.
        `fetch_wait_ms`: a fetch waits up to this long for a megabyte (Processor.fetch_wait_ms); default: it
        returns at the first record."""
        self._topics = list(topics)
        self._own = frozenset(own_topics)
        self._internal = frozenset(internal_topics)
        self._starts = relay_starts
        self._processor = processor
        # (topic, partition) of the own topics assigned here -> everything fetched was handed over
        self._at_end: dict[tuple[str, int], bool] = {}
        # (topic, partition) of the own topics -> the offset after the last record handed over
        self._next: dict[tuple[str, int], int] = {}
        self._revoked: set[tuple[str, int]] = set()
        self._assigned: list[TopicPartition] = []
        static = {"group.instance.id": instance_id} if instance_id else {}
        patient = {"fetch.min.bytes": 1 << 20, "fetch.wait.max.ms": fetch_wait_ms} if fetch_wait_ms is not None else {}
        self._consumer = Consumer(
            {
                **(client or client_config(bootstrap=bootstrap)),
                "bootstrap.servers": bootstrap,
                "group.id": group,
                **static,
                **patient,
                "session.timeout.ms": session_timeout_ms,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": auto_offset_reset,
                "partition.assignment.strategy": "range",
                # Prefetch generously: librdkafka's threads fill this queue while Python processes a batch.
                "queued.max.messages.kbytes": 262144,
                "fetch.max.bytes": 52428800,
                "max.partition.fetch.bytes": 4194304,
                "on_commit": self._on_commit,
                # Statistics tell the readiness probe whether any broker is up, even while idle.
                "statistics.interval.ms": 5000,
                "stats_cb": self._on_stats,
            },
            logger=log,
        )
        # One thread owns every blocking consumer call, so they never overlap.
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"chorus-{processor}-consumer")
        self._closed = False
        self._held: set[tuple[str, int]] = set()
        self._to_commit: dict[tuple[str, int], int] = {}  # completed batches' next offsets, not yet requested

    async def _call(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def start(self) -> None:
        await self._call(
            lambda: self._consumer.subscribe(
                self._topics, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
            )
        )
        if self._starts is not None and self._internal:  # before this worker's relays can copy anything
            await self._call(self._claim_relay_starts)

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self._closed:
            # An assignment that close() itself serves (a worker stopped right after it subscribed): nothing
            # will be consumed, and a committed-offsets lookup now fails on the closing handle. That failure
            # escaped close() as a bare KafkaError that no `except` clause matches (CI, test_relay_start).
            return
        if self._internal:
            self._place_new_internal(consumer, partitions)
        for tp in partitions:
            if tp.topic in self._own:
                self._at_end[(tp.topic, tp.partition)] = False
                self._next.pop((tp.topic, tp.partition), None)
                self._assigned.append(TopicPartition(tp.topic, tp.partition))
        log.info("partitions assigned", extra={"processor": self._processor, "partitions": _names(partitions)})
        self._held |= {(tp.topic, tp.partition) for tp in partitions}  # cooperative: an increment
        self._report_held()

    def _place_new_internal(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """A group without a position on one of its internal topics starts where its relays began
        copying into it (relaystart.py), whatever auto.offset.reset says: an earlier run's copies
        must not be re-applied, nor waited for, and none of this group's may be skipped."""
        internal = [TopicPartition(tp.topic, tp.partition) for tp in partitions if tp.topic in self._internal]
        if not internal:
            return
        fresh = [tp for tp in consumer.committed(internal, timeout=30) if tp.offset < 0]
        if not fresh:
            return
        starts = {}
        for tp in fresh:
            end = consumer.get_watermark_offsets(tp, timeout=30)[1]  # before the mark: see relaystart.py
            starts[(tp.topic, tp.partition)] = self._starts.start(tp.topic, tp.partition, end) if self._starts else end
        for tp in partitions:
            if (tp.topic, tp.partition) in starts:
                tp.offset = starts[(tp.topic, tp.partition)]
        consumer.assign(partitions)
        log.info("internal partitions of a new group start where its relays began", extra={"partitions": _names(fresh)})

    def _claim_relay_starts(self) -> None:
        """Mark where this group's copies begin (relaystart.py): the internal partitions' ends now."""
        assert self._starts is not None
        topics = self._consumer.list_topics(timeout=30).topics
        ends = {
            (name, p): self._consumer.get_watermark_offsets(TopicPartition(name, p), timeout=30)[1]
            for name in sorted(self._internal)
            for p in topics[name].partitions
        }
        self._starts.claim(ends)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Called inside consume(): the previous batch is already applied and its commit requested.
        # Events of these partitions still held by the caller are dropped (the next owner re-reads them).
        for tp in partitions:
            self._at_end.pop((tp.topic, tp.partition), None)
            self._next.pop((tp.topic, tp.partition), None)
            self._revoked.add((tp.topic, tp.partition))
        log.info("partitions revoked", extra={"processor": self._processor, "partitions": _names(partitions)})
        self._held -= {(tp.topic, tp.partition) for tp in partitions}
        self._report_held()

    def _report_held(self) -> None:
        m.ASSIGNED_PARTITIONS.labels(self._processor).set(len(self._held))
        health.assigned(len(self._held))

    def _on_stats(self, stats_json: str) -> None:
        try:
            brokers = json.loads(stats_json).get("brokers", {}).values()
        except (ValueError, AttributeError):
            return
        # Bootstrap placeholders have nodeid -1; a real broker in state UP means Kafka answers.
        if any(b.get("nodeid", -1) >= 0 and b.get("state") == "UP" for b in brokers):
            health.recovered("kafka")
        else:
            health.failing("kafka", "no broker connection is up")

    async def batch(self, max_events: int, within_s: float) -> list[Record]:
        """What has arrived, up to max_events, waiting at most within_s for the first record.

        Natural batching: never waiting for a batch to fill keeps each hop's latency at its
        processing time under light load, while under load the prefetch queue has filled
        during the previous batch and batches grow to max_events by themselves.
        """
        messages: list[Message] = await self._call(self._take, max_events, within_s)
        records: list[Record] = []
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.fatal() or err.code() == KafkaError._FATAL:
                    raise PermanentFailure(f"the Kafka consumer stopped for good ({err.str()}); the worker must restart")
                if err.code() == KafkaError._PARTITION_EOF:
                    if (msg.topic(), msg.partition()) in self._at_end:
                        self._at_end[(msg.topic(), msg.partition())] = True
                else:
                    m.KAFKA_ERRORS.labels(self._processor).inc()
                    log.warning("consumer error", extra={"processor": self._processor, "error": str(err)})
                continue
            if (msg.topic(), msg.partition()) in self._at_end:
                self._at_end[(msg.topic(), msg.partition())] = False
                self._next[(msg.topic(), msg.partition())] = msg.offset() + 1
            ts_type, ts = msg.timestamp()
            records.append(
                Record(
                    msg.topic(), msg.partition(), msg.offset(), msg.key(), msg.value(), ts / 1000 if ts_type else None
                )
            )
        self._settle()
        return records

    def _settle(self) -> None:
        """Mark caught up the partitions whose last handed-over record is the last their latest fetch
        response reported. A cached, local read: no broker round trip, and no consume runs meanwhile
        (batch() has returned from the consumer's thread)."""
        for key, done in self._at_end.items():
            if not done and (after := self._next.get(key)) is not None:
                high = self._consumer.get_watermark_offsets(TopicPartition(*key), cached=True)[1]
                self._at_end[key] = handed_over_all(after, high)

    def caught_up(self) -> bool:
        """Every assigned partition of the own topics has handed over all the broker had at its last fetch."""
        return all(self._at_end.values())

    def take_revoked(self) -> set[tuple[str, int]]:
        """Partitions revoked since the last call."""
        revoked, self._revoked = self._revoked, set()
        return revoked

    def take_assigned(self) -> list[TopicPartition]:
        """Partitions of the own topics assigned since the last call."""
        assigned, self._assigned = self._assigned, []
        return assigned

    async def committed(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        def read() -> list[TopicPartition]:
            self._request_commit()
            return self._consumer.committed(partitions, timeout=10)

        return await self._call(read)

    async def rewind(self, positions: list[TopicPartition]) -> None:
        """Read these partitions again from the given offsets (state lost behind the committed offset)."""
        for tp in positions:
            await self._call(lambda tp=tp: self._consumer.seek(tp))
            self._at_end[(tp.topic, tp.partition)] = False
            self._next.pop((tp.topic, tp.partition), None)

    def _take(self, max_events: int, within_s: float) -> list[Message]:
        self._request_commit()
        return take(self._consumer, max_events, within_s)

    async def commit(self, records: Sequence[Record]) -> None:
        """Commit past the highest offset of each partition in the (completed) batch.

        Requested at the start of the next consume, in the same call on the consumer's thread (one
        thread hop fewer per batch; still before any rebalance callback can run), or on close."""
        pending = self._to_commit
        for rec in records:
            key = (rec.topic, rec.partition)
            if rec.offset + 1 > pending.get(key, -1):
                pending[key] = rec.offset + 1

    def _request_commit(self) -> None:
        """Asynchronous: the outcome arrives in _on_commit; a lost commit only means a harmless replay."""
        if self._to_commit:
            offsets = [TopicPartition(t, p, o) for (t, p), o in self._to_commit.items()]
            self._to_commit = {}
            self._consumer.commit(offsets=offsets, asynchronous=True)

    def _on_commit(self, err: KafkaError | None, _partitions: list[TopicPartition]) -> None:
        if err is None:
            m.LAST_COMMIT.labels(self._processor).set_to_current_time()
        elif err.code() != KafkaError._NO_OFFSET:
            m.KAFKA_ERRORS.labels(self._processor).inc()
            log.warning("offset commit failed; the batch may be replayed (fenced)", extra={"error": str(err)})

    def close(self) -> None:
        """Leave the group (lets the others take the partitions at once); waits for a running consume."""
        if self._closed:
            return
        self._closed = True
        self._executor.shutdown(wait=True)
        try:
            self._request_commit()
            self._consumer.close()
        except Exception as exc:  # closing must not mask the reason we stop
            log.warning("consumer close failed", extra={"error": str(exc)})


def handed_over_all(after: int, high: int) -> bool:
    """Whether a partition whose last handed-over record is at `after - 1` has nothing more that the broker
    reported: `high` is the high watermark of its latest fetch response (negative while unknown: not judged)."""
    return high >= 0 and after >= high


def _names(partitions: Sequence[TopicPartition]) -> list[str]:
    return [f"{tp.topic}:{tp.partition}" for tp in partitions]
