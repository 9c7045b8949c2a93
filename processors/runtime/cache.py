"""The parsed states of recently written entities, so a hot entity's JSON is not re-validated every batch.

An entry is reused only when Redis still holds exactly the bytes it was written as (another
worker's write, a lost compare-and-set or a deleted key all change them), and it is taken out
of the cache while a step works on it: a step that mutates its input and then fails to be
stored can never leave a changed object behind.
"""

from __future__ import annotations

from collections import OrderedDict

from pydantic import BaseModel

from .store import EntityRef


class StateCache:
    """A bounded LRU of entity -> (stored JSON bytes, parsed state)."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[EntityRef, tuple[bytes, BaseModel]] = OrderedDict()

    def take(self, ref: EntityRef, stored: bytes | None) -> BaseModel | None:
        """The cached state if it is exactly what Redis holds (removed from the cache either way)."""
        entry = self._entries.pop(ref, None)
        if entry is None or stored is None or entry[0] != stored:
            return None
        return entry[1]

    def put(self, ref: EntityRef, stored: bytes, state: BaseModel) -> None:
        if self._capacity <= 0:
            return
        self._entries[ref] = (stored, state)
        self._entries.move_to_end(ref)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
