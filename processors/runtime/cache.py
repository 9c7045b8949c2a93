"""What this worker last wrote for recently written entities, so a hot entity costs no Redis read.

An entry is the whole snapshot the worker's own write left in Redis (version, fences, recent ids,
state; its outbox published and trimmed) with the state already parsed, and the token that write
stored. A batch that finds its entity here steps from the entry and writes expecting that version
*and* token: if anything else wrote the entity since (another worker during a rebalance, a Redis
that lost writes, a deleted key written again), the compare-and-set refuses and the entity is read
and recomputed. The token makes that airtight where the version alone is not (a version can
repeat after a key is lost; the token of another write cannot). An entry leaves the cache while a
step works on it: a step that mutates its input and then fails to be stored leaves nothing behind.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, NamedTuple

from .store import EntityRef, Snapshot


class Known(NamedTuple):
    """What Redis holds for an entity, as this worker wrote it."""

    snapshot: Snapshot  # no outbox: only an entry whose outbox is trimmed (or empty) is kept
    state: Any  # snapshot.state_raw, decoded; None: not parsed (the step kept the stored state)
    token: str  # the token of the write that stored it


class StateCache:
    """A bounded LRU of entity -> Known."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[EntityRef, Known] = OrderedDict()

    def take(self, ref: EntityRef) -> Known | None:
        """The entry, removed from the cache (a step may change its state)."""
        return self._entries.pop(ref, None)

    def put(self, ref: EntityRef, known: Known) -> None:
        if self._capacity <= 0:
            return
        self._entries[ref] = known
        self._entries.move_to_end(ref)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
