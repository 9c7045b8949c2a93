"""`python -m chorus.explain_bench`: how long `chorus explain` takes on an agent with a long story.

Writes one agent's story under a fresh run id: N trust changes in the topic and in the trust
processor's stored history (through the runtime's own StateStore, so the layout is the real
one), the anomalies and conflicts that caused them, quarantine decisions and the intentions at
the bottom of their cause chains. Then times `Fleet.once(...).explain(...)` in process and the
whole `chorus explain` command in a subprocess (interpreter start and imports included), and
prints wall and CPU seconds with the load average. Reported, never asserted: timings here
depend on the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

from processors.runtime.kafka import ConfluentSender, OutMessage
from processors.runtime.settings import Settings
from processors.runtime.store import EntityRef, StateStore, Write
from schemas import (
    ANOMALIES,
    CONFLICTS,
    INTENTIONS,
    QUARANTINE,
    TRUST,
    AffectedAgent,
    Anomaly,
    ConflictPrediction,
    Intention,
    QuarantineDecision,
    TrustChange,
    encode,
)

from .fleet import Fleet

AGENT = "agent-bench"


def _id() -> str:
    return str(uuid.uuid4())


def story(run_id: str, n: int) -> tuple[list[tuple[object, object]], list[TrustChange]]:
    """(topic, event) pairs for one agent's story of `n` trust changes, and those changes."""
    t0 = datetime.now(UTC) - timedelta(seconds=n)
    out: list[tuple[object, object]] = []
    changes: list[TrustChange] = []
    score = 100.0
    base = {"run_id": run_id}
    for i in range(n):
        at = t0 + timedelta(seconds=i)
        claims = [Intention(event_id=_id(), occurred_at=at, producer="sim", agent_id=AGENT, action="acquire",
                            resource="gpu", amount=40, priority=9, hold_s=60, **base) for _ in range(3)]
        out += [(INTENTIONS, c) for c in claims]
        if i % 4 == 0:
            cause = Anomaly(event_id=_id(), occurred_at=at, causation_ids=tuple(c.event_id for c in claims),
                            producer="baseline", agent_id=AGENT, metric="cpu", value=0.9, mean=0.3, stddev=0.05,
                            zscore=12, severity="high", sustained_samples=3, **base)
            out.append((ANOMALIES, cause))
        else:
            cause = ConflictPrediction(
                event_id=_id(), occurred_at=at, causation_ids=tuple(c.event_id for c in claims), producer="conflict",
                resource="gpu", window_start=at - timedelta(seconds=5), window_end=at, capacity=100, demand=300,
                risk=0.9, confidence=0.9, failure_mode="hoarding", most_aggressive=AGENT,
                affected=(AffectedAgent(agent_id=AGENT, demand=240, share=0.8, fair_share=0.1, priority=9,
                                        aggressiveness=1.0),), **base)
            out.append((CONFLICTS, cause))
        after = max(0.0, min(100.0, score + (-8 if i % 2 == 0 else 7)))
        change = TrustChange(event_id=_id(), occurred_at=at, causation_ids=(cause.event_id,), producer="trust",
                             agent_id=AGENT, before=score, after=after, reason="anomaly" if i % 4 == 0 else "conflict",
                             **base)
        score = after
        changes.append(change)
        out.append((TRUST, change))
        if i % 50 == 49:
            action = "quarantine" if (i // 50) % 2 == 0 else "release"
            out.append((QUARANTINE, QuarantineDecision(
                event_id=_id(), occurred_at=at, causation_ids=(change.event_id,), producer="quarantine",
                agent_id=AGENT, action=action, reason="low_trust" if action == "quarantine" else "operator",
                until=at + timedelta(seconds=30) if action == "quarantine" else None, **base)))
    return out, changes


async def _store_history(settings: Settings, run_id: str, changes: list[TrustChange]) -> None:
    from processors.trust.logic import history_entry  # the trust processor's own entry format

    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        store = StateStore(client, "trust", history_cap=len(changes))
        state = json.dumps({"score": changes[-1].after, "changes": len(changes)})
        await store.write([Write(EntityRef(run_id, AGENT), 0, {"f:immune.anomalies:0": 0}, state,
                                 [history_entry(c) for c in changes])])
    finally:
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--history", type=int, default=1000, help="trust changes in the agent's story")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    settings = Settings()
    run_id = f"explain-bench-{uuid.uuid4().hex[:8]}"
    events, changes = story(run_id, args.history)
    ConfluentSender(settings.kafka_bootstrap_servers).send_sync(
        [OutMessage(spec.name, spec.key_of(e), encode(e)) for spec, e in events]  # type: ignore[attr-defined]
    )
    asyncio.run(_store_history(settings, run_id, changes))
    print(f"run {run_id}: {len(changes)} trust changes, {len(events)} events; load average {os.getloadavg()}")

    in_process: list[tuple[float, float]] = []
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fleet = Fleet.once(settings, run_id, agent=AGENT)
        told = fleet.explain(AGENT)
        fleet.close()
        in_process.append((time.perf_counter() - wall, time.process_time() - cpu))
    assert len(told.trust_history) == len(changes), "the story is incomplete"
    print(f"in process (read topics + Redis + inputs, build the story): {len(told.trust_history)} changes, "
          f"{len(told.decisions)} decisions; wall median {statistics.median(w for w, _ in in_process):.3f} s "
          f"(min {min(w for w, _ in in_process):.3f}), CPU median {statistics.median(c for _, c in in_process):.3f} s")

    whole: list[tuple[float, float]] = []
    for _ in range(args.repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall = time.perf_counter()
        subprocess.run([sys.executable, "-m", "chorus.cli", "explain", AGENT, "--run-id", run_id, "--json"],
                       check=True, stdout=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        whole.append((time.perf_counter() - wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime))
    print(f"`chorus explain --json` as a command (interpreter start and imports included): wall median "
          f"{statistics.median(w for w, _ in whole):.3f} s (min {min(w for w, _ in whole):.3f}), CPU median "
          f"{statistics.median(c for _, c in whole):.3f} s; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
