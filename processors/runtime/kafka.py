"""Kafka plumbing shared by processors, tests and the bench: senders and consumer-group positioning."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import aiokafka.errors as aioerrors
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from schemas import PARTITIONER

from .errors import ProduceRefused
from .security import client_config
from .topics import probe_consumer, serving_end_offsets

# The written rule for produce errors (applied by processors.runtime.delivery.deliver):
# - poison: this message can never be written, whatever we wait for -> it is replaced by a dead letter;
# - forbidden: no message of ours can be written (ACLs, credentials, a fatal producer) -> the worker
#   stops loudly: retrying would hang forever and dead-lettering would silently drop every decision;
# - anything else is transient (broker down, leader moving, timeouts) -> retried with backoff.
ProduceErrorKind = Literal["poison", "forbidden", "transient"]
POISON_CODES = frozenset(
    {
        KafkaError.MSG_SIZE_TOO_LARGE,
        KafkaError.RECORD_LIST_TOO_LARGE,
        KafkaError.INVALID_RECORD,
        KafkaError.INVALID_MSG,  # CORRUPT_MESSAGE
        KafkaError.INVALID_TIMESTAMP,
    }
)
FORBIDDEN_CODES = frozenset(
    {
        KafkaError.TOPIC_AUTHORIZATION_FAILED,
        KafkaError.CLUSTER_AUTHORIZATION_FAILED,
        KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
        KafkaError.SASL_AUTHENTICATION_FAILED,
        KafkaError._AUTHENTICATION,
    }
)
_AIO_POISON = (
    aioerrors.MessageSizeTooLargeError,
    aioerrors.RecordTooLargeError,
    aioerrors.RecordListTooLargeError,
    aioerrors.CorruptRecordException,
    aioerrors.InvalidTimestampError,
)
_AIO_FORBIDDEN = (
    aioerrors.TopicAuthorizationFailedError,
    aioerrors.ClusterAuthorizationFailedError,
    aioerrors.TransactionalIdAuthorizationFailed,
)


def produce_error_kind(err: KafkaError) -> ProduceErrorKind:
    if err.fatal() or err.code() in FORBIDDEN_CODES:
        return "forbidden"
    return "poison" if err.code() in POISON_CODES else "transient"


@dataclass(frozen=True)
class OutMessage:
    topic: str
    key: bytes | None
    value: bytes
    timestamp: float | None = None


class Sender(Protocol):
    """Produces messages and returns only once the broker has acknowledged every one of them."""

    async def __call__(self, messages: Sequence[OutMessage]) -> None: ...


class FaustSender:
    """Sends through a Faust app's producer (aiokafka), awaiting every delivery."""

    def __init__(self, app: object) -> None:
        self._app = app

    async def __call__(self, messages: Sequence[OutMessage]) -> None:
        producer = self._app.producer  # type: ignore[attr-defined]
        refused: dict[int, tuple[str, str]] = {}
        futures: list[tuple[int, asyncio.Future]] = []
        for i, m in enumerate(messages):
            try:
                futures.append((i, await producer.send(m.topic, m.key, m.value, None, m.timestamp, None)))
            except (*_AIO_POISON, *_AIO_FORBIDDEN) as exc:
                refused[i] = (_aio_kind(exc), repr(exc))
        results = await asyncio.gather(*(f for _, f in futures), return_exceptions=True)
        transient = None
        for (i, _), result in zip(futures, results, strict=True):
            if isinstance(result, (*_AIO_POISON, *_AIO_FORBIDDEN)):
                refused[i] = (_aio_kind(result), repr(result))
            elif isinstance(result, BaseException):
                transient = result
        if transient is not None:
            raise transient
        if refused:
            raise ProduceRefused(refused)


def _aio_kind(exc: BaseException) -> str:
    return "poison" if isinstance(exc, _AIO_POISON) else "forbidden"


class ConfluentSender:
    """Sends with confluent-kafka (tests, bench, tools), flushing until every delivery is confirmed."""

    def __init__(self, bootstrap: str, **config: str | int) -> None:
        self._producer = Producer(
            {**client_config(bootstrap=bootstrap), "linger.ms": 5, "partitioner": PARTITIONER, **config}
        )

    async def __call__(self, messages: Sequence[OutMessage]) -> None:
        await asyncio.to_thread(self.send_sync, messages)

    def send_sync(self, messages: Sequence[OutMessage]) -> None:
        """Raises ProduceRefused when the only failures are permanent (see produce_error_kind), the
        first transient failure (KafkaException) otherwise: a retry then resends the batch."""
        failed: dict[int, KafkaError] = {}

        def reporter(index: int):  # noqa: ANN202
            def report(err: KafkaError | None, _msg: object) -> None:
                if err is not None:
                    failed[index] = err

            return report

        for i, m in enumerate(messages):
            ts = int(m.timestamp * 1000) if m.timestamp else 0
            while True:
                try:
                    self._producer.produce(m.topic, m.value, m.key, timestamp=ts, on_delivery=reporter(i))
                    break
                except BufferError:
                    self._producer.poll(0.1)
                except KafkaException as exc:  # refused before sending (e.g. larger than message.max.bytes)
                    failed[i] = exc.args[0]
                    break
        self._producer.flush()
        if not failed:
            return
        kinds = {i: produce_error_kind(err) for i, err in failed.items()}
        transient = [failed[i] for i, kind in kinds.items() if kind == "transient"]
        if transient:
            raise KafkaException(transient[0])
        raise ProduceRefused({i: (kinds[i], failed[i].str()) for i in sorted(failed)})


def take(consumer: Consumer, max_messages: int, timeout_s: float) -> list[Message]:
    """What has arrived, up to max_messages, waiting at most timeout_s for the first one. (consume(n, timeout)
    alone waits out its whole timeout unless n messages come: at light load, latency that is only the reader's.)"""
    first = consumer.consume(1, timeout_s)
    if not first or max_messages <= 1:
        return first
    return first + consumer.consume(max_messages - 1, 0)


def end_offsets(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    """The current end (high watermark) of every partition of the topics."""
    consumer = probe_consumer(bootstrap)
    try:
        positions: list[TopicPartition] = []
        for name in topics:
            partitions = sorted(consumer.list_topics(name, timeout=10).topics[name].partitions)
            ends = serving_end_offsets(consumer, name, partitions)
            positions.extend(TopicPartition(name, p, end) for p, end in zip(partitions, ends, strict=True))
        return positions
    finally:
        consumer.close()


def commit_group_offsets(bootstrap: str, group: str, positions: Sequence[TopicPartition]) -> None:
    """Make `group` start at these positions (the group must have no live members)."""
    consumer = Consumer({**client_config(bootstrap=bootstrap), "group.id": group, "enable.auto.commit": False})
    try:
        consumer.commit(offsets=list(positions), asynchronous=False)
    finally:
        consumer.close()


def start_group_at_end(bootstrap: str, group: str, topics: Iterable[str]) -> list[TopicPartition]:
    """Position a fresh consumer group at the current end of the topics; returns the positions."""
    positions = end_offsets(bootstrap, topics)
    commit_group_offsets(bootstrap, group, positions)
    return positions
