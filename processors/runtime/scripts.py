"""Lua scripts queued on Redis pipelines by their SHA alone.

redis-py's `Script`, called on a pipeline, makes that pipeline ask `SCRIPT EXISTS` before it
runs: one more round trip on every state write and every outbox trim (measured: ~15% of the
quarantine worker's GIL time at 1,000 events/s, and a Redis round trip on a decision's path).
Here a pipeline sends `EVALSHA` only. Each store loads every script once before its first
pipeline; a Redis that lost them since (a restart, `SCRIPT FLUSH`) answers NOSCRIPT, and
`execute` loads them again and raises StateUnavailable, so the caller's batch is retried as
after any Redis failure (the Lua writes are compare-and-set and fenced, so a partly run
pipeline is harmless to run again).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from .errors import StateUnavailable

_ALL: list[PipelinedScript] = []


class PipelinedScript:
    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()
        _ALL.append(self)

    def queue(self, pipe: aioredis.client.Pipeline, keys: Sequence[Any], args: Sequence[Any]) -> None:
        pipe.evalsha(self.sha, len(keys), *keys, *args)


async def load_all(client: aioredis.Redis) -> None:
    """Load every pipelined script into Redis (SCRIPT LOAD is idempotent)."""
    for script in _ALL:
        await client.script_load(script.text)


async def execute(pipe: aioredis.client.Pipeline, client: aioredis.Redis) -> list[Any]:
    """Run the pipeline; on NOSCRIPT, load the scripts again and raise StateUnavailable (retry the batch)."""
    try:
        return await pipe.execute()
    except NoScriptError as exc:
        await load_all(client)
        raise StateUnavailable(f"redis had lost the Lua scripts (loaded again): {exc}") from exc
