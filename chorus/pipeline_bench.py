"""The full pipeline under fixed offered loads: achieved events/s and event-to-decision latency.

All the processors (the four deciding ones and healing) run as their own processes. For
each offered load a paced producer writes a fleet's vitals and intentions for `step_s`
seconds with event time = wall time, so a decision's latency is simply when it arrived
minus its `occurred_at` (which the processors take from its causes). A load is done when the gate has admitted every
intention offered (none is quarantined: the load is a healthy fleet) and baseline has
completed every vitals sample; achieved = offered events / time to done. A load the
pipeline cannot keep up with is cut off after `drain_s`, and achieved counts what it
finished by then.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from confluent_kafka import Consumer, Producer

from processors.runtime.kafka import end_offsets, take
from processors.runtime.security import client_config
from schemas import ADMITTED, ANOMALIES, BASELINES, PARTITIONER, QUARANTINE, TRUST, Event, decode
from simulator.wire import Clock, EventIds, Templates, json_str

from . import admin, stack
from .pipeline import Workers
from .probe import free_port, scrape, worker_counters

DECISIONS = (ADMITTED, ANOMALIES, BASELINES, TRUST, QUARANTINE)
RESOURCES = ("gpu-pool", "db-connections", "vector-store", "payments-api")
VITALS_SHARE = 2 / 3  # a fleet reports vitals every tick and claims about half as often
SLICE_S = 0.005
AMPLE_CAPACITY = 1e9


@dataclass(frozen=True)
class LoadResult:
    offered_eps: float
    achieved_eps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    decisions: int
    completed: bool
    quarantines: int  # a healthy fleet should have none: any held intention would stall completion
    # Per decision topic, where its latency goes: p50/p99 ms of the whole (cause's event time -> read back), of
    # the part up to the deciding processor's produce call (its record's CreateTime), and of the rest (the
    # producer's flush, the broker, the reader's fetch).
    hops: dict[str, dict[str, float | None]] = field(default_factory=dict)
    # CPU-seconds the workers (healing included) used over the load (offering and draining), and offered events
    # per CPU-second: on a shared machine, the figure that does not depend on how much of a core each worker got.
    cpu_s: float = 0.0
    events_per_cpu_s: float = 0.0
    # 1-minute load average at the start and at the end of the load.
    loadavg: tuple[float, float] = (0.0, 0.0)
    # CPU-seconds the local Kafka broker and Redis used over the load (when `chorus stack` started them): on one
    # host they share the cores with the workers.
    services_cpu_s: dict[str, float] = field(default_factory=dict)
    # Per processor over the load: its batches, their mean time (decode to state write) and size, how long the
    # ordering rule held events (mean ms) and how often it gave up waiting.
    workers: dict[str, dict[str, float | bool]] = field(default_factory=dict)  # see _spent


class _Decisions(threading.Thread):
    """Consumes the decision topics of one run, recording (occurred_at, latency) of each."""

    def __init__(self, bootstrap: str, run_id: str) -> None:
        super().__init__(name="bench-decisions", daemon=True)
        self.run_id = run_id
        self.lock = threading.Lock()
        # (occurred_at, latency_s, topic, latency to the decision's CreateTime in s)
        self.samples: list[tuple[float, float, str, float]] = []
        self._halt = threading.Event()
        self._models = {spec.name: spec.model for spec in DECISIONS}
        self._consumer = Consumer({**client_config(bootstrap=bootstrap), "group.id": f"chorus-bench-{run_id}"})
        self._consumer.assign(end_offsets(bootstrap, [spec.name for spec in DECISIONS]))

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                for msg in take(self._consumer, 1000, 0.1):
                    if msg.error():
                        continue
                    arrived = time.time()
                    event: Event = decode(self._models[msg.topic()], msg.value())
                    if event.run_id == self.run_id:
                        at = event.occurred_at.timestamp()
                        created = msg.timestamp()[1] / 1000
                        with self.lock:
                            self.samples.append((at, arrived - at, msg.topic(), created - at))
        finally:
            self._consumer.close()

    def count(self, topic: str) -> int:
        with self.lock:
            return sum(1 for sample in self.samples if sample[2] == topic)

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=10)


class _Load:
    """A healthy fleet's vitals and intentions, paced to an offered rate, stamped with wall time."""

    def __init__(self, bootstrap: str, run_id: str, agents: int) -> None:
        self.producer = Producer(
            {**client_config(bootstrap=bootstrap), "linger.ms": 5, "partitioner": PARTITIONER, "compression.type": "lz4",
             "queue.buffering.max.messages": 1_000_000}  # fmt: skip
        )
        self.templates = Templates(run_id)
        self.ids = EventIds(f"bench-{run_id}")
        self.agents = [(f"bench-{i:05d}".encode(), json_str(f"bench-{i:05d}")) for i in range(agents)]
        self.rng = random.Random(3)
        self.seq = 0

    def offer(self, rate: float, seconds: float) -> tuple[int, int, float]:
        """Produce for `seconds` at `rate` events/s; (vitals, intentions, start time)."""
        start = time.time()
        clock = Clock(datetime.fromtimestamp(start, UTC))
        vitals = intentions = 0
        while (elapsed := time.time() - start) < seconds:
            due = int(rate * elapsed) - vitals - intentions
            at = clock.iso_ms(int(elapsed * 1000))
            for _ in range(due):
                if self.rng.random() < VITALS_SHARE:
                    self._vitals(at)
                    vitals += 1
                else:
                    self._intention(at)
                    intentions += 1
            self.producer.poll(0)
            time.sleep(SLICE_S)
        self.producer.flush(30)
        return vitals, intentions, start

    def _vitals(self, at: str) -> None:
        key, agent = self.rng.choice(self.agents)
        self.seq += 1
        r = self.rng
        value = self.templates.vitals(self.ids.make(str(self.seq)), at, agent, round(r.gauss(120, 8), 2),
                                      round(r.uniform(0.0, 0.01), 4), round(r.uniform(0, 4), 2),
                                      round(r.uniform(0.2, 0.4), 4), round(r.gauss(20, 1), 2))  # fmt: skip
        self._produce("agent.vitals", key, value)

    def _intention(self, at: str) -> None:
        key, agent = self.rng.choice(self.agents)
        self.seq += 1
        action = "acquire" if self.seq % 2 else "release"
        value = self.templates.intention(self.ids.make(str(self.seq)), at, agent, action,
                                         json_str(self.rng.choice(RESOURCES)), 1.0, 5, 5.0)  # fmt: skip
        self._produce("agent.intentions", key, value)

    def _produce(self, topic: str, key: bytes, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key)
                return
            except BufferError:
                self.producer.poll(0.05)  # the local queue is full: let deliveries drain


