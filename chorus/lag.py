"""Consumer lag of the processors' groups, read from Kafka, served as Prometheus metrics.

Lag is measured outside the workers on purpose: when every worker of a processor is
stopped or stuck, its own /metrics is gone or frozen, and that is exactly when lag matters.
So one small process (`chorus exporter`) asks the broker for each group's committed
offsets and each partition's end, like Burrow or KEDA's Kafka scaler do.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient
from prometheus_client import Counter, Gauge

from processors.runtime.kafka import end_offsets
from processors.runtime.security import client_config

log = logging.getLogger(__name__)

PROCESSORS = ("baseline", "trust", "conflict", "quarantine", "healing")
DEFAULT_PORT = 9410

LAG = Gauge(
    "chorus_consumer_lag",
    "Messages between a processor group's committed offset and the partition's end, per partition.",
    ["processor", "topic", "partition"],
)
LAG_READS = Counter("chorus_lag_reads", "Reads of the groups' lag from Kafka, by outcome (ok or error).", ["outcome"])
LAG_READ_TIME = Gauge("chorus_lag_read_timestamp_seconds", "Unix time of the last successful lag read.")

Partition = tuple[str, int]


def lag_of(committed: Mapping[Partition, int], ends: Mapping[Partition, int]) -> dict[Partition, int]:
    """Lag per committed partition: end - committed, never below 0 (a commit can race an end read)."""
    return {tp: max(0, ends[tp] - offset) for tp, offset in committed.items() if tp in ends}


@dataclass(frozen=True)
class GroupLag:
    processor: str
    lag: dict[Partition, int]


def read_lag(bootstrap: str, groups: Mapping[str, str], timeout_s: float = 10.0) -> list[GroupLag]:
    """Each group's lag on the partitions it has committed (processor name -> group id)."""
    admin = AdminClient({**client_config(bootstrap=bootstrap), "socket.timeout.ms": int(timeout_s * 1000)})
    committed: dict[str, dict[Partition, int]] = {}
    for processor, group in groups.items():
        future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)], request_timeout=timeout_s)[
            group
        ]
        result = future.result(timeout=timeout_s)
        committed[processor] = {
            (tp.topic, tp.partition): tp.offset for tp in result.topic_partitions or [] if tp.offset >= 0
        }
    topics = sorted({topic for offsets in committed.values() for topic, _ in offsets})
    ends = {(tp.topic, tp.partition): tp.offset for tp in end_offsets(bootstrap, topics)} if topics else {}
    return [GroupLag(processor, lag_of(offsets, ends)) for processor, offsets in committed.items()]


class LagExporter:
    """Keeps the chorus_consumer_lag gauges equal to the last read (partitions no longer committed are dropped)."""

    def __init__(self, bootstrap: str, groups: Mapping[str, str]) -> None:
        self._bootstrap = bootstrap
        self._groups = dict(groups)
        self._shown: set[tuple[str, str, str]] = set()

    def refresh(self) -> bool:
        try:
            rows = read_lag(self._bootstrap, self._groups)
        except Exception as exc:  # the broker being away is what lag is for: report, keep serving
            LAG_READS.labels("error").inc()
            log.warning("lag read failed", extra={"error": str(exc)})
            return False
        shown: set[tuple[str, str, str]] = set()
        for row in rows:
            for (topic, partition), lag in row.lag.items():
                labels = (row.processor, topic, str(partition))
                LAG.labels(*labels).set(lag)
                shown.add(labels)
        for labels in self._shown - shown:
            LAG.remove(*labels)
        self._shown = shown
        LAG_READS.labels("ok").inc()
        LAG_READ_TIME.set_to_current_time()
        return True

    def run(self, interval_s: float, stop: threading.Event) -> None:
        while not stop.is_set():
            started = time.monotonic()
            self.refresh()
            stop.wait(max(0.0, interval_s - (time.monotonic() - started)))
