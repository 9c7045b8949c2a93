"""The resource manager's bookkeeping: pure logic, no I/O, no clock (callers pass the time).

Grants are leases. An acquisition is granted whole or denied; a granted lease ends
when its holder releases it or, failing that, when it expires (its hold time plus a
grace period). Expiry is what returns capacity held by an agent that has gone
silent, for example one that obeys a quarantine and stops issuing intentions.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

# Below this a holding counts as fully released; float subtraction leaves dust.
EPSILON = 1e-9


@dataclass
class Lease:
    agent: Hashable
    resource: Hashable
    amount: float
    expires_at: float


@dataclass(frozen=True)
class Claim:
    """An acquisition request, in the order the manager should consider it."""

    agent: Hashable
    resource: Hashable
    amount: float
    priority: int
    at: float
    hold_s: float


@dataclass
class ResourceManager:
    capacities: Mapping[Hashable, float]
    lease_grace_s: float = 5.0
    _used: dict[Hashable, float] = field(init=False)
    _leases: dict[int, Lease] = field(init=False, default_factory=dict)
    _by_holder: dict[tuple[Hashable, Hashable], list[int]] = field(init=False, default_factory=dict)
    _expiry: list[tuple[float, int]] = field(init=False, default_factory=list)
    _next_id: int = field(init=False, default=0)
    _live: dict[Hashable, int] = field(init=False)

    def __post_init__(self) -> None:
        for name, capacity in self.capacities.items():
            if not capacity > 0:
                raise ValueError(f"resource {name!r} needs a positive capacity, not {capacity!r}")
        self._used = dict.fromkeys(self.capacities, 0.0)
        self._live = dict.fromkeys(self.capacities, 0)

    def free(self, resource: Hashable) -> float:
        return self.capacities[resource] - self._used[resource]

    def used(self, resource: Hashable) -> float:
        return self._used[resource]

    def held(self, agent: Hashable, resource: Hashable) -> float:
        return sum(self._leases[i].amount for i in self._by_holder.get((agent, resource), ()))

    def holdings(self) -> dict[tuple[Hashable, Hashable], float]:
        """Amount held per (agent, resource), for every holder with a live lease."""
        return {key: self.held(*key) for key in self._by_holder}

    def acquire(self, claim: Claim) -> bool:
        """Grant the whole amount if it fits in the free capacity, else deny."""
        if claim.resource not in self.capacities or not claim.amount > 0 or claim.amount > self.free(claim.resource):
            return False
        lease_id = self._next_id
        self._next_id += 1
        expires_at = claim.at + claim.hold_s + self.lease_grace_s
        self._leases[lease_id] = Lease(claim.agent, claim.resource, claim.amount, expires_at)
        self._by_holder.setdefault((claim.agent, claim.resource), []).append(lease_id)
        heapq.heappush(self._expiry, (expires_at, lease_id))
        self._used[claim.resource] += claim.amount
        self._live[claim.resource] += 1
        return True

    def decide(self, claims: Iterable[Claim]) -> list[bool]:
        """Grant a batch of claims highest priority first, then earliest; the result follows the input order."""
        indexed = list(claims)
        order = sorted(range(len(indexed)), key=lambda i: (-indexed[i].priority, indexed[i].at, i))
        granted = [False] * len(indexed)
        for i in order:
            granted[i] = self.acquire(indexed[i])
        return granted

    def release(self, agent: Hashable, resource: Hashable, amount: float) -> float:
        """Give back up to `amount` of the agent's holding, oldest lease first; returns what was released."""
        ids = self._by_holder.get((agent, resource))
        released = 0.0
        while ids and released < amount - EPSILON:
            lease = self._leases[ids[0]]
            take = min(lease.amount, amount - released)
            lease.amount -= take
            released += take
            if lease.amount <= EPSILON:
                self._drop(ids[0])
        self._settle(resource, released)
        return released

    def revoke(self, agent: Hashable) -> float:
        """Take back everything the agent holds (it was quarantined); returns the amount freed."""
        freed = 0.0
        for agent_, resource in [key for key in self._by_holder if key[0] == agent]:
            freed += self.release(agent_, resource, self.held(agent_, resource))
        return freed

    def expire(self, now: float) -> list[Lease]:
        """End every lease whose time has come (expires_at <= now); returns them."""
        ended = []
        while self._expiry and self._expiry[0][0] <= now:
            _, lease_id = heapq.heappop(self._expiry)
            lease = self._leases.get(lease_id)
            if lease is None:
                continue  # released before it expired
            self._drop(lease_id)
            self._settle(lease.resource, lease.amount)
            ended.append(lease)
        return ended

    def _drop(self, lease_id: int) -> None:
        lease = self._leases.pop(lease_id)
        key = (lease.agent, lease.resource)
        ids = self._by_holder[key]
        ids.remove(lease_id)
        self._live[lease.resource] -= 1
        if not ids:
            del self._by_holder[key]

    def _settle(self, resource: Hashable, released: float) -> None:
        if released <= 0:
            return
        self._used[resource] -= released
        # Exact zero once nothing is held, so float dust never eats capacity for good.
        if self._used[resource] <= EPSILON or self._live[resource] == 0:
            self._used[resource] = 0.0
