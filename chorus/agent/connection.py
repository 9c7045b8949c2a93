"""One Kafka connection for the agents of a process: a producer and a reader, each served by a thread.

The reader follows, for the connection's agent ids only, `immune.quarantine` from the
beginning of their partitions (so a restarted client knows a quarantine decided while it
was away; `start()` returns once it has read up to the end that existed when it started),
and in gated mode the gate's two verdict topics from their end. Every topic keyed by
agent_id puts an agent on the same partition number (murmur2, `schemas.partition_for`),
so a client reads one partition per topic and per distinct agent partition, not the fleet.
Events reach the asyncio loop in partition order; the pure `Follower` keeps the state.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from processors.runtime.kafka import take
from processors.runtime.settings import Settings
from schemas import (
    ADMITTED,
    HELD,
    QUARANTINE,
    DecodeError,
    Event,
    Intention,
    IntentionHeld,
    QuarantineDecision,
    TopicSpec,
    decode,
    encode,
    partition_for,
)

from .config import kafka_config, load_settings, producer_config
from .errors import AgentError, BufferFull, Closed, DeliveryFailed, Undelivered
from .follow import AgentStatus, Follower

log = logging.getLogger("chorus.agent")

Verdict = Intention | IntentionHeld
StatusListener = Callable[[AgentStatus], None]
EventListener = Callable[[str, Event], None]
_MODELS: dict[str, type[Event]] = {
    QUARANTINE.name: QuarantineDecision,
    ADMITTED.name: Intention,
    HELD.name: IntentionHeld,
}


class Connection:
    def __init__(
        self,
        agent_ids: Iterable[str],
        settings: Settings | None = None,
        *,
        gated: bool = True,
        queue_max: int | None = None,
        linger_ms: float | None = None,
    ) -> None:
        self.settings = load_settings(settings)
        self.agent_ids = frozenset(agent_ids)
        if not self.agent_ids:
            raise ValueError("a connection needs at least one agent id")
        self.gated = gated
        self.queue_max = queue_max or self.settings.agent_queue_max
        self._linger_ms = self.settings.agent_linger_ms if linger_ms is None else linger_ms
        self.follower = Follower(self.agent_ids, self.settings.run_id)
        self._keys = {a.encode() for a in self.agent_ids}
        self._verdicts: dict[str, asyncio.Future[Verdict]] = {}
        self._status_listeners: dict[str, list[StatusListener]] = {}
        self._event_listeners: list[EventListener] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._threads: list[threading.Thread] = []
        self._stop_reading = threading.Event()
        self._stop_polling = threading.Event()
        self._caught_up: asyncio.Event | None = None
        self._reader_error: BaseException | None = None
        self.closed = False

    # --- life cycle ------------------------------------------------------------------

    async def start(self) -> Connection:
        if self._loop is not None:
            return self
        self._loop = asyncio.get_running_loop()
        self._caught_up = asyncio.Event()
        self._producer = Producer(producer_config(self.settings, queue_max=self.queue_max, linger_ms=self._linger_ms))
        self._consumer = Consumer(
            kafka_config(self.settings)
            | {
                # Never commits: positions are explicit, so the group is only a name librdkafka requires.
                "group.id": f"chorus-agent-{uuid.uuid4().hex[:12]}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
            }
        )
        targets = await asyncio.to_thread(self._assign)
        self._threads = [
            threading.Thread(target=self._poll_producer, name="chorus-agent-producer", daemon=True),
            threading.Thread(target=self._read, args=(targets,), name="chorus-agent-reader", daemon=True),
        ]
        for t in self._threads:
            t.start()
        try:
            await asyncio.wait_for(self._caught_up.wait(), self.settings.agent_start_timeout_s)
        except TimeoutError:
            await self.close()
            raise AgentError(
                f"could not read {QUARANTINE.name} up to its end within {self.settings.agent_start_timeout_s:.0f}s "
                f"(Kafka at {self.settings.kafka_bootstrap_servers}); the agent would not know whether it is held"
            ) from None
        if self._reader_error is not None:
            await self.close()
            raise AgentError(f"reading Chorus' decisions failed: {self._reader_error}") from self._reader_error
        return self

    async def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (up to timeout_s), then stop both threads; Undelivered if some remained."""
        if self.closed:
            return
        self.closed = True
        remaining = 0
        self._stop_polling.set()
        self._stop_reading.set()
        for t in self._threads:
            await asyncio.to_thread(t.join)
        if self._producer is not None:
            remaining = await asyncio.to_thread(self._producer.flush, timeout_s)
        if self._consumer is not None:
            await asyncio.to_thread(self._consumer.close)
        for fut in self._verdicts.values():
            if not fut.done():
                fut.set_exception(Closed("the connection closed before the gate's verdict arrived"))
        self._verdicts.clear()
        if remaining:
            raise Undelivered(f"{remaining} events were not acknowledged by Kafka within {timeout_s:.0f}s of close()")

    async def __aenter__(self) -> Connection:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # --- sending ---------------------------------------------------------------------

    def capacity(self) -> int:
        """How many more events fit in the send buffer right now."""
        self._check_open()
        assert self._producer is not None
        return max(self.queue_max - len(self._producer), 0)

    def publish(self, spec: TopicSpec, event: Event) -> asyncio.Future[None]:
        """Queue one event (keyed by its topic's key); the future settles when Kafka acknowledges it.

        BufferFull, at once, when the bounded buffer has no room: nothing is queued then.
        """
        self._check_open()
        assert self._producer is not None and self._loop is not None
        loop = self._loop
        fut: asyncio.Future[None] = loop.create_future()

        def delivered(err: Any, _msg: Any) -> None:
            loop.call_soon_threadsafe(_settle, fut, err)

        try:
            self._producer.produce(spec.name, encode(event), spec.key_of(event), on_delivery=delivered)
        except BufferError:
            raise BufferFull(
                f"the send buffer holds {len(self._producer)} unacknowledged events (agent_queue_max "
                f"{self.queue_max}); {spec.name} event {event.event_id} was not queued"
            ) from None
        except KafkaException as exc:
            raise DeliveryFailed(f"{spec.name} event {event.event_id} was refused: {exc}") from exc
        return fut

    # --- the gate's verdicts and the decisions -----------------------------------------

    def expect(self, intention: Intention) -> asyncio.Future[Verdict]:
        """Register an intention before publishing it; the future gets its admission or its hold."""
        self._check_open()
        if not self.gated:
            raise AgentError("this connection does not follow the gate (gated=False)")
        assert self._loop is not None
        fut: asyncio.Future[Verdict] = self._loop.create_future()
        self._verdicts[intention.event_id] = fut
        self.follower.expect(intention)
        return fut

    def forget(self, intention_id: str) -> None:
        self._verdicts.pop(intention_id, None)
        self.follower.forget(intention_id)

    def status(self, agent_id: str) -> AgentStatus:
        return self.follower.status[agent_id]

    def on_status(self, agent_id: str, listener: StatusListener) -> None:
        if agent_id not in self.agent_ids:
            raise ValueError(f"agent {agent_id} is not one of this connection's agent ids")
        self._status_listeners.setdefault(agent_id, []).append(listener)

    def on_event(self, listener: EventListener) -> None:
        """Called on the loop with (topic, event) for every decision and verdict of the followed agents."""
        self._event_listeners.append(listener)

    # --- threads ---------------------------------------------------------------------

    def _assign(self) -> dict[int, int]:
        """Assign the agents' partitions; returns the end offsets of the decision partitions to catch up to."""
        assert self._consumer is not None
        specs = [QUARANTINE, ADMITTED, HELD] if self.gated else [QUARANTINE]
        assignment: list[TopicPartition] = []
        targets: dict[int, int] = {}
        for spec in specs:
            meta = self._consumer.list_topics(spec.name, timeout=10).topics[spec.name]
            if meta.error is not None or not meta.partitions:
                raise AgentError(f"topic {spec.name} is not there ({meta.error}): run `chorus topics create`")
            count = len(meta.partitions)
            for p in sorted({partition_for(a.encode(), count) for a in self.agent_ids}):
                _low, high = self._consumer.get_watermark_offsets(TopicPartition(spec.name, p), timeout=10)
                if spec is QUARANTINE:
                    assignment.append(TopicPartition(spec.name, p, OFFSET_BEGINNING))
                    if high > 0:
                        targets[p] = high
                else:
                    # Verdicts only for intentions published from now on: start at the current end.
                    assignment.append(TopicPartition(spec.name, p, high))
        self._consumer.assign(assignment)
        return targets

    def _poll_producer(self) -> None:
        assert self._producer is not None
        while not self._stop_polling.is_set():
            self._producer.poll(0.1)

    def _read(self, targets: dict[int, int]) -> None:
        assert self._consumer is not None and self._loop is not None
        behind = dict(targets)
        if not behind:
            self._loop.call_soon_threadsafe(self._mark_caught_up)
        try:
            while not self._stop_reading.is_set():
                messages = take(self._consumer, 501, 0.1)
                batch: list[tuple[str, Event]] = []
                for msg in messages:
                    if msg.error():
                        log.warning("reading decisions: %s", msg.error())
                        continue
                    topic = msg.topic()
                    if behind and topic == QUARANTINE.name and msg.offset() + 1 >= behind.get(msg.partition(), 0):
                        behind.pop(msg.partition(), None)
                        if not behind:
                            batch.append(("", _CAUGHT_UP))
                    if msg.key() not in self._keys:
                        continue
                    try:
                        event = decode(_MODELS[topic], msg.value(), topic=topic)
                    except DecodeError as exc:
                        log.warning("skipping an undecodable message: %s", exc)
                        continue
                    batch.append((topic, event))
                if behind and not messages:
                    # Nothing more to read although an offset was not reached (e.g. a gap): positions decide.
                    for tp in self._consumer.position([TopicPartition(QUARANTINE.name, p) for p in list(behind)]):
                        if tp.offset >= behind[tp.partition]:
                            behind.pop(tp.partition)
                    if not behind:
                        batch.append(("", _CAUGHT_UP))
                if batch:
                    self._loop.call_soon_threadsafe(self._deliver, batch)
        except BaseException as exc:  # the loop must hear of it: start() would otherwise wait in vain
            log.exception("the agent connection's reader stopped")
            self._reader_error = exc
            if not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._mark_caught_up)

    # --- on the loop -------------------------------------------------------------------

    def _mark_caught_up(self) -> None:
        assert self._caught_up is not None
        self._caught_up.set()

    def _deliver(self, batch: list[tuple[str, Event]]) -> None:
        for topic, event in batch:
            if event is _CAUGHT_UP:
                self._mark_caught_up()
                continue
            if isinstance(event, QuarantineDecision):
                status = self.follower.decide(event)
                if status is not None:
                    for listener in self._status_listeners.get(status.agent_id, ()):
                        _safely(listener, status)
            elif isinstance(event, IntentionHeld):
                self._settle_verdict(self.follower.held(event), event)
            elif isinstance(event, Intention):
                self._settle_verdict(self.follower.admitted(event), event)
            for listener in self._event_listeners:
                _safely(listener, topic, event)

    def _settle_verdict(self, intention_id: str | None, verdict: Verdict) -> None:
        if intention_id is None:
            return
        fut = self._verdicts.pop(intention_id, None)
        if fut is not None and not fut.done():
            fut.set_result(verdict)

    def _check_open(self) -> None:
        if self.closed or self._loop is None:
            raise Closed("the connection is closed" if self.closed else "the connection is not started: await start()")


_CAUGHT_UP: Any = object()


def _settle(fut: asyncio.Future[None], err: Any) -> None:
    if fut.done():
        return
    if err is None:
        fut.set_result(None)
    else:
        fut.set_exception(DeliveryFailed(f"Kafka did not acknowledge the event: {err}"))


def _safely(listener: Callable[..., Any], *args: Any) -> None:
    try:
        result = listener(*args)
        if asyncio.iscoroutine(result):
            asyncio.ensure_future(result)
    except Exception:
        log.exception("an agent callback raised")