def bench_pipeline(
    loads: list[float],
    bootstrap: str,
    redis_url: str,
    *,
    step_s: float = 10.0,
    warmup_s: float = 0.0,
    drain_s: float = 30.0,
    agents: int = 1000,
    say: Callable[[str], None] = print,
) -> list[LoadResult]:
    """Each load's result; with `warmup_s`, the first load is offered that long before, and not reported."""
    admin.create_topics(bootstrap)
    run_id = f"bench-pipeline-{uuid.uuid4().hex[:8]}"
    workers = Workers(bootstrap, redis_url, run_id, stack.home() / "runs" / run_id)
    # A healthy fleet on ample resources: the bench measures throughput, not contention. (With the
    # default capacity the conflict processor would rightly quarantine claimants, and their held
    # intentions would never reach the admitted topic.)
    workers.env["CHORUS_CONFLICT_CAPACITIES"] = json.dumps(dict.fromkeys(RESOURCES, AMPLE_CAPACITY))
    ports = {name: free_port() for name in workers.names}
    results = []
    with contextlib.ExitStack() as cleanup:  # every clean-up runs, even when one fails
        say(f"starting the processors ({', '.join(workers.names)}) ...")
        cleanup.callback(workers.stop)
        workers.start(ports)
        workers.wait_ready(say)
        decisions = _Decisions(bootstrap, run_id)
        decisions.start()
        cleanup.callback(decisions.stop)
        load = _Load(bootstrap, run_id, agents)
        if warmup_s and loads:
            # A broker fresh from `chorus stack up` spends its first minute or so compiling (JIT): measured, that
            # minute is the JVM's warm-up, seconds of latency and twice the broker CPU, not the pipeline's.
            say(f"warming up: {loads[0]:,.0f} events/s for {warmup_s:g} s (not reported) ...")
            vitals, intentions, _ = load.offer(loads[0], warmup_s)
            _wait_done(decisions, workers, ports["baseline"], vitals, intentions, drain_s)
        for rate in loads:
            say(f"offering {rate:,.0f} events/s for {step_s:g} s ...")
            done_before = worker_counters(ports["baseline"])[0] or 0.0
            admitted_before = decisions.count(ADMITTED.name)
            quarantines_before = decisions.count(QUARANTINE.name)
            stats_before, load_before = _worker_stats(ports), os.getloadavg()[0]
            restarts_before = dict(workers.restarts)
            services_before = _services_cpu_s((bootstrap, redis_url))
            vitals, intentions, start = load.offer(rate, step_s)
            finished, fraction = _wait_done(
                decisions, workers, ports["baseline"], done_before + vitals, admitted_before + intentions, drain_s
            )
            restarted = {name for name, n in workers.restarts.items() if n != restarts_before.get(name, 0)}
            spent = _spent(stats_before, _worker_stats(ports), restarted)
            cpu_s = sum(w["cpu_s"] for w in spent.values())
            elapsed = finished - start
            with decisions.lock:
                window = [s for s in decisions.samples if start <= s[0] < start + step_s]
            latencies = np.array([s[1] for s in window])
            result = LoadResult(
                offered_eps=(vitals + intentions) / step_s,
                achieved_eps=fraction * (vitals + intentions) / elapsed,
                p50_ms=_pct(latencies, 50),
                p95_ms=_pct(latencies, 95),
                p99_ms=_pct(latencies, 99),
                decisions=int(latencies.size),
                completed=fraction >= 1.0,
                quarantines=decisions.count(QUARANTINE.name) - quarantines_before,
                hops=_hops(window),
                cpu_s=round(cpu_s, 2),
                events_per_cpu_s=round(fraction * (vitals + intentions) / cpu_s, 1) if cpu_s else 0.0,
                loadavg=(load_before, os.getloadavg()[0]),
                workers=spent,
                services_cpu_s={
                    name: round(cpu - services_before[name], 2)
                    for name, cpu in _services_cpu_s((bootstrap, redis_url)).items()
                    if name in services_before
                },
            )
            say(
                f"  achieved {result.achieved_eps:,.0f} events/s ({result.events_per_cpu_s:,.0f} per CPU-second of "
                f"the workers, load average {load_before:.1f}-{result.loadavg[1]:.1f}), latency p50/p95/p99 "
                f"{format_ms(result.p50_ms)}/{format_ms(result.p95_ms)}/{format_ms(result.p99_ms)} ms"
                + ("" if result.completed else f" (fell behind: {fraction:.0%} done after {drain_s:g} s of draining)")
                + (f"; {result.quarantines} quarantine decisions (unexpected)" if result.quarantines else "")
            )
            results.append(result)
            if not result.completed:
                break  # higher loads would only fall further behind and delay the report
    return results


