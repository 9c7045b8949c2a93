"""Where a new consumer group starts reading its internal (re-keyed) partitions.

A group's internal topics carry only what its own relays copied, but they outlive the group
(other runs' copies lie there too), so a partition without a committed offset must not start at
the beginning. Nor at the end: a relay of the group may already have copied events there that no
worker has committed yet (a second worker joining takes over a partition the first has filled).

The rule: when a worker starts, before its relays can write any copy, it records each internal
partition's end offset with SET NX (the group's first relay wins), so every copy of the group lies at or
after the mark. A partition with no committed offset starts at its mark; with no mark yet, at
the end read *before* the mark was looked up (no relay had written, so nothing lies before it).
"""

from __future__ import annotations

from collections.abc import Mapping

import redis


def _key(group: str, topic: str, partition: int) -> str:
    return f"chorus:relay-start:{{{group}}}:{topic}:{partition}"


class RelayStarts:
    """The group's start marks in Redis (a synchronous client: the consumer's own thread asks)."""

    def __init__(self, client: redis.Redis, group: str) -> None:
        self._client = client
        self._group = group

    def claim(self, ends: Mapping[tuple[str, int], int]) -> None:
        """Record these end offsets where the group has no mark yet; call before any copy of this worker."""
        with self._client.pipeline(transaction=False) as pipe:
            for (topic, partition), end in ends.items():
                pipe.set(_key(self._group, topic, partition), end, nx=True)
            pipe.execute()

    def start(self, topic: str, partition: int, end: int) -> int:
        """Where a partition without a committed offset starts; `end` must be read before this call."""
        mark = self._client.get(_key(self._group, topic, partition))
        return int(mark) if mark is not None else end
