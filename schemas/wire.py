"""A fast first try at decoding the two busiest contracts (Vitals, Intention) with msgspec.

The pydantic models stay the contract: these structs mirror their fields with constraints that
are equal or *stricter* (ids: printable, no spaces at all; floats: finite), so whatever the fast
path accepts pydantic accepts too, with the same values (tests/unit/test_wire_decoding.py fuzzes
that with Hypothesis). Whatever it refuses goes to pydantic, which decides and words the error of
the dead letter. A well-formed message then costs a msgspec decode and one model instance built
without a second validation, instead of pydantic's validation (a third of the decode time).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Literal

import msgspec

from .envelope import DEFAULT_RUN_ID, Event
from .events import Intention, Vitals

_Id = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
# Timestamps are read as text and parsed by datetime: msgspec rounds a fraction past microseconds where
# pydantic truncates, so only the plain RFC 3339 shape, to the microsecond, takes the fast path.
_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})"
).fullmatch
_NonNegative = Annotated[float, msgspec.Meta(ge=0.0)]
_Probability = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
_Positive = Annotated[float, msgspec.Meta(gt=0.0)]


class _Stricter(ValueError):
    """The fast path declines (pydantic may still accept): an id with whitespace, a float that is not finite."""


# Field order = the pydantic model's, so the instance's __dict__ (and its JSON) is the same.
class _VitalsWire(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    event_id: _Id
    event_type: Literal["vitals"] = "vitals"
    schema_version: Literal[1] = 1
    occurred_at: str
    run_id: _Id = DEFAULT_RUN_ID
    causation_ids: tuple[_Id, ...] = ()
    producer: _Id
    agent_id: _Id
    latency_ms: _NonNegative
    error_rate: _Probability
    queue_depth: _NonNegative
    cpu: _Probability
    requests_per_s: _NonNegative
    upstream_degraded: _Probability | None = None


class _IntentionWire(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    event_id: _Id
    event_type: Literal["intention"] = "intention"
    schema_version: Literal[1] = 1
    occurred_at: str
    run_id: _Id = DEFAULT_RUN_ID
    causation_ids: tuple[_Id, ...] = ()
    producer: _Id
    agent_id: _Id
    action: Literal["acquire", "release"]
    resource: _Id
    amount: _Positive
    priority: Annotated[int, msgspec.Meta(ge=1, le=10)] = 5
    hold_s: _Positive | None = None


def _id_ok(value: str) -> bool:
    # Stricter than the contract's ^\S+$: no space and nothing non-printable (every Unicode
    # whitespace character is one or the other), in C.
    return value.isprintable() and " " not in value


def _finite(total: float) -> bool:
    # Called with a sum of validated non-negative floats: finite only if every one is (an overflow of
    # the sum declines a legal message, which pydantic then takes: stricter, never looser).
    return math.isfinite(total)


_set = object.__setattr__


class _AllFields(frozenset):
    """Every field, one object shared by all fast-decoded instances of a model (a set per event would be one
    more object for the garbage collector to track: it cost more than the decoding saved). A copy is a
    real set, since pydantic's model_copy(update=...) adds to the copy's."""

    def __copy__(self) -> set[str]:
        return set(self)

    def __deepcopy__(self, _memo: dict) -> set[str]:
        return set(self)


def _instance(model: type[Event], fields: dict) -> Event:
    """The pydantic instance holding already-validated values (what model_construct does, minus its
    per-field Python loop). Every field counts as set: no code here serialises with exclude_unset."""
    text = fields["occurred_at"]
    if _TIME(text) is None:
        raise _Stricter("a timestamp the fast path does not parse")
    try:
        at = datetime.fromisoformat(text)
        fields["occurred_at"] = at if at.tzinfo is UTC else at.astimezone(UTC)  # the contract's UtcDatetime
    except (ValueError, OverflowError) as exc:  # 2026-02-30, +24:00, year 1 east of UTC: pydantic decides
        raise _Stricter(str(exc)) from exc
    event = model.__new__(model)
    _set(event, "__dict__", fields)
    _set(event, "__pydantic_fields_set__", _ALL_SET[model])
    _set(event, "__pydantic_extra__", None)
    _set(event, "__pydantic_private__", None)
    return event


def _vitals(raw: bytes) -> Vitals:
    w = _VITALS.decode(raw)
    ids_ok = _id_ok(w.event_id) and _id_ok(w.run_id) and _id_ok(w.producer) and _id_ok(w.agent_id)
    if not (ids_ok and (not w.causation_ids or all(map(_id_ok, w.causation_ids)))):
        raise _Stricter("an id the fast path does not judge")
    if not _finite(w.latency_ms + w.queue_depth + w.requests_per_s):
        raise _Stricter("a float that is not finite")
    return _instance(Vitals, msgspec.structs.asdict(w))  # type: ignore[return-value]


def _intention(raw: bytes) -> Intention:
    w = _INTENTION.decode(raw)
    ids_ok = _id_ok(w.event_id) and _id_ok(w.run_id) and _id_ok(w.producer) and _id_ok(w.agent_id)
    if not (ids_ok and _id_ok(w.resource) and (not w.causation_ids or all(map(_id_ok, w.causation_ids)))):
        raise _Stricter("an id the fast path does not judge")
    if not _finite(w.amount + (w.hold_s or 0.0)):
        raise _Stricter("a float that is not finite")
    return _instance(Intention, msgspec.structs.asdict(w))  # type: ignore[return-value]


_VITALS = msgspec.json.Decoder(_VitalsWire)
_INTENTION = msgspec.json.Decoder(_IntentionWire)
_ALL_SET = {model: _AllFields(model.model_fields) for model in (Vitals, Intention)}

FAST: dict[type[Event], Callable[[bytes], Event]] = {Vitals: _vitals, Intention: _intention}
"""model -> its fast decoder; it raises DECLINED when pydantic must decide."""

DECLINED = (msgspec.ValidationError, msgspec.DecodeError, _Stricter)
