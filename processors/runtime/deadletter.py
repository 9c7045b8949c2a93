"""Dead letters: a message a processor cannot use, kept whole with where it came from and why."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from schemas import DeadLetter, derive_event_id


def dead_letter(
    processor: str,
    *,
    topic: str,
    partition: int,
    offset: int,
    value: bytes | None,
    key: bytes | None,
    error: str,
    timestamp: float | None,
    run_id: str,
) -> DeadLetter:
    """A DeadLetter with a deterministic id, so a redelivered poison message yields the same event.

    occurred_at is the message's broker timestamp (when it was written), not the wall clock.
    """
    at = datetime.fromtimestamp(timestamp, UTC) if timestamp else datetime(1970, 1, 1, tzinfo=UTC)
    return DeadLetter(
        event_id=derive_event_id(processor, "deadletter", topic, str(partition), str(offset)),
        occurred_at=at,
        run_id=run_id,
        producer=processor,
        source_topic=topic,
        partition=partition,
        offset=offset,
        raw_value_b64=base64.b64encode(value or b"").decode(),
        raw_key_b64=base64.b64encode(key).decode() if key is not None else None,
        error=(error or "unknown error")[:4000],
    )
