"""How an entity's state is stored in Redis: the bytes of its hash field `s`.

A state model that is a pydantic model is stored as its JSON (readable with redis-cli). A plain
dataclass is stored as MessagePack through msgspec: the baseline's state, the one written on every
vitals event, carries a time-of-day profile (up to 48 buckets x 5 numbers per metric once an agent
has run a day). As JSON that state cost ~105 us to write and ~175 us to parse, almost all of it
formatting and parsing floats; MessagePack stores a float as its 8 bytes (and the profile, packed,
as one block of them), and the value read back is the value written, bit for bit, so decisions do
not depend on whether a state was read or kept in memory.
A dataclass state that was stored as JSON (before this codec) is still read: JSON starts with '{',
MessagePack's map never does.
"""

from __future__ import annotations

import dataclasses
from typing import Generic, TypeVar

import msgspec
from pydantic import BaseModel, ValidationError

S = TypeVar("S")


class StateCodec(Generic[S]):
    """Encodes and decodes one processor's state; decode raises ValueError for bytes that do not fit."""

    def __init__(self, model: type[S]) -> None:
        self.model = model
        if isinstance(model, type) and issubclass(model, BaseModel):
            self._packed = False
        elif dataclasses.is_dataclass(model):
            self._packed = True
            self._encode = msgspec.msgpack.Encoder().encode
            self._decode = msgspec.msgpack.Decoder(model).decode
            self._decode_json = msgspec.json.Decoder(model).decode
        else:
            raise TypeError(f"a state model is a pydantic model or a dataclass, not {model!r}")

    def encode(self, state: S) -> bytes:
        if self._packed:
            return self._encode(state)
        return state.__pydantic_serializer__.to_json(state)  # type: ignore[attr-defined]

    def decode(self, raw: bytes) -> S:
        name = self.model.__name__
        try:
            if not self._packed:
                return self.model.model_validate_json(raw)  # type: ignore[attr-defined]
            return self._decode_json(raw) if raw[:1] == b"{" else self._decode(raw)
        except (ValidationError, msgspec.DecodeError) as exc:
            raise ValueError(f"stored state does not fit {name}: {exc}") from exc


def as_json(raw: bytes) -> bytes:
    """A stored state as JSON text, whichever codec wrote it (for digests and inspection)."""
    return raw if raw[:1] == b"{" else msgspec.json.encode(msgspec.msgpack.decode(raw))
