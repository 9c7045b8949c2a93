"""The state cache serves a parsed state only while Redis holds exactly the bytes it was stored as."""

from __future__ import annotations

from pydantic import BaseModel

from processors.runtime.cache import StateCache
from processors.runtime.store import EntityRef


class S(BaseModel):
    n: int


A, B, C = EntityRef("r", "a"), EntityRef("r", "b"), EntityRef("r", "c")


def test_a_state_is_served_when_the_stored_bytes_are_unchanged() -> None:
    cache = StateCache(10)
    cache.put(A, b'{"n":1}', S(n=1))
    assert cache.take(A, b'{"n":1}') == S(n=1)


def test_a_state_written_since_by_someone_else_is_not_served() -> None:
    cache = StateCache(10)
    cache.put(A, b'{"n":1}', S(n=1))
    assert cache.take(A, b'{"n":2}') is None
    assert cache.take(A, None) is None


def test_a_taken_state_is_gone_until_put_back_so_a_failed_step_leaves_nothing_stale() -> None:
    cache = StateCache(10)
    cache.put(A, b'{"n":1}', S(n=1))
    assert cache.take(A, b'{"n":1}') is not None
    assert cache.take(A, b'{"n":1}') is None


def test_the_least_recently_written_entity_is_evicted_past_capacity() -> None:
    cache = StateCache(2)
    cache.put(A, b"1", S(n=1))
    cache.put(B, b"2", S(n=2))
    cache.put(A, b"1", S(n=1))
    cache.put(C, b"3", S(n=3))
    assert len(cache) == 2
    assert cache.take(B, b"2") is None and cache.take(A, b"1") is not None


def test_capacity_zero_caches_nothing() -> None:
    cache = StateCache(0)
    cache.put(A, b"1", S(n=1))
    assert cache.take(A, b"1") is None
