"""Re-keyed copies of an input topic: how a processor gives every entity one writer.

An event that concerns an entity other than its own key (a claim concerns a resource, a
conflict each of its claimants) is copied, byte for byte, onto one of the processor's internal
topics keyed by that entity. Every topic the processor's state reads is then keyed by the
entity, so range assignment hands all of one entity's events to one worker. The copy carries
the original bytes: the event is the agent's or the upstream processor's, not ours.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence

from schemas import DEADLETTER, DecodeError, Event, TopicSpec, decode, encode

from .deadletter import dead_letter, run_id_of
from .delivery import deliver
from .errors import PermanentFailure
from .ingress import EventTimeGuard
from .kafka import OutMessage, Sender
from .runner import ALL_RUNS, Record

log = logging.getLogger(__name__)


def rekey(
    source: TopicSpec,
    target: TopicSpec,
    keys_of: Callable[[Event], Iterable[str]],
    *,
    processor: str,
    run_id: str,
    stopping: Callable[[], bool],
    guard: EventTimeGuard | None = None,
):  # -> Relay
    """A relay: `source` records of the run -> one copy per key on `target`; poison -> dead letter.

    With `guard` (where the relay is the first to decode an agent's event) the ingress rule on
    event time is applied against the original record's broker timestamp: the copy's own
    timestamp is the relay's, which says nothing about the agent."""

    async def relay(batch: Sequence[Record], send: Sender) -> None:
        messages: list[OutMessage] = []
        for record in batch:
            messages += _copies(record, source, target, keys_of, processor, run_id, guard)
        await send_retrying(send, messages, stopping, processor)

    return relay


def _copies(
    record: Record,
    source: TopicSpec,
    target: TopicSpec,
    keys_of: Callable[[Event], Iterable[str]],
    processor: str,
    run_id: str,
    guard: EventTimeGuard | None,
) -> list[OutMessage]:
    try:
        event = decode(source.model, record.value, topic=record.topic)
    except DecodeError as exc:
        owner = run_id_of(record.value)
        if owner is not None and run_id not in (ALL_RUNS, owner):
            return []  # another run's poison: its own worker dead-letters it
        return [_dead(processor, record, exc.reason, owner or (run_id if run_id != ALL_RUNS else "live"))]
    if run_id not in (ALL_RUNS, event.run_id):
        return []
    if guard is not None and (late := guard.check(event, record.timestamp)) is not None:
        return [_dead(processor, record, late, event.run_id)]
    assert record.value is not None
    return [OutMessage(target.name, key.encode(), record.value) for key in dict.fromkeys(keys_of(event))]


def _dead(processor: str, record: Record, error: str, run_id: str) -> OutMessage:
    letter = dead_letter(
        processor,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        value=record.value,
        key=record.key,
        error=error,
        timestamp=record.timestamp,
        run_id=run_id,
    )
    return OutMessage(DEADLETTER.name, DEADLETTER.key_of(letter), encode(letter))


async def send_retrying(
    send: Sender, messages: list[OutMessage], stopping: Callable[[], bool], processor: str
) -> None:
    """Deliver under the runtime's rule for refused messages, retrying what is transient; a stopping
    worker gives up (its batch stays uncommitted)."""
    delay = 0.05
    while messages:
        try:
            await deliver(send, messages, processor)
            return
        except (asyncio.CancelledError, PermanentFailure):
            raise
        except Exception as exc:
            log.warning("relay send failed; retrying", extra={"error": repr(exc), "retry_in_s": delay})
            if stopping():
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)
