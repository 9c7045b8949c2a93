"""How far a consumer group's state in Redis reaches, per partition: the check that state was not lost.

After a batch's state writes, the runtime records per partition the highest offset whose
effects are in Redis (`chorus:offsets:{<group>}`, field `<topic>:<partition>`, only ever
raised). It is written after the state, so Redis's append-only file holds it only if it holds
the state before it. The group's committed offset in Kafka is written after both. On
assignment a worker compares the two: a committed offset beyond the mark means Redis lost
writes that Kafka already counted as done (a Redis restart that lost the last second of its
AOF, a failover to a stale replica). The worker says so loudly and reads those partitions
again from the mark: the offset fences skip what Redis still has, and what it lost is
applied again (its outputs are re-emitted with the same ids, which consumers de-duplicate).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis

from .scripts import PipelinedScript

_RAISE = PipelinedScript("""
for i = 1, #ARGV, 2 do
  local current = tonumber(redis.call('HGET', KEYS[1], ARGV[i]) or '-1')
  if tonumber(ARGV[i + 1]) > current then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return 1
""")


def marks_key(group: str) -> str:
    return f"chorus:offsets:{{{group}}}"


def behind(
    committed: Mapping[tuple[str, int], int], marks: Mapping[tuple[str, int], int]
) -> dict[tuple[str, int], int]:
    """Partitions whose committed offset is past what Redis holds, with the offset to read again from.

    Pure. A partition without a mark is not judged (a group older than the marks, or one that
    never finished a batch): only a mark that exists and is behind proves a loss."""
    return {
        tp: marks[tp] + 1 for tp, offset in committed.items() if tp in marks and offset >= 0 and offset > marks[tp] + 1
    }


class ProgressMarks:
    def __init__(self, client: aioredis.Redis, group: str) -> None:
        self._client = client
        self._key = marks_key(group)

    def advance(self, highest: Mapping[tuple[str, int], int], pipe: aioredis.client.Pipeline) -> None:
        """Queue the raise of the marks on `pipe` (StateStore.trim runs it after the batch's trims)."""
        if not highest:
            return
        args: list[str | int] = []
        for (topic, partition), offset in highest.items():
            args += [f"{topic}:{partition}", offset]
        _RAISE.queue(pipe, [self._key], args)

    async def read(self, partitions: Sequence[tuple[str, int]]) -> dict[tuple[str, int], int]:
        fields = [f"{t}:{p}" for t, p in partitions]
        if not fields:
            return {}
        values = await self._client.hmget(self._key, fields)
        return {tp: int(v) for tp, v in zip(partitions, values, strict=True) if v is not None}
