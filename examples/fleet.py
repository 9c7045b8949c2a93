"""A small fleet of real (not simulated) async agents on a shared, capacity-limited GPU pool.

Five workers run jobs on the pool through the Chorus SDK: each job is announced with
`agent.hold(...)` (the quarantine gate must admit it), runs on a lease of the pool, and is
measured by `@agent.meter` (vitals every second). After a calm phase one of them turns
greedy: big, long, top-priority claims that it never gives back. The other workers' jobs
start waiting and failing. Chorus' conflict processor names the greedy agent, the quarantine
processor holds it, its SDK refuses its next claim with `Quarantined`, the pool takes its
leases back (the `on_decision` callback), and the others recover.

    python examples/fleet.py                 # starts the processors for a fresh run id
    python examples/fleet.py --no-workers    # use processors you run yourself (see examples/README.md)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field

from chorus.agent import Agent, Connection, Quarantined
from processors.runtime.settings import Settings
from schemas import QuarantineDecision

POOL = "gpu-pool"
CAPACITY = 24.0
WORKERS = ("w1", "w2", "w3", "w4", "w5")
GREEDY = "w3"


@dataclass
class Lease:
    agent: str
    amount: float
    until: float


class Pool:
    """The shared resource: leases of a fixed capacity, granted whole or not at all."""

    def __init__(self, capacity: float) -> None:
        self.capacity = capacity
        self.leases: list[Lease] = []

    def free(self) -> float:
        now = time.monotonic()
        self.leases = [lease for lease in self.leases if lease.until > now]
        return self.capacity - sum(lease.amount for lease in self.leases)

    def take(self, agent: str, amount: float, hold_s: float) -> Lease | None:
        if self.free() < amount:
            return None
        lease = Lease(agent, amount, time.monotonic() + hold_s)
        self.leases.append(lease)
        return lease

    def give_back(self, lease: Lease) -> None:
        with contextlib.suppress(ValueError):
            self.leases.remove(lease)

    def revoke(self, agent: str) -> float:
        taken = sum(lease.amount for lease in self.leases if lease.agent == agent)
        self.leases = [lease for lease in self.leases if lease.agent != agent]
        return taken


@dataclass
class Tally:
    ok: int = 0
    failed: int = 0
    refused: int = 0
    phases: dict[str, list[int]] = field(default_factory=dict)  # phase -> [ok, failed]

    def count(self, phase: str, ok: bool) -> None:
        self.ok += ok
        self.failed += not ok
        self.phases.setdefault(phase, [0, 0])[0 if ok else 1] += 1


class Fleet:
    def __init__(self, settings: Settings, calm_s: float, max_s: float) -> None:
        self.settings = settings
        self.calm_s = calm_s
        self.max_s = max_s
        self.pool = Pool(CAPACITY)
        self.tallies = {w: Tally() for w in WORKERS}
        self.started = time.monotonic()
        self.greedy_since: float | None = None
        self.quarantined_at: float | None = None
        self.decision: QuarantineDecision | None = None

    def t(self) -> float:
        return time.monotonic() - self.started

    def phase(self) -> str:
        if self.greedy_since is None:
            return "calm"
        return "greedy" if self.quarantined_at is None else "after"

    def on_decision(self, agent: Agent, decision: QuarantineDecision) -> None:
        if decision.action == "quarantine":
            taken = self.pool.revoke(agent.agent_id)  # the pool enforces it too: the leases come back now
            if agent.agent_id == GREEDY and self.quarantined_at is None:
                self.quarantined_at, self.decision = self.t(), decision
            print(
                f"[{self.t():5.1f}s] {agent.agent_id} QUARANTINED ({decision.reason}{': ' + decision.detail if decision.detail else ''})"
                f"; the pool took back {taken:.0f} units"
            )
        else:
            print(f"[{self.t():5.1f}s] {agent.agent_id} {decision.action} ({decision.reason})")

    async def worker(self, agent: Agent) -> None:
        tally = self.tallies[agent.agent_id]

        @agent.meter
        async def job(lease_wait_s: float) -> None:
            """One job: wait (briefly) for room on the pool, compute, give the lease back."""
            deadline = time.monotonic() + lease_wait_s
            while (lease := self.pool.take(agent.agent_id, 1.0, hold_s=2.0)) is None:
                if time.monotonic() > deadline:
                    raise TimeoutError("no room on the pool")
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.08)
            self.pool.give_back(lease)

        while self.t() < self.max_s:
            if agent.quarantined:
                await asyncio.sleep(0.5)
                continue
            phase = self.phase()
            try:
                async with agent.hold(POOL, 1.0, hold_s=2.0):
                    await job(0.4)
                tally.count(phase, True)
            except Quarantined:
                tally.refused += 1
            except TimeoutError:
                tally.count(phase, False)
            await asyncio.sleep(0.25)

    async def greedy(self, agent: Agent) -> None:
        """Fair like the others, then it claims a third of the pool at a time, at top priority, and keeps it."""
        calm = asyncio.create_task(self.worker(agent))
        await asyncio.sleep(self.calm_s)
        calm.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await calm
        self.greedy_since = self.t()
        print(f"[{self.t():5.1f}s] {agent.agent_id} turns greedy: claims 8 units for 60 s at priority 10, every 0.3 s")
        while self.t() < self.max_s:
            try:
                await agent.intend(POOL, 8.0, hold_s=60.0, priority=10)
            except Quarantined as held:
                self.tallies[agent.agent_id].refused += 1
                print(f"[{self.t():5.1f}s] {agent.agent_id}: the SDK refuses its claim: {held}")
                return
            self.pool.take(agent.agent_id, 8.0, hold_s=60.0)  # whatever is free: it never gives back
            await asyncio.sleep(0.3)

    async def report(self) -> None:
        last = {w: (0, 0) for w in WORKERS}
        while True:
            await asyncio.sleep(3.0)
            parts = []
            for w, tally in self.tallies.items():
                ok, failed = tally.ok - last[w][0], tally.failed - last[w][1]
                last[w] = (tally.ok, tally.failed)
                parts.append(f"{w} {ok:>2} ok {failed:>2} failed")
            print(
                f"[{self.t():5.1f}s] {self.phase():<6} free {self.pool.free():>4.0f}/{CAPACITY:.0f} | "
                + " | ".join(parts)
            )

    async def run(self) -> int:
        async with Connection(WORKERS, self.settings) as connection:
            agents = [Agent(w, connection=connection, on_decision=self.on_decision) for w in WORKERS]
            for agent in agents:
                await agent.start()
            print(
                f"[{self.t():5.1f}s] {len(agents)} agents on {POOL} (capacity {CAPACITY:.0f}), run id {self.settings.run_id}"
            )
            reporter = asyncio.create_task(self.report())
            tasks = [asyncio.create_task(self.greedy(a) if a.agent_id == GREEDY else self.worker(a)) for a in agents]
            while self.t() < self.max_s:
                await asyncio.sleep(0.5)
                if self.quarantined_at is not None and self.t() - self.quarantined_at >= 12:
                    break
            self.max_s = 0  # every loop ends
            await asyncio.gather(*tasks)
            reporter.cancel()
            for agent in agents:
                await agent.close()
        return self.summary()

    def summary(self) -> int:
        print("\njobs per phase (ok / failed):")
        print(f"{'agent':<8}{'calm':>12}{'greedy':>12}{'after':>12}")
        for w, tally in self.tallies.items():
            cells = [tally.phases.get(p, [0, 0]) for p in ("calm", "greedy", "after")]
            mark = "  <- greedy" if w == GREEDY else ""
            print(f"{w:<8}" + "".join(f"{ok:>7} / {bad:<3}" for ok, bad in cells) + mark)
        if self.quarantined_at is None or self.greedy_since is None:
            print(f"\n{GREEDY} was NOT quarantined: are the processors running for run id {self.settings.run_id}?")
            return 1
        assert self.decision is not None
        print(
            f"\n{GREEDY} turned greedy at {self.greedy_since:.1f}s and was quarantined "
            f"{self.quarantined_at - self.greedy_since:.1f}s later for {self.decision.reason} "
            f"(decision {self.decision.event_id}, until {self.decision.until})."
        )
        return 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-workers", action="store_true", help="use processors already running (CHORUS_RUN_ID)")
    ap.add_argument("--calm", type=float, default=12.0, help="seconds before one agent turns greedy")
    ap.add_argument("--max", type=float, default=90.0, help="give up after this many seconds")
    args = ap.parse_args()
    if args.no_workers:
        sys.exit(asyncio.run(Fleet(Settings(), args.calm, args.max).run()))

    from chorus import admin, stack
    from chorus.pipeline import Workers

    with stack.running() as (kafka, redis_url):
        admin.create_topics(kafka)
        run_id = f"example-{uuid.uuid4().hex[:8]}"
        workers = Workers(kafka, redis_url, run_id, stack.home() / "runs" / run_id)
        workers.env["CHORUS_CONFLICT_CAPACITIES"] = json.dumps({POOL: CAPACITY})
        workers.env.setdefault("CHORUS_LOG_LEVEL", "WARNING")
        print(f"starting the processors ({', '.join(workers.names)}) for run {run_id} (logs in {workers.log_dir}) ...")
        try:
            workers.start()
            workers.wait_ready()
            settings = Settings(kafka_bootstrap_servers=kafka, redis_url=redis_url, run_id=run_id)  # type: ignore[call-arg]
            code = asyncio.run(Fleet(settings, args.calm, args.max).run())
        finally:
            workers.stop()
    sys.exit(code)


if __name__ == "__main__":
    os.environ.setdefault("CHORUS_LOG_JSON", "false")
    main()