def _services_cpu_s(addresses: tuple[str, str]) -> dict[str, float]:
    """CPU-seconds so far of the services at these addresses that chorus stack started (Linux /proc)."""
    spent = {}
    for name, pid in stack.local_pids(addresses).items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        spent[name] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return spent


def _wait_done(
    decisions: _Decisions, workers: Workers, baseline_port: int, vitals_target: float, admitted_target: int,
    drain_s: float,
) -> tuple[float, float]:  # fmt: skip
    """(time when both targets were reached or the drain ran out, fraction of the work done)."""
    deadline = time.time() + drain_s
    while True:
        workers.check()
        admitted = decisions.count(ADMITTED.name)
        done = worker_counters(baseline_port)[0] or 0.0
        if (admitted >= admitted_target and done >= vitals_target) or time.time() > deadline:
            return time.time(), min(1.0, admitted / admitted_target if admitted_target else 1.0,
                                    done / vitals_target if vitals_target else 1.0)  # fmt: skip
        time.sleep(0.05)


_STATS = {  # metric sample name -> what it counts
    "process_cpu_seconds_total": "cpu_s",
    "chorus_batch_seconds_count": "batches",
    "chorus_batch_seconds_sum": "batch_s",
    "chorus_batch_events_sum": "events",
    "chorus_merge_wait_seconds_count": "holds",
    "chorus_merge_wait_seconds_sum": "hold_s",
    "chorus_merge_forced_total": "forced",
}


def _worker_stats(ports: dict[str, int]) -> dict[str, dict[str, float]]:
    """Each worker's cumulative CPU-seconds, batches, batch time and size, ordering-rule holds (see _STATS)."""
    stats: dict[str, dict[str, float]] = {}
    for name, port in ports.items():
        totals = dict.fromkeys(_STATS.values(), 0.0)
        for family in scrape(port) or []:
            for sample in family.samples:
                if (key := _STATS.get(sample.name)) is not None:
                    totals[key] += sample.value
        stats[name] = totals
    return stats


def _spent(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], restarted: set[str]
) -> dict[str, dict[str, float | bool]]:
    """Per worker over one load: CPU-seconds, batches, mean batch ms and size, mean hold ms, forced releases.
    A worker in `restarted` (by Workers.check during the load) counts from zero again: its figures are only
    since the restart, and say so."""
    spent = {}
    for name, end in after.items():
        start = {} if name in restarted else before.get(name, {})
        d = {k: v - start.get(k, 0.0) for k, v in end.items()}
        batches = d["batches"]
        spent[name] = {
            "cpu_s": round(d["cpu_s"], 2),
            "batches": batches,
            "batch_ms": round(1000 * d["batch_s"] / batches, 2) if batches else 0.0,
            "batch_events": round(d["events"] / batches, 1) if batches else 0.0,
            "hold_ms": round(1000 * d["hold_s"] / d["holds"], 2) if d["holds"] else 0.0,
            "forced": d["forced"],
            "restarted": name in restarted,
        }
    return spent


def _hops(samples: list[tuple[float, float, str, float]]) -> dict[str, dict[str, float | None]]:
    hops: dict[str, dict[str, float | None]] = {}
    for spec in DECISIONS:
        mine = [s for s in samples if s[2] == spec.name]
        total = np.array([s[1] for s in mine])
        decided = np.array([s[3] for s in mine])
        after = total - decided
        hops[spec.name] = {
            "n": float(len(mine)),
            "p50_ms": _pct(total, 50), "p99_ms": _pct(total, 99),
            "to_produce_p50_ms": _pct(decided, 50), "to_produce_p99_ms": _pct(decided, 99),
            "produce_to_read_p50_ms": _pct(after, 50), "produce_to_read_p99_ms": _pct(after, 99),
        }  # fmt: skip
    return hops


def _pct(values: np.ndarray, q: float) -> float | None:
    return float(np.percentile(values, q) * 1000) if values.size else None


def format_ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"
