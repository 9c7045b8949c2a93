"""Reads one run's records off Kafka topics, between explicit offsets (for record, replay and diff)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from processors.runtime.kafka import end_offsets, take
from processors.runtime.security import client_config

from .recording import Record, occurred_at


def run_marker(run_id: str) -> bytes:
    """How a run's events spell their run id (compact JSON): a cheap filter before parsing."""
    return b'"run_id":"' + run_id.encode() + b'"'


def capture(
    bootstrap: str,
    run_id: str,
    topics: Sequence[str],
    *,
    start: Iterable[TopicPartition] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Iterator[Record]:
    """The run's records on `topics`, from `start` (default: each partition's beginning) to the end
    offsets taken now; `since`/`until` keep events whose occurred_at lies in [since, until]."""
    ends = {(tp.topic, tp.partition): tp.offset for tp in end_offsets(bootstrap, topics)}
    begin = {(tp.topic, tp.partition): tp.offset for tp in start or ()}
    todo = {key: end for key, end in ends.items() if end > max(begin.get(key, 0), 0)}
    if not todo:
        return
    consumer = Consumer(
        {
            **client_config(bootstrap=bootstrap),
            "group.id": f"chorus-capture-{run_id}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,  # a compacted partition may never show its last offset
            "fetch.max.bytes": 52428800,
        }
    )
    marker = run_marker(run_id)
    total = sum(end - max(begin.get(key, 0), 0) for key, end in todo.items())
    read = 0
    try:
        consumer.assign([TopicPartition(t, p, begin.get((t, p), OFFSET_BEGINNING)) for (t, p) in sorted(todo)])
        while todo:
            for msg in take(consumer, 2000, 1.0):
                if msg.error():
                    if msg.error().code() == KafkaError._PARTITION_EOF:
                        todo.pop((msg.topic(), msg.partition()), None)
                    continue
                key = (msg.topic(), msg.partition())
                end = todo.get(key)
                if end is None or msg.offset() >= end:
                    continue
                read += 1
                if msg.offset() >= end - 1:
                    del todo[key]
                value = msg.value()
                if value is None or marker not in value:
                    continue
                ts_type, ts = msg.timestamp()
                rec = Record(
                    msg.topic(),
                    msg.partition(),
                    msg.offset(),
                    msg.key(),
                    value,
                    ts if ts_type else None,
                    [(k, v or b"") for k, v in msg.headers() or []],
                )
                event = rec.event()
                if event is None or event.get("run_id") != run_id:
                    continue
                if since is not None or until is not None:
                    at = occurred_at(rec)
                    if at is None or (since is not None and at < since) or (until is not None and at > until):
                        continue
                yield rec
            if progress is not None:
                progress(read, total)
    finally:
        consumer.close()
