"""Delivering a batch's messages under the written rule for produce errors (see kafka.produce_error_kind).

- transient: raised as BrokerUnavailable; the retry helper (BatchRunner._retrying) retries the batch;
- poison (too large, invalid record, bad timestamp): each refused message is replaced by a dead
  letter naming the topic it was meant for, with its length and SHA-256; a refused dead letter is
  resent without its raw bytes; if even that is refused, the worker stops (PermanentFailure);
- forbidden (authorization, authentication, fatal producer): PermanentFailure, the worker stops
  loudly: every message would be refused, so neither retrying nor dead-lettering can help.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence

from schemas import DEADLETTER, DeadLetter, DecodeError, decode

from . import metrics as m
from .deadletter import dead_letter, run_id_of, shrunk
from .errors import BrokerUnavailable, PermanentFailure, ProduceRefused
from .kafka import OutMessage, Sender

log = logging.getLogger(__name__)

REFUSED_PREFIX = "produce refused by the broker"


async def deliver(send: Sender, messages: Sequence[OutMessage], processor: str) -> list[DeadLetter]:
    """Send and await every message; returns the dead letters that replaced refused ones."""
    try:
        await send(messages)
        return []
    except ProduceRefused as exc:
        refused = exc
    except PermanentFailure:
        raise
    except Exception as exc:
        raise BrokerUnavailable(f"produce not confirmed: {exc!r}") from exc
    for kind, _ in refused.refused.values():
        m.PRODUCE_REFUSED.labels(processor, kind).inc()
    if refused.forbidden:
        log.error("the broker forbids our writes; stopping", extra={"processor": processor, "error": str(refused)})
        raise refused
    letters = [_replacement(processor, messages[i], error) for i, (_, error) in refused.refused.items()]
    log.warning("messages refused by the broker; dead-lettered", extra={"processor": processor, "count": len(letters)})
    try:
        await send([OutMessage(DEADLETTER.name, DEADLETTER.key_of(d), _bytes(d)) for d in letters])
    except ProduceRefused as again:
        raise PermanentFailure(f"the dead letters of refused messages were refused too: {again}") from again
    except Exception as exc:
        raise BrokerUnavailable(f"produce not confirmed: {exc!r}") from exc
    return letters


def _replacement(processor: str, message: OutMessage, error: str) -> DeadLetter:
    if message.topic == DEADLETTER.name:
        try:
            return shrunk(decode(DeadLetter, message.value))
        except DecodeError:
            pass
    return dead_letter(
        processor,
        topic=message.topic,
        partition=0,
        offset=0,
        value=message.value,
        key=message.key,
        error=f"{REFUSED_PREFIX}: {error}",
        timestamp=message.timestamp,
        run_id=run_id_of(message.value),
        cause=f"refused:{_digest(message.value)}",
    )


def _digest(value: bytes) -> str:
    return hashlib.sha256(value).hexdigest()


def _bytes(letter: DeadLetter) -> bytes:
    return letter.__pydantic_serializer__.to_json(letter)
