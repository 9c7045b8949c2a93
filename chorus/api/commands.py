"""The one way the API writes `immune.commands`: every write endpoint calls `publish_command`.

The command names the token's subject in its audit field (`operator`). Signing
(Ed25519, the trust-boundary issue) belongs here too, once it exists: one function
builds, signs and publishes, so no endpoint can write an unsigned command.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from confluent_kafka import KafkaException, Producer

from schemas import COMMANDS, PARTITIONER, OperatorCommand, encode

Command = Literal["quarantine", "release", "approve", "reject", "set_trust"]
DELIVERY_TIMEOUT_S = 10.0
PRODUCER = "chorus-api"


class CommandPublisher:
    """Publishes operator commands and returns only once the broker has them."""

    def __init__(self, bootstrap: str) -> None:
        self._producer = Producer(
            {"bootstrap.servers": bootstrap, "partitioner": PARTITIONER, "linger.ms": 0, "enable.idempotence": True}
        )

    def publish_command(
        self,
        *,
        run_id: str,
        agent_id: str,
        command: Command,
        operator: str,
        note: str = "",
        trust: float | None = None,
    ) -> OperatorCommand:
        """Build the command (a fresh id: each operator action is a new input event, not a derived one),
        publish it keyed by agent, and wait for the broker's acknowledgement."""
        cmd = OperatorCommand(
            event_id=str(uuid.uuid4()),
            occurred_at=datetime.now(UTC),
            run_id=run_id,
            producer=PRODUCER,
            agent_id=agent_id,
            command=command,
            trust=trust,
            operator=operator,
            note=note,
        )
        errors: list[str] = []

        def report(err: object, _msg: object) -> None:
            if err is not None:
                errors.append(str(err))

        self._producer.produce(COMMANDS.name, encode(cmd), COMMANDS.key_of(cmd), on_delivery=report)
        if self._producer.flush(DELIVERY_TIMEOUT_S) > 0:
            raise KafkaException(f"command {cmd.event_id} not acknowledged within {DELIVERY_TIMEOUT_S:g} s")
        if errors:
            raise KafkaException(errors[0])
        return cmd
