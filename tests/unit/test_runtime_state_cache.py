"""The state cache keeps what this worker last wrote per entity, and gives each entry out once."""

from __future__ import annotations

from pydantic import BaseModel

from processors.runtime.cache import Known, StateCache
from processors.runtime.store import EntityRef, Snapshot


class S(BaseModel):
    n: int


A, B, C = EntityRef("r", "a"), EntityRef("r", "b"), EntityRef("r", "c")


def known(n: int) -> Known:
    return Known(Snapshot(n, f'{{"n":{n}}}'.encode()), S(n=n), f"token-{n}")


def test_an_entry_is_served_with_its_snapshot_state_and_token() -> None:
    cache = StateCache(10)
    cache.put(A, known(1))
    assert cache.take(A) == known(1)


def test_a_taken_entry_is_gone_until_put_back_so_a_failed_step_leaves_nothing_stale() -> None:
    cache = StateCache(10)
    cache.put(A, known(1))
    assert cache.take(A) is not None
    assert cache.take(A) is None


def test_the_least_recently_written_entity_is_evicted_past_capacity() -> None:
    cache = StateCache(2)
    cache.put(A, known(1))
    cache.put(B, known(2))
    cache.put(A, known(3))
    cache.put(C, known(4))
    assert len(cache) == 2
    assert cache.take(B) is None and cache.take(A) == known(3)


def test_capacity_zero_caches_nothing() -> None:
    cache = StateCache(0)
    cache.put(A, known(1))
    assert cache.take(A) is None
