"""Dead letters: a message a processor cannot use, kept (up to a bound) with where it came from and why.

`dead_letter` is the one builder, and it never raises. A builder that raised turned one bad
message into a crash loop: the message was never committed, so every restart met it again
(`{"run_id":"a\\tb"}` did that: the guessed run id failed the DeadLetter's own validation).
Whatever the bytes, key, run id, offsets or error text, it returns a valid DeadLetter that
serializes and stays far below the broker's message size limit: a value longer than
`RAW_KEPT_BYTES` is cut, and its full length and SHA-256 are kept instead.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import math
import re
from datetime import UTC, datetime

from schemas import DEFAULT_RUN_ID, DeadLetter, derive_event_id

log = logging.getLogger(__name__)

# base64 makes 64 KiB ~87 kB: a dead letter stays an order of magnitude below Kafka's default
# 1 MB message limit, whatever it carries (a 760 kB value used to make a 1 MB+ dead letter).
RAW_KEPT_BYTES = 64 * 1024
KEY_KEPT_BYTES = 1024
ERROR_KEPT_CHARS = 4000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ID = re.compile(r"\S{1,256}")  # the schemas' Id; Python's \s covers at least pydantic's whitespace


def safe_id(value: object) -> str | None:
    """`value` if it is a valid event id (non-empty, no whitespace, <= 256 chars, UTF-8 encodable), else None."""
    if not isinstance(value, str) or not _ID.fullmatch(value):
        return None
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate from JSON ("\ud800") passes the pattern but cannot be sent
        return None
    return value


def run_id_of(raw: bytes | None) -> str | None:
    """The run a message claims to belong to, when it is a JSON object with a valid run_id; else None."""
    try:
        value = json.loads(raw or b"")
        return safe_id(value.get("run_id")) if isinstance(value, dict) else None
    except Exception:  # not JSON, not UTF-8, nested past the recursion limit...: no run to guess
        return None


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
    run_id: str | None,
    cause: str | None = None,
) -> DeadLetter:
    """A DeadLetter with a deterministic id, so a redelivered poison message yields the same event.

    occurred_at is the message's broker timestamp (when it was written), not the wall clock.
    An invalid `run_id` becomes the default run. `cause` replaces partition/offset in the id
    (a refused output has no offset of its own). Never raises.
    """
    try:
        return _build(processor, topic, partition, offset, value, key, error, timestamp, run_id, cause)
    except Exception as exc:  # a bug here must cost one letter's detail, never the worker
        log.exception("dead letter builder failed; sending a bare one")
        return _bare(processor, topic, partition, offset, f"dead letter builder failed: {type(exc).__name__}")


def shrunk(letter: DeadLetter) -> DeadLetter:
    """The letter without its raw bytes (length and digest stay): for a broker that refused it as too large."""
    return letter.model_copy(update={"raw_value_b64": "", "raw_key_b64": None, "truncated": True})


def _build(
    processor: object,
    topic: object,
    partition: object,
    offset: object,
    value: object,
    key: object,
    error: object,
    timestamp: object,
    run_id: object,
    cause: object,
) -> DeadLetter:
    producer, source = safe_id(processor) or "unknown", safe_id(topic) or "unknown"
    part, off = _count(partition), _count(offset)
    raw = _bytes(value) or b""
    raw_key = _bytes(key)
    where = (str(part), str(off)) if cause is None else ("cause", _text(cause, 512))
    return DeadLetter(
        event_id=derive_event_id(producer, "deadletter", source, *where),
        occurred_at=_time(timestamp),
        run_id=safe_id(run_id) or DEFAULT_RUN_ID,
        producer=producer,
        source_topic=source,
        partition=part,
        offset=off,
        raw_value_b64=base64.b64encode(raw[:RAW_KEPT_BYTES]).decode(),
        raw_key_b64=base64.b64encode(raw_key[:KEY_KEPT_BYTES]).decode() if raw_key is not None else None,
        error=_text(error, ERROR_KEPT_CHARS) or "unknown error",
        raw_value_length=len(raw),
        raw_value_sha256=hashlib.sha256(raw).hexdigest(),
        truncated=len(raw) > RAW_KEPT_BYTES or (raw_key is not None and len(raw_key) > KEY_KEPT_BYTES),
    )


def _bare(processor: object, topic: object, partition: object, offset: object, error: str) -> DeadLetter:
    producer, source = safe_id(processor) or "unknown", safe_id(topic) or "unknown"
    part, off = _count(partition), _count(offset)
    return DeadLetter(
        event_id=derive_event_id(producer, "deadletter", source, str(part), str(off)),
        occurred_at=EPOCH,
        producer=producer,
        source_topic=source,
        partition=part,
        offset=off,
        raw_value_b64="",
        error=error,
        truncated=True,
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _bytes(value: object) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    return _text(value, RAW_KEPT_BYTES + 1).encode()


def _text(value: object, limit: int) -> str:
    """Printable as JSON: lone surrogates escaped, cut to `limit` characters."""
    text = value if isinstance(value, str) else repr(value)
    text = text[:limit]
    return text.encode("utf-8", "backslashreplace").decode("utf-8")[:limit]


def _time(timestamp: object) -> datetime:
    if not isinstance(timestamp, (int, float)) or isinstance(timestamp, bool) or not math.isfinite(timestamp):
        return EPOCH
    try:
        return datetime.fromtimestamp(timestamp, UTC) if timestamp > 0 else EPOCH
    except (OverflowError, OSError, ValueError):
        return EPOCH
