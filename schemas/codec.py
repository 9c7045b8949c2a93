"""JSON on the wire: events to bytes and back, with failures that keep the raw bytes."""

from __future__ import annotations

from typing import TypeVar

from pydantic import ValidationError

from .envelope import Event
from .errors import DecodeError
from .wire import DECLINED, FAST

E = TypeVar("E", bound=Event)


def encode(event: Event) -> bytes:
    """Compact UTF-8 JSON, readable by any subscriber (kcat, jq, another language)."""
    return event.__pydantic_serializer__.to_json(event)


def decode(model: type[E], raw: bytes | None, *, topic: str | None = None) -> E:
    """Parse and validate one message value; DecodeError keeps `raw` for the dead-letter topic."""
    if raw is None:
        raise DecodeError(raw, "null message value", topic=topic)
    fast = FAST.get(model)
    if fast is not None:
        try:
            return fast(raw)  # type: ignore[return-value]
        except DECLINED:
            pass  # pydantic decides, and says why
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise DecodeError(raw, _summarise(exc), topic=topic) from exc


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "<message>"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
