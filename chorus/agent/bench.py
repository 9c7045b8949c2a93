"""What the SDK costs, on the real broker with the real quarantine gate.

    python -m chorus.agent.bench [--intents 300] [--no-spawn]

1. `intend` round trip through the gate: the SDK's `await agent.intend(...)` (publish, the
   gate's decision, the admitted intention read back) against a bare confluent-kafka client doing
   the same (produce one intention, read `agent.intentions.admitted` until it is there), alternated
   one by one so both see the same load. The difference is what the SDK adds.
2. Vitals: the cost the meter adds to each wrapped call (sync and async, no-op bodies), and the
   cost of publishing one tick's Vitals.

Spawns `chorus worker quarantine` for a fresh run id (unless --no-spawn: then run it yourself
with that CHORUS_RUN_ID). Prints wall-clock figures with CPU seconds and the load average,
because this machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import timeit
import uuid
from datetime import UTC, datetime

from confluent_kafka import Consumer, Producer, TopicPartition

from processors.runtime.settings import Settings
from schemas import ADMITTED, INTENTIONS, PARTITIONER, Intention, encode, partition_for

from .agent import Agent
from .config import kafka_config
from .meter import CallStats, Meter


def _pct(xs: list[float]) -> str:
    xs = sorted(xs)
    p = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1000  # noqa: E731
    return f"p50 {p(0.5):6.1f} ms  p99 {p(0.99):6.1f} ms  mean {statistics.fmean(xs) * 1000:6.1f} ms  (n={len(xs)})"


class RawClient:
    """The least a client must do for a gated intention, with nothing of the SDK."""

    def __init__(self, settings: Settings, agent_id: str) -> None:
        self.settings, self.agent_id = settings, agent_id
        self.producer = Producer(kafka_config(settings) | {"partitioner": PARTITIONER, "linger.ms": 0})
        self.consumer = Consumer(
            kafka_config(settings) | {"group.id": f"bench-raw-{uuid.uuid4().hex}", "enable.auto.commit": False}
        )
        count = len(self.consumer.list_topics(ADMITTED.name, timeout=10).topics[ADMITTED.name].partitions)
        tp = TopicPartition(ADMITTED.name, partition_for(agent_id.encode(), count))
        _low, high = self.consumer.get_watermark_offsets(tp, timeout=10)
        self.consumer.assign([TopicPartition(tp.topic, tp.partition, high)])

    def intend(self) -> None:
        event = Intention(
            event_id=uuid.uuid4().hex,
            occurred_at=datetime.now(UTC),
            run_id=self.settings.run_id,
            producer="bench-raw",
            agent_id=self.agent_id,
            action="acquire",
            resource="bench",
            amount=1.0,
        )
        self.producer.produce(INTENTIONS.name, encode(event), INTENTIONS.key_of(event))
        self.producer.poll(0)
        wanted = event.event_id.encode()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.1)
            if msg is not None and not msg.error() and wanted in msg.value():
                return
        raise TimeoutError("the gate did not admit the raw client's intention within 30 s")

    def close(self) -> None:
        self.producer.flush(10)
        self.consumer.close()


async def round_trips(settings: Settings, n: int) -> None:
    raw = await asyncio.to_thread(RawClient, settings, "bench-raw")
    sdk_times: list[float] = []
    raw_times: list[float] = []
    async with Agent("bench-sdk", settings, vitals=False) as agent:
        for _ in range(10):  # warm both paths (and wait for the gate's group to settle)
            await agent.intend("bench", 1.0, timeout=60)
            await asyncio.to_thread(raw.intend)
        cpu0 = time.process_time()
        sdk_cpu = 0.0
        for _ in range(n):
            started, c0 = time.perf_counter(), time.process_time()
            await agent.intend("bench", 1.0)
            sdk_times.append(time.perf_counter() - started)
            sdk_cpu += time.process_time() - c0
            started = time.perf_counter()
            await asyncio.to_thread(raw.intend)
            raw_times.append(time.perf_counter() - started)
        total_cpu = time.process_time() - cpu0
    raw.close()
    print("intend round trip through the gate (publish -> quarantine worker -> admitted read back):")
    print(f"  SDK  agent.intend   {_pct(sdk_times)}")
    print(f"  bare confluent      {_pct(raw_times)}")
    added = [s - r for s, r in zip(sorted(sdk_times), sorted(raw_times), strict=True)]
    print(
        f"  added by the SDK    p50 {statistics.median(added) * 1000:6.1f} ms  p99 "
        f"{sorted(added)[min(len(added) - 1, int(0.99 * len(added)))] * 1000:6.1f} ms"
    )
    print(
        f"  process CPU (all threads, both clients' librdkafka included) while an SDK intend runs: {sdk_cpu / n * 1e6:.0f} us; "
        f"{total_cpu:.2f} s for both clients' {2 * n} round trips, all threads"
    )


def meter_cost() -> None:
    meter = Meter(CallStats())

    def bare() -> None:
        return None

    wrapped = meter(bare)

    async def abare() -> None:
        return None

    awrapped = meter(abare)
    n = 200_000
    t_bare = min(timeit.repeat(bare, number=n, repeat=5, timer=time.process_time)) / n
    t_wrapped = min(timeit.repeat(wrapped, number=n, repeat=5, timer=time.process_time)) / n

    def block() -> None:
        with meter.call():
            pass

    t_block = min(timeit.repeat(block, number=n, repeat=5, timer=time.process_time)) / n

    async def run_async(fn, count: int) -> float:  # type: ignore[no-untyped-def]
        started = time.process_time()
        for _ in range(count):
            await fn()
        return time.process_time() - started

    loop = asyncio.new_event_loop()
    a_bare = min(loop.run_until_complete(run_async(abare, n)) for _ in range(5)) / n
    a_wrapped = min(loop.run_until_complete(run_async(awrapped, n)) for _ in range(5)) / n
    loop.close()
    print("vitals: CPU the meter adds to each measured call (no-op bodies, best of 5 x 200,000, process CPU time):")
    print(f"  sync  @agent.meter      {(t_wrapped - t_bare) * 1e9:6.0f} ns per call")
    print(f"  with agent.meter.call() {(t_block - t_bare) * 1e9:6.0f} ns per call")
    print(f"  async @agent.meter      {(a_wrapped - a_bare) * 1e9:6.0f} ns per call")


async def publish_cost(settings: Settings) -> None:
    async with Agent("bench-vitals", settings, gated=False, vitals=False) as agent:
        for _ in range(50):
            await agent.publish_vitals()
        n = 2000
        cpu0, started = time.process_time(), time.perf_counter()
        acks = []
        for _ in range(n):
            agent.stats.end(agent.stats.begin(), False)
            acks.append(asyncio.ensure_future(agent.publish_vitals()))
        await asyncio.gather(*acks)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
    print(
        f"  publishing one tick's Vitals: {wall / n * 1e6:.0f} us wall, {cpu / n * 1e6:.0f} us CPU "
        f"(all threads) each, over {n} ticks: at one tick per second, per call that is this divided by the calls per second"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--intents", type=int, default=300)
    ap.add_argument("--no-spawn", action="store_true")
    args = ap.parse_args()
    print(
        f"load average before: {os.getloadavg()[0]:.1f} / {os.getloadavg()[1]:.1f} / {os.getloadavg()[2]:.1f}, cores {os.cpu_count()}"
    )
    meter_cost()
    base = Settings()
    if args.no_spawn:
        asyncio.run(publish_cost(base))
        asyncio.run(round_trips(base, args.intents))
    else:
        import tempfile
        from pathlib import Path

        from chorus import admin
        from chorus.pipeline import Workers

        admin.create_topics(base.kafka_bootstrap_servers)
        run_id = f"bench-sdk-{uuid.uuid4().hex[:8]}"
        settings = base.model_copy(update={"run_id": run_id})
        workers = Workers(
            base.kafka_bootstrap_servers, base.redis_url, run_id, Path(tempfile.mkdtemp()), names=("quarantine",)
        )
        try:
            workers.start()
            workers.wait_ready()
            asyncio.run(publish_cost(settings))
            asyncio.run(round_trips(settings, args.intents))
        finally:
            workers.stop()
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
