"""The workers' Redis client on a real Redis: hiredis packing changes no command, and a round trip
the server does not answer fails within the store's deadline instead of stalling the worker."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from processors.runtime.errors import StateUnavailable
from processors.runtime.redisclient import async_client
from processors.runtime.store import EntityRef, StateStore, Write

pytestmark = pytest.mark.integration


def test_commands_packed_with_hiredis_store_and_return_what_was_sent(services, run_id) -> None:
    async def scenario() -> None:
        client = async_client(services.redis_url, read_timeout_s=None)
        key = f"{run_id}:packing"
        assert client.connection_pool.connection_class.__name__ == "HiredisConnection"
        try:
            async with client.pipeline(transaction=False) as pipe:
                pipe.hset(key, mapping={"text": "é ü 漢字", "bytes": b"\x00\xff\r\n", "int": 12345678901234567890})
                pipe.hset(key, "float", 0.1)
                pipe.hgetall(key)
                _, _, row = await pipe.execute()
            assert row == {
                b"text": "é ü 漢字".encode(),
                b"bytes": b"\x00\xff\r\n",
                b"int": b"12345678901234567890",
                b"float": b"0.1",
            }
            # A command name of two words ("SCRIPT LOAD") is split as redis-py splits it.
            sha = await client.script_load("return ARGV[1]")
            assert await client.evalsha(sha, 0, "back") == b"back"
        finally:
            await client.delete(key)
            await client.aclose()

    asyncio.run(scenario())


def test_a_store_round_trip_redis_does_not_answer_fails_within_its_deadline_and_the_next_succeeds(
    services, run_id
) -> None:
    async def scenario() -> None:
        client = async_client(services.redis_url, read_timeout_s=None)  # no per-reply timer: the store's deadline
        admin = aioredis.Redis.from_url(services.redis_url)
        store = StateStore(client, "trust", 10, timeout_s=0.3)
        ref = EntityRef(run_id, "a1")
        try:
            assert await store.write([Write(ref, 0, {"f:agent.intentions:0": 1}, '{"n": 1}')]) == [1]
            await admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")
            started = time.monotonic()
            with pytest.raises(StateUnavailable, match="redis read failed"):
                await store.read([ref])
            assert time.monotonic() - started < 1.2  # the deadline, not the pause, ended it
            await asyncio.sleep(1.5)
            snap = await store.get(run_id, "a1")
            assert (snap.version, snap.state_raw) == (1, b'{"n": 1}')
        finally:
            await admin.execute_command("CLIENT", "UNPAUSE")
            await admin.aclose()
            await client.aclose()

    asyncio.run(scenario())
