"""The resource manager's invariants, as properties over arbitrary operation sequences."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator import Claim, ResourceManager

CAPACITIES = {"gpu": 10.0, "db": 3.5}
AGENTS = ["a", "b", "c"]
amounts = st.floats(min_value=0.01, max_value=12.0, allow_nan=False)

acquire = st.builds(
    lambda agent, resource, amount, priority, at, hold: ("acquire", Claim(agent, resource, amount, priority, at, hold)),
    st.sampled_from(AGENTS), st.sampled_from(list(CAPACITIES)), amounts, st.integers(1, 10),
    st.floats(0, 100), st.floats(0.1, 50),
)
release = st.tuples(st.just("release"), st.sampled_from(AGENTS), st.sampled_from(list(CAPACITIES)), amounts)
expire = st.tuples(st.just("expire"), st.floats(0, 200))
batch = st.tuples(st.just("decide"), st.lists(acquire.map(lambda op: op[1]), max_size=6))
operations = st.lists(st.one_of(acquire, release, expire, batch), max_size=60)


def _apply(manager: ResourceManager, op: tuple) -> None:
    kind = op[0]
    if kind == "acquire":
        manager.acquire(op[1])
    elif kind == "release":
        manager.release(op[1], op[2], op[3])
    elif kind == "expire":
        manager.expire(op[1])
    else:
        manager.decide(op[1])


def _held_on(manager: ResourceManager, resource: str) -> float:
    return sum(amount for (_, r), amount in manager.holdings().items() if r == resource)


@settings(max_examples=300)
@given(operations)
def test_it_never_grants_beyond_capacity_and_its_books_match_its_holdings(ops):
    manager = ResourceManager(CAPACITIES)
    for op in ops:
        _apply(manager, op)
        for resource, capacity in CAPACITIES.items():
            assert _held_on(manager, resource) <= capacity + 1e-9
            assert abs(manager.used(resource) - _held_on(manager, resource)) < 1e-6
            assert -1e-9 <= manager.free(resource) <= capacity


@settings(max_examples=300)
@given(operations)
def test_releasing_everything_restores_the_full_capacity(ops):
    manager = ResourceManager(CAPACITIES)
    for op in ops:
        _apply(manager, op)
    for agent, resource in list(manager.holdings()):
        manager.release(agent, resource, manager.held(agent, resource))
    assert manager.holdings() == {}
    assert all(manager.free(r) == c for r, c in CAPACITIES.items())


@settings(max_examples=200)
@given(operations)
def test_expiry_alone_restores_the_full_capacity_in_the_end(ops):
    manager = ResourceManager(CAPACITIES)
    for op in ops:
        _apply(manager, op)
    manager.expire(10_000.0)
    assert all(manager.free(r) == c for r, c in CAPACITIES.items())


@given(st.sampled_from(AGENTS), amounts, amounts)
def test_a_release_gives_back_at_most_what_the_agent_holds(agent, held, asked):
    manager = ResourceManager({"gpu": 100.0})
    manager.acquire(Claim(agent, "gpu", held, 5, 0.0, 10.0))
    released = manager.release(agent, "gpu", asked)
    assert abs(released - min(held, asked)) < 1e-9
    assert manager.release("nobody", "gpu", asked) == 0.0


def test_a_claim_that_does_not_fit_is_denied_whole():
    manager = ResourceManager({"gpu": 10.0})
    assert manager.acquire(Claim("a", "gpu", 7, 5, 0, 1))
    assert not manager.acquire(Claim("b", "gpu", 4, 5, 0, 1))
    assert manager.held("b", "gpu") == 0 and manager.free("gpu") == 3


def test_a_batch_is_granted_highest_priority_first_then_earliest():
    manager = ResourceManager({"gpu": 10.0})
    claims = [Claim("low", "gpu", 6, 2, 0.0, 1), Claim("late", "gpu", 6, 9, 0.5, 1), Claim("high", "gpu", 6, 9, 0.1, 1)]
    assert manager.decide(claims) == [False, False, True]


def test_a_lease_lapses_after_its_hold_and_grace_unless_released():
    manager = ResourceManager({"gpu": 10.0}, lease_grace_s=5.0)
    manager.acquire(Claim("a", "gpu", 4, 5, at=10.0, hold_s=20.0))
    assert manager.expire(34.9) == [] and manager.free("gpu") == 6
    assert [lease.agent for lease in manager.expire(35.0)] == ["a"]
    assert manager.free("gpu") == 10


@given(operations, st.sampled_from(AGENTS))
def test_revoking_an_agent_frees_exactly_what_it_held_and_leaves_the_others_alone(ops, agent):
    manager = ResourceManager(CAPACITIES)
    for op in ops:
        _apply(manager, op)
    before = manager.holdings()
    freed = manager.revoke(agent)
    after = manager.holdings()
    assert abs(freed - sum(v for (a, _), v in before.items() if a == agent)) < 1e-6
    assert not any(a == agent for a, _ in after)
    assert after == {key: v for key, v in before.items() if key[0] != agent}
