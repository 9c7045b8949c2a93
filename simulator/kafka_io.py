"""The simulator's Kafka shell: a batched producer for the fleet's events and a consumer
for what the immune system tells the fleet (quarantine decisions, admitted intentions,
healing actions)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from schemas import (
    ADMITTED,
    HEALING,
    INTENTIONS,
    PARTITIONER,
    QUARANTINE,
    TRUTH,
    VITALS,
    DecodeError,
    HealingAction,
    Intention,
    QuarantineDecision,
    decode,
)

from .engine import TickBatch
from .errors import BrokerUnreachable
from .wire import json_str

# librdkafka's own log lines go through logging (silent unless the application configures it);
# the errors that matter reach the user through error_cb and BrokerUnreachable.
_log = logging.getLogger("simulator.kafka")
_log.addHandler(logging.NullHandler())

CONNECT_TIMEOUT_S = 10.0
FLUSH_TIMEOUT_S = 30.0
PRODUCER_CONFIG: dict[str, Any] = {
    "linger.ms": 50,
    "batch.size": 1_000_000,
    "batch.num.messages": 20_000,
    "compression.type": "lz4",
    "queue.buffering.max.messages": 2_000_000,
    "queue.buffering.max.kbytes": 1_048_576,
    "enable.idempotence": True,  # retries never reorder an agent's events
    "partitioner": PARTITIONER,  # co-partitioned with the processors' (aiokafka) topics
    "message.timeout.ms": 60_000,
    # Delivery reports only for failures: a Python callback per delivered message would cost more than producing it.
    "delivery.report.only.error": True,
}


class FleetLink:
    """Producer and feedback consumer of one run. Use `check()` first: it fails fast when the broker is away."""

    def __init__(
        self,
        bootstrap: str,
        run_id: str,
        *,
        gate: bool,
        topic_prefix: str = "",
        client: Mapping[str, Any] | None = None,
    ) -> None:
        """`topic_prefix` puts every topic under another name (the benchmark's throwaway topics).
        `client`: librdkafka connection settings (security protocol, SASL, TLS), as the settings
        model's `client_config` builds them; bootstrap is taken from `bootstrap`."""
        self.bootstrap = bootstrap
        self.client = dict(client or {})
        self.prefix = topic_prefix
        self.run_id = run_id
        self.gate = gate
        self.delivery_errors: Counter[str] = Counter()
        self.skipped_inputs = 0
        self.produced = {INTENTIONS.name: 0, VITALS.name: 0, TRUTH.name: 0}  # by registry name
        self._run_marker = f'"run_id":{json_str(run_id)}'.encode()
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self.undelivered = 0
        self._healing: list[tuple[str, str]] = []

    def check(self, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        """Connect, verify the topics exist, and start consuming feedback from the current end of each topic."""
        errors: list[str] = []
        common = {
            **self.client,
            "bootstrap.servers": self.bootstrap,
            "error_cb": lambda err: errors.append(err.str()),
            "logger": _log,
        }
        self._producer = Producer({**common, **PRODUCER_CONFIG, "on_delivery": self._on_delivery})
        try:
            metadata = self._producer.list_topics(timeout=timeout_s)
        except KafkaException as exc:
            detail = errors[-1] if errors else exc.args[0].str()
            raise BrokerUnreachable(
                f"Kafka at {self.bootstrap} did not answer within {timeout_s:.0f}s ({detail}); "
                "is it running? Set KAFKA_BOOTSTRAP_SERVERS, or start one with `chorus stack up`."
            ) from exc
        needed = [INTENTIONS, VITALS, TRUTH, QUARANTINE] + ([ADMITTED] if self.gate else [])
        missing = [self.prefix + spec.name for spec in needed if self.prefix + spec.name not in metadata.topics]
        if missing:
            raise BrokerUnreachable(f"topic(s) missing on {self.bootstrap}: {', '.join(missing)}; run `chorus topics create`")
        self._consumer = Consumer(
            {
                **common,
                "group.id": f"chorus-simulator-{self.run_id}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        # Explicit end offsets taken now: OFFSET_END would be resolved later and could skip early decisions.
        assignment = []
        # Healing actions are optional feedback: a broker without the topic runs the fleet without healing.
        healing = [HEALING] if self.gate and self.prefix + HEALING.name in metadata.topics else []
        for spec in [QUARANTINE] + ([ADMITTED] if self.gate else []) + healing:
            name = self.prefix + spec.name
            for p in metadata.topics[name].partitions:
                _, high = self._consumer.get_watermark_offsets(TopicPartition(name, p), timeout=timeout_s)
                assignment.append(TopicPartition(name, p, high))
        self._consumer.assign(assignment)

    def send(self, batch: TickBatch) -> None:
        producer = self._require_producer()
        for spec, records in ((TRUTH, batch.truth), (INTENTIONS, batch.intentions), (VITALS, batch.vitals)):
            name = self.prefix + spec.name
            for key, value in records:
                while True:
                    try:
                        producer.produce(name, value, key)
                        break
                    except BufferError:
                        # The local queue is full: let librdkafka drain it. Bounded: undeliverable
                        # messages time out after message.timeout.ms and free their space.
                        producer.poll(0.1)
            self.produced[spec.name] += len(records)
        producer.poll(0)

    def feedback(self, wait_s: float = 0.0) -> tuple[list[tuple[str, bool]], list[Intention]]:
        """Quarantine decisions and admitted intentions for this run that arrived since the last call."""
        producer = self._require_producer()
        producer.poll(0)
        quarantine: list[tuple[str, bool]] = []
        admitted: list[Intention] = []
        if self._consumer is None:
            return quarantine, admitted
        for message in self._consumer.consume(num_messages=50_000, timeout=wait_s):
            if message.error() is not None:
                if message.error().code() != KafkaError._PARTITION_EOF:
                    self.skipped_inputs += 1
                continue
            raw = message.value()
            if raw is None or self._run_marker not in raw:
                continue  # another run's traffic
            try:
                if message.topic() == self.prefix + QUARANTINE.name:
                    decision = decode(QuarantineDecision, raw, topic=QUARANTINE.name)
                    if decision.run_id == self.run_id and decision.action != "pending_approval":
                        quarantine.append((decision.agent_id, decision.action == "quarantine"))
                elif message.topic() == self.prefix + HEALING.name:
                    action = decode(HealingAction, raw, topic=HEALING.name)
                    if action.run_id == self.run_id and action.status == "issued":
                        self._healing.append((action.agent_id, action.action))
                else:
                    intention = decode(Intention, raw, topic=ADMITTED.name)
                    if intention.run_id == self.run_id:
                        admitted.append(intention)
            except DecodeError:
                self.skipped_inputs += 1
        return quarantine, admitted

    def healing(self) -> list[tuple[str, str]]:
        """(agent id, action) healing actions received by `feedback` since the last call."""
        taken, self._healing = self._healing, []
        return taken

    def wait(self, seconds: float) -> None:
        """Serve delivery reports while pacing."""
        self._require_producer().poll(seconds)

    def close(self, timeout_s: float = FLUSH_TIMEOUT_S) -> None:
        """Flush everything produced; what is still undelivered after the timeout is counted."""
        if self._producer is not None:
            self.undelivered = self._producer.flush(timeout_s)
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None

    def _require_producer(self) -> Producer:
        if self._producer is None:
            raise RuntimeError("call check() before using the link")
        return self._producer

    def _on_delivery(self, err: KafkaError | None, _message: object) -> None:
        if err is not None:
            self.delivery_errors[err.str()] += 1
