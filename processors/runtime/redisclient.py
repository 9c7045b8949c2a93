"""The workers' asyncio Redis clients, with redis-py's C command packer.

redis-py's synchronous client packs commands with hiredis (`HiredisRespSerializer`) when hiredis is
installed; its asyncio client packs them in Python, ~30 us for one state write's EVALSHA against
~6 us with hiredis (the same bytes). A worker sends one such call per entity per batch, so the asyncio
connections here use the synchronous client's serializer.

`read_timeout_s` is redis-py's socket timeout, applied to every reply it reads. The state store
passes None and bounds each round trip as a whole instead (store.py): one timer per pipeline rather
than one per reply of a pipeline of thousands.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.connection import HiredisRespSerializer

CONNECT_TIMEOUT_S = 5.0
_PACKER = HiredisRespSerializer()


class _HiredisPacking:
    def pack_command(self, *args: Any) -> list[bytes]:
        return _PACKER.pack(*args)

    def pack_commands(self, commands: Any) -> list[bytes]:
        return [b"".join(chunk for command in commands for chunk in _PACKER.pack(*command))]


def async_client(url: str, *, read_timeout_s: float | None) -> aioredis.Redis:
    client = aioredis.Redis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT_S, socket_timeout=read_timeout_s)
    pool = client.connection_pool
    # from_url chose the class for the URL's scheme (TCP, TLS, unix socket): keep it, pack with hiredis.
    pool.connection_class = type(
        f"Hiredis{pool.connection_class.__name__}", (_HiredisPacking, pool.connection_class), {}
    )
    return client
