"""The envelope every event shares, and the field types the contracts reuse."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

# Namespace for deterministic event ids (uuid5). Never change it: replayed decisions
# would stop matching recorded ones.
EVENT_ID_NAMESPACE = uuid.UUID("7f1c9f4e-2b7a-5c4e-9a51-c40c0de5c0de")

DEFAULT_RUN_ID = "live"


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError as exc:  # year 1 east of UTC, year 9999 west of it: a validation error, not a crash
        raise ValueError(f"{value.isoformat()} is out of range in UTC") from exc


Id = Annotated[str, StringConstraints(min_length=1, max_length=256, pattern=r"^\S+$")]
"""A non-empty identifier without whitespace (agent ids, resource names, event ids)."""

UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timezone-aware timestamp, normalised to UTC. Naive timestamps are rejected."""

Score = Annotated[float, Field(ge=0.0, le=100.0)]
"""A trust score."""

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
"""A risk, confidence, share or rate in [0, 1]."""

Priority = Annotated[int, Field(ge=1, le=10)]
"""Claim priority: 1 lowest, 10 highest."""


def derive_event_id(producer: str, *parts: str) -> str:
    """A deterministic event id from the producer and what caused the event.

    Derived events use it so that replaying a recording reproduces the same ids and
    a redelivered cause produces a duplicate that subscribers can drop by id.
    """
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, "\x1f".join((producer, *parts))))


class Event(BaseModel):
    """The common envelope. Subclasses pin `event_type` with a Literal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: Id
    event_type: str
    # A model that changes incompatibly bumps this Literal; readers reject versions they do not know.
    schema_version: Literal[1] = 1
    occurred_at: UtcDatetime = Field(description="Event time (UTC): when it happened, not when it was processed.")
    run_id: Id = Field(default=DEFAULT_RUN_ID, description="The live system, simulation or replay this event belongs to.")
    causation_ids: tuple[Id, ...] = Field(default=(), description="Ids of the events that caused this one.")
    producer: Id = Field(description="Who wrote the event: a processor, the simulator, an agent, an operator.")
