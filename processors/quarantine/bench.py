"""Event-to-decision latency of the conflict -> quarantine path, on the real broker and Redis.

    python -m processors.quarantine.bench --agents 100 --rate 400 --duration 60

`--step-only` instead measures the pure step (load the fleet header and the records of the
agents a batch names, gate 1,000 intentions, store what changed) at 1,000, 10,000 and 100,000
agents, without any service.

Otherwise it starts `chorus worker conflict` and `chorus worker quarantine` for a fresh run id
(unless --no-spawn: then run them yourself with CHORUS_RUN_ID=<run id>), produces a
steady fleet workload with event time = wall time, and every few seconds lets a new
agent start hoarding one resource. It prints, at the stated load:
- decision latency: the hoarder's first offending intention -> its quarantine decision;
- gate latency: an intention produced -> the same intention on agent.intentions.admitted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

from confluent_kafka import Consumer, Producer

from processors.runtime import Settings
from processors.runtime.kafka import end_offsets
from processors.runtime.security import client_config
from schemas import ADMITTED, INTENTIONS, QUARANTINE, Intention, QuarantineDecision, decode, encode

RESOURCES = ("r0", "r1", "r2", "r3")


def _percentiles(xs: list[float]) -> str:
    if not xs:
        return "n=0"
    xs = sorted(xs)
    p = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]  # noqa: E731
    return f"n={len(xs)} p50={p(0.5) * 1000:.0f}ms p99={p(0.99) * 1000:.0f}ms max={xs[-1] * 1000:.0f}ms mean={statistics.fmean(xs) * 1000:.0f}ms"


@contextlib.contextmanager
def _workers(run_id: str, env: dict[str, str], spawn: bool) -> Iterator[None]:
    if not spawn:
        yield
        return
    full = (
        os.environ
        | env
        | {
            "CHORUS_RUN_ID": run_id,
            "CHORUS_APP_ID_SUFFIX": f"-{run_id}",
            "CHORUS_METRICS_PORT": "0",
            "CHORUS_CONSUMER_AUTO_OFFSET_RESET": "latest",
            "CHORUS_LOG_LEVEL": "WARNING",
        }
    )
    procs = [
        subprocess.Popen([sys.executable, "-m", "chorus.cli", "worker", name], env=full)
        for name in ("conflict", "quarantine")
    ]
    try:
        time.sleep(8)  # join the groups before the load starts ("latest" would skip earlier events)
        yield
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def step_cost() -> None:
    """The step as the runtime drives it, per 1,000-intention batch: parse the header and the records
    of the agents the batch names, gate, serialise the header and the changed records. Redis's own
    round trip (one pipeline read, one Lua write) comes on top."""
    from datetime import timedelta

    from .policy import QuarantinePolicy
    from .step import AgentRecord, FleetHeader, parts_of, step

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    print(f"{'agents':>7} {'header_kB':>10} {'read_kB':>8} {'written_kB':>11} {'wall_ms':>8} {'cpu_ms':>7}")
    for n in (1_000, 10_000, 100_000):
        header = FleetHeader(watermark=t0, seen_counts={int(t0.timestamp()): n}).model_dump_json().encode()
        stored = {
            f"a{i}": AgentRecord(trust=80.0 if i % 10 == 0 else 100.0, seen=t0.timestamp()).model_dump_json().encode()
            for i in range(n)
        }
        events = [
            Intention(
                event_id=f"e{i}",
                occurred_at=t0 + timedelta(milliseconds=i),
                producer="bench",
                agent_id=f"a{i % n}",
                action="acquire",
                resource="r",
                amount=1.0,
            )
            for i in range(1_000)
        ]
        named = {a for e in events for a in parts_of(e)}
        parts = {a: stored[a] for a in named if a in stored}
        wall = cpu = float("inf")
        for _ in range(5):
            started, started_cpu = time.perf_counter(), time.process_time()
            result = step("fleet", FleetHeader.model_validate_json(header), events, parts, QuarantinePolicy())
            assert result.state is not None
            written = len(result.state.model_dump_json()) + sum(len(v) for v in result.parts.values())
            wall = min(wall, time.perf_counter() - started)
            cpu = min(cpu, time.process_time() - started_cpu)
        read = len(header) + sum(len(v) for v in parts.values())
        print(
            f"{n:>7} {len(header) / 1024:>10.1f} {read / 1024:>8.0f} {written / 1024:>11.0f}"
            f" {wall * 1000:>8.1f} {cpu * 1000:>7.1f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--agents", type=int, default=100)
    ap.add_argument("--rate", type=float, default=400.0, help="fleet intentions per second")
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--hoarder-every", type=float, default=6.0, help="seconds between new hoarders")
    ap.add_argument("--run-id", default=None)
    ap.add_argument("--no-spawn", action="store_true")
    ap.add_argument("--step-only", action="store_true", help="measure the pure step only (no services)")
    args = ap.parse_args()
    if args.step_only:
        step_cost()
        return
    settings = Settings()
    run_id = args.run_id or f"bench-{uuid.uuid4().hex[:8]}"
    capacity = 100.0
    # Fair load: about 60% of each resource's capacity per window.
    fair_amount = 0.6 * capacity * len(RESOURCES) / (args.rate * settings.conflict_window_s)
    env = {"CHORUS_CONFLICT_DEFAULT_CAPACITY": str(capacity)}
    print(
        f"run {run_id}: {args.agents} agents, {args.rate:.0f} intentions/s over {len(RESOURCES)} resources, "
        f"window {settings.conflict_window_s}s + lateness {settings.conflict_lateness_s}s, {args.duration:.0f}s"
    )

    offended: dict[str, float] = {}
    produced_at: dict[str, float] = {}
    decisions: list[float] = []
    gate: list[float] = []
    stop = threading.Event()

    def consume() -> None:
        consumer = Consumer(
            {
                **client_config(settings),
                "group.id": f"bench-{run_id}",
                "enable.auto.commit": False,
                "auto.offset.reset": "latest",
            }
        )
        consumer.assign(end_offsets(settings.kafka_bootstrap_servers, [QUARANTINE.name, ADMITTED.name]))
        ready.set()
        while not stop.is_set():
            msg = consumer.poll(0.2)
            if msg is None or msg.error():
                continue
            now = time.time()
            if msg.topic() == QUARANTINE.name:
                d = decode(QuarantineDecision, msg.value())
                if d.run_id == run_id and d.action in ("quarantine", "pending_approval") and d.agent_id in offended:
                    decisions.append(now - offended.pop(d.agent_id))
            else:
                i = decode(Intention, msg.value())
                if i.run_id == run_id and i.event_id in produced_at:
                    gate.append(now - produced_at.pop(i.event_id))
        consumer.close()

    ready = threading.Event()
    reader = threading.Thread(target=consume, daemon=True)
    with _workers(run_id, env, not args.no_spawn):
        reader.start()
        ready.wait(30)
        producer = Producer({**client_config(settings), "linger.ms": 5})
        rng = random.Random(7)
        started = time.time()
        n = 0
        hoarders = 0
        next_hoarder = started + 10.0  # let the windows fill with normal load first
        hoarding: dict[str, tuple[str, float]] = {}
        started_hoarding: set[str] = set()
        while time.time() - started < args.duration:
            now = time.time()
            if now >= next_hoarder:
                hoarders += 1
                hoarding[f"hog-{hoarders}"] = (RESOURCES[hoarders % len(RESOURCES)], now + 3.0)
                next_hoarder = now + args.hoarder_every
            batch_end = now + 0.05
            while time.time() < batch_end:
                time.sleep(max(0.0, rng.expovariate(args.rate)))
                n += 1
                agent, resource, amount, priority = (
                    f"a{rng.randrange(args.agents)}",
                    rng.choice(RESOURCES),
                    fair_amount,
                    5,
                )
                for hog, (res, until) in list(hoarding.items()):
                    if time.time() > until:
                        del hoarding[hog]
                    elif rng.random() < 0.05:
                        agent, resource, amount, priority = hog, res, 0.5 * capacity, 10
                at = time.time()
                event = Intention(
                    event_id=f"{run_id}-{n}",
                    occurred_at=datetime.fromtimestamp(at, UTC),
                    producer="bench",
                    run_id=run_id,
                    agent_id=agent,
                    action="acquire",
                    resource=resource,
                    amount=amount,
                    priority=priority,
                    hold_s=2.0,
                )
                if agent.startswith("hog-") and agent not in started_hoarding:
                    started_hoarding.add(agent)
                    offended[agent] = at
                elif n % 10 == 0:
                    produced_at[event.event_id] = at
                producer.produce(INTENTIONS.name, encode(event), INTENTIONS.key_of(event))
                producer.poll(0)
        producer.flush(30)
        elapsed = time.time() - started
        time.sleep(settings.conflict_window_s + settings.conflict_lateness_s + 5)
        stop.set()
        reader.join(10)
    print(f"load: {n / elapsed:.0f} intentions/s for {elapsed:.0f}s; hoarders started: {hoarders}")
    print(f"decision latency (first offending intention -> quarantine decision): {_percentiles(decisions)}")
    print(f"gate latency (intention -> admitted), 1 in 10 sampled: {_percentiles(gate)}")
    if offended:
        print(f"hoarders without a decision: {sorted(offended)}")


if __name__ == "__main__":
    main()
