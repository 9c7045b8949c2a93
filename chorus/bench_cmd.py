"""`chorus bench`: sustained throughput of each processor next to a raw Kafka passthrough, measured in the same run.

For each processor: pre-fill its input topics with a fresh run's events, then
1. a raw confluent-kafka consume->produce passthrough over exactly those messages (the ceiling);
2. a bare Faust app doing nothing but `take_events` over the same messages (what Faust's
   stream machinery alone allows: the ceiling of any Faust processor);
3. the real processor (`chorus worker NAME`, its own process and consumer group) over the same
   messages, its progress read from its Prometheus counter `chorus_events_done_total`;
and report events/s for each and the processor's ratio to the passthrough. A new processor is one
entry in TARGETS. Then the full pipeline at fixed offered loads (`chorus.pipeline_bench`).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import redis
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from processors.conflict import CLAIMS
from processors.runtime import Settings, start_group_at_end
from processors.runtime.kafka import commit_group_offsets, end_offsets
from processors.runtime.security import client_config, faust_credentials
from schemas import (
    ANOMALIES,
    COMMANDS,
    CONFLICTS,
    INTENTIONS,
    PARTITIONER,
    QUARANTINE,
    TRUST,
    VITALS,
    Anomaly,
    Event,
    Intention,
    TopicSpec,
    Vitals,
    encode,
)

from . import stack
from .pipeline_bench import bench_pipeline, format_ms
from .probe import free_port, scrape, worker_counters

PASSTHROUGH_TOPIC = "chorus.bench.passthrough"
T0 = datetime(2026, 1, 1, tzinfo=UTC)

Generator = Callable[[str, int, int], Iterator[tuple[TopicSpec, Event]]]


def vitals_stream(run_id: str, events: int, agents: int) -> Iterator[tuple[TopicSpec, Event]]:
    rnd = random.Random(11)
    for i in range(events):
        agent, tick = f"bench-{i % agents}", i // agents
        sick = agent.endswith("7") and tick > 30 and tick % 40 < 10  # some anomalies to decide on
        yield (
            VITALS,
            Vitals(
                event_id=f"{run_id}-v{i}",
                occurred_at=T0 + timedelta(seconds=tick),
                run_id=run_id,
                producer="bench",
                agent_id=agent,
                latency_ms=(900.0 if sick else 100 + rnd.gauss(0, 5)),
                error_rate=0.01,
                queue_depth=3 + rnd.random(),
                cpu=0.4 + rnd.random() / 10,
                requests_per_s=20 + rnd.random(),
            ),
        )


def trust_stream(run_id: str, events: int, agents: int) -> Iterator[tuple[TopicSpec, Event]]:
    for i in range(events):
        agent, at = f"bench-{i % agents}", T0 + timedelta(seconds=i // agents)
        if i % 10 == 0:  # one anomaly in ten: each one a TrustChange and a history entry
            yield (
                ANOMALIES,
                Anomaly(
                    event_id=f"{run_id}-a{i}",
                    occurred_at=at,
                    run_id=run_id,
                    producer="bench",
                    agent_id=agent,
                    metric="latency_ms",
                    value=900,
                    mean=100,
                    stddev=5,
                    zscore=160,
                    severity="low",
                    sustained_samples=3,
                ),
            )
        else:
            yield (
                INTENTIONS,
                Intention(
                    event_id=f"{run_id}-i{i}",
                    occurred_at=at,
                    run_id=run_id,
                    producer="bench",
                    agent_id=agent,
                    action="acquire",
                    resource=f"r{i % 7}",
                    amount=1,
                ),
            )


def intentions_stream(run_id: str, events: int, agents: int) -> Iterator[tuple[TopicSpec, Event]]:
    """A healthy fleet claiming and releasing four resources: every intention goes through the gate,
    and through the conflict windows."""
    for i in range(events):
        agent, at = f"bench-{i % agents}", T0 + timedelta(milliseconds=10 * i)
        yield (
            INTENTIONS,
            Intention(
                event_id=f"{run_id}-i{i}",
                occurred_at=at,
                run_id=run_id,
                producer="bench",
                agent_id=agent,
                action="acquire" if (i // agents) % 2 == 0 else "release",
                resource=f"r{i % 4}",
                amount=1,
                hold_s=5,
            ),
        )


@dataclass(frozen=True)
class Target:
    name: str
    sources: tuple[TopicSpec, ...]  # every topic the processor consumes (its group is positioned on all)
    generate: Generator


TARGETS: dict[str, Target] = {
    "baseline": Target("baseline", (VITALS,), vitals_stream),
    "trust": Target("trust", (ANOMALIES, CONFLICTS, INTENTIONS, QUARANTINE, COMMANDS), trust_stream),
    "conflict": Target("conflict", (INTENTIONS, CLAIMS), intentions_stream),
    "quarantine": Target("quarantine", (TRUST, CONFLICTS, ANOMALIES, COMMANDS, INTENTIONS), intentions_stream),
}


@dataclass
class ScaleOut:
    workers: int
    events_per_s: float  # all workers together, wall clock
    per_worker_events: list[float]  # how the group split the work: each worker's share of the events
    per_worker_events_per_cpu_s: list[float]


@dataclass
class Result:
    processor: str
    events: int
    passthrough_events_per_s: float
    faust_take_events_per_s: float
    processor_events_per_s: float
    ratio: float
    # Events per CPU-second of the process doing the work: far less sensitive to a noisy host than events/s.
    passthrough_events_per_cpu_s: float = 0.0
    faust_take_events_per_cpu_s: float = 0.0
    processor_events_per_cpu_s: float = 0.0
    target_ratio: float = 0.5
    # Redis after the run: every key of the processor for this run (state hashes, histories, the book...).
    agents: int = 0
    redis_keys: int = 0
    redis_bytes: int = 0
    # With --replicas N: the same processor as N workers of one group over a fresh pre-fill.
    scale_out: ScaleOut | None = None

    @property
    def redis_bytes_per_agent(self) -> float:
        return self.redis_bytes / self.agents if self.agents else 0.0

    @property
    def meets_target(self) -> bool:
        return self.ratio >= self.target_ratio


DEFAULT_LOADS = "1000,5000,10000,20000,40000"


@click.command()
@click.option(
    "--processors",
    "names",
    default=",".join(TARGETS),
    show_default=True,
    help=f"Comma-separated, from: {', '.join(TARGETS)}; 'none' skips this stage.",
)
@click.option("--events", type=int, default=50_000, show_default=True, help="Messages pre-filled per processor.")
@click.option("--agents", type=int, default=500, show_default=True, help="Distinct agents in the generated events.")
@click.option("--ceilings/--no-ceilings", default=True, show_default=True,
              help="Also measure the raw passthrough and the bare Faust loop (--no-ceilings: the processor only, "
                   "e.g. for Redis memory at 100,000 agents).")
@click.option("--replicas", type=click.IntRange(min=1), default=1, show_default=True,
              help="Also run each processor as this many workers of one consumer group over a fresh pre-fill: how "
                   "the group splits the partitions, and whether each worker's events per CPU-second hold.")
@click.option("--loads", default=DEFAULT_LOADS, show_default=True,
              help="Offered events/s for the full-pipeline stage, comma-separated; 'none' skips it.")
@click.option("--step-s", type=click.FloatRange(min=1), default=10.0, show_default=True,
              help="Seconds each pipeline load is offered.")
@click.option("--warmup-s", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="Seconds the first pipeline load is offered before the measured loads, not reported (a broker "
                   "just started spends its first minute compiling; 0 = none).")
@click.option(
    "--json",
    "json_out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the results here as JSON.",
)
def bench(
    names: str, events: int, agents: int, ceilings: bool, replicas: int, loads: str, step_s: float, warmup_s: float,
    json_out: Path | None,
) -> None:  # fmt: skip
    """Throughput and latency, in one run so that the numbers compare.

    1. For each processor: a raw confluent-kafka consume->produce passthrough over a
       pre-filled topic (the ceiling for Python here), a bare Faust take_events loop,
       and the processor itself in its own process; events/s, events per CPU-second,
       and the processor's ratio to the passthrough (target >= 50%).
    2. The full pipeline (the four processors and healing) at fixed offered loads: achieved events/s
       and event-to-decision latency p50/p95/p99.
    """
    chosen = [] if names == "none" else [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in TARGETS]
    if unknown:
        raise click.BadParameter(f"unknown processor(s) {unknown}; known: {list(TARGETS)}", param_hint="--processors")
    try:
        offered = [] if loads == "none" else [float(x) for x in loads.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"{loads!r} is not a comma-separated list of numbers", param_hint="--loads") from None
    say = lambda message: click.echo(message, err=True)  # noqa: E731
    with stack.running(say) as (kafka, redis_url):
        # The settings model, and the workers this command starts, read the services from the environment.
        os.environ.update(KAFKA_BOOTSTRAP_SERVERS=kafka, REDIS_URL=redis_url)
        settings = Settings()
        if chosen:
            _ensure_passthrough_topic(kafka)
        results = [_bench_one(TARGETS[n], settings, events, agents, ceilings, replicas) for n in chosen]
        pipeline = bench_pipeline(offered, kafka, redis_url, step_s=step_s, warmup_s=warmup_s, say=say) if offered else []
    click.echo("")
    if results:
        click.echo(
            f"{'processor':<12}{'events':>9}{'passthrough/s':>16}{'bare faust/s':>14}{'processor/s':>14}{'ratio':>8}"
            f"{'  per CPU-second: pass / faust / processor'}"
        )
    for r in results:
        flag = "" if r.meets_target or not ceilings else "  (below the 50% target)"
        click.echo(
            f"{r.processor:<12}{r.events:>9}{r.passthrough_events_per_s:>16,.0f}{r.faust_take_events_per_s:>14,.0f}"
            f"{r.processor_events_per_s:>14,.0f}{r.ratio:>8.0%}  {r.passthrough_events_per_cpu_s:,.0f} / "
            f"{r.faust_take_events_per_cpu_s:,.0f} / {r.processor_events_per_cpu_s:,.0f}{flag}"
        )
    if results:
        click.echo(f"\n{'processor':<12}{'agents':>9}{'redis keys':>12}{'redis bytes':>14}{'bytes/agent':>13}")
    for r in results:
        click.echo(f"{r.processor:<12}{r.agents:>9,}{r.redis_keys:>12,}{r.redis_bytes:>14,}{r.redis_bytes_per_agent:>13,.0f}")
    scaled = [r for r in results if r.scale_out is not None]
    if scaled:
        click.echo(f"\n{'processor':<12}{'workers':>8}{'events/s':>11}  share of events / events per CPU-second, each worker")
    for r in scaled:
        so = r.scale_out
        assert so is not None
        shares = " ".join(f"{n / max(sum(so.per_worker_events), 1):.0%}" for n in so.per_worker_events)
        per_cpu = " ".join(f"{e:,.0f}" for e in so.per_worker_events_per_cpu_s)
        click.echo(f"{r.processor:<12}{so.workers:>8}{so.events_per_s:>11,.0f}  {shares} / {per_cpu}"
                   f"  (one worker: {r.processor_events_per_cpu_s:,.0f} per CPU-second)")  # fmt: skip
    if pipeline:
        click.echo(f"\n{'offered/s':>10}{'achieved/s':>12}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'per CPU-s':>11}"
                   f"{'load avg':>12}")  # fmt: skip
        for p in pipeline:
            click.echo(f"{p.offered_eps:>10,.0f}{p.achieved_eps:>12,.0f}{format_ms(p.p50_ms):>9}{format_ms(p.p95_ms):>9}"
                       f"{format_ms(p.p99_ms):>9}{p.events_per_cpu_s:>11,.0f}{p.loadavg[0]:>7.1f}-{p.loadavg[1]:<4.1f}"
                       f"{'' if p.completed else '  (fell behind)'}")  # fmt: skip
        click.echo("\neach worker per load: CPU-s, batches, mean batch ms / events, mean hold ms of the ordering rule, "
                   "forced releases")  # fmt: skip
        for p in pipeline:
            for name, w in p.workers.items():
                click.echo(f"{p.offered_eps:>10,.0f}  {name:<11}{w['cpu_s']:>7.1f}{w['batches']:>8,.0f}"
                           f"{w['batch_ms']:>8.1f} / {w['batch_events']:<7.1f}{w['hold_ms']:>6.1f}{w['forced']:>6,.0f}"
                           f"{'  (restarted during the load: since the restart)' if w.get('restarted') else ''}")  # fmt: skip
            for name, cpu_s in p.services_cpu_s.items():
                click.echo(f"{p.offered_eps:>10,.0f}  {name:<11}{cpu_s:>7.1f}  (the local service)")
        click.echo("\nwhere a decision's latency goes, ms p50/p99: whole = up to the processor's produce + after it")
        for p in pipeline:
            for topic, h in p.hops.items():
                if h["n"]:
                    click.echo(f"{p.offered_eps:>10,.0f}  {topic:<26} {format_ms(h['p50_ms'])}/{format_ms(h['p99_ms'])}"
                               f" = {format_ms(h['to_produce_p50_ms'])}/{format_ms(h['to_produce_p99_ms'])}"
                               f" + {format_ms(h['produce_to_read_p50_ms'])}/{format_ms(h['produce_to_read_p99_ms'])}"
                               f"  ({h['n']:,.0f} decisions)")  # fmt: skip
    if json_out:
        payload = {
            "measured_at": datetime.now(UTC).isoformat(),
            "passthrough_eps": round(statistics.median(r.passthrough_events_per_s for r in results), 1) if results else None,
            "processors": {
                r.processor: {"eps": r.processor_events_per_s, "ratio": r.ratio, "redis_bytes_per_agent": r.redis_bytes_per_agent}
                for r in results
            },
            "pipeline": [
                {k: v for k, v in asdict(p).items() if k in ("offered_eps", "achieved_eps", "p50_ms", "p95_ms", "p99_ms", "hops",
                                                          "events_per_cpu_s", "loadavg")}
                for p in pipeline
            ],
            "details": {
                "events_per_processor": events,
                "agents": agents,
                "processors": [asdict(r) | {"meets_target": r.meets_target} for r in results],
                "pipeline": [asdict(p) for p in pipeline],
            },
        }
        json_out.write_text(json.dumps(payload, indent=2) + "\n")
        click.echo(f"wrote {json_out}")


def _bench_one(
    target: Target, settings: Settings, events: int, agents: int, ceilings: bool = True, replicas: int = 1
) -> Result:
    bootstrap = settings.kafka_bootstrap_servers
    run_id, start, end, total = _fill(target, settings, events, agents)
    passthrough = passthrough_cpu = bare = bare_cpu = 0.0
    if ceilings:
        click.echo(f"[{target.name}] passthrough over {total:,} messages")
        passthrough, passthrough_cpu = _passthrough(bootstrap, start, end, total)
        click.echo(f"[{target.name}] passthrough: {passthrough:,.0f} events/s; a bare Faust take_events loop next")
        bare, bare_cpu = _bare_faust(settings, start, total)
        click.echo(f"[{target.name}] bare Faust: {bare:,.0f} events/s; starting the processor")
    (processed, processed_cpu), _ = _run_processor(target.name, settings, run_id, total)
    keys, used = redis_usage(settings.redis_url, target.name, run_id)
    scale_out = _scale_out(target, settings, events, agents, replicas) if replicas > 1 else None
    return Result(
        target.name,
        total,
        round(passthrough, 1),
        round(bare, 1),
        round(processed, 1),
        round(processed / passthrough, 3) if passthrough else 0.0,
        round(passthrough_cpu, 1),
        round(bare_cpu, 1),
        round(processed_cpu, 1),
        agents=agents,
        redis_keys=keys,
        redis_bytes=used,
        scale_out=scale_out,
    )


def _fill(
    target: Target, settings: Settings, events: int, agents: int
) -> tuple[str, list[TopicPartition], list[TopicPartition], int]:
    """A fresh run's events in the target's topics, its group positioned before them: (run id, start, end, count)."""
    bootstrap = settings.kafka_bootstrap_servers
    run_id = f"bench-{uuid.uuid4().hex[:10]}"
    group = f"chorus-{target.name}-{run_id}"
    start = start_group_at_end(bootstrap, group, [s.name for s in target.sources])
    click.echo(f"[{target.name}] run {run_id}: pre-filling {events:,} events")
    _prefill(bootstrap, target.generate(run_id, events, agents), events)
    end = end_offsets(bootstrap, [s.name for s in target.sources])
    return run_id, start, end, sum(e.offset - s.offset for s, e in zip(start, end, strict=True))


def _scale_out(target: Target, settings: Settings, events: int, agents: int, replicas: int) -> ScaleOut:
    run_id, _, _, total = _fill(target, settings, events, agents)
    click.echo(f"[{target.name}] {replicas} workers of one group over {total:,} messages")
    (rate, _), workers = _run_processor(target.name, settings, run_id, total, replicas)
    return ScaleOut(
        replicas,
        round(rate, 1),
        [round(n) for n, _ in workers],
        [round(n / max(cpu, 1e-9), 1) for n, cpu in workers],
    )


def redis_usage(url: str, processor: str, run_id: str) -> tuple[int, int]:
    """(keys, bytes) of everything the processor keeps in Redis for one run: MEMORY USAGE of each key
    (SAMPLES 0: every element counted), so bytes per agent can be read beside the fleet size."""
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"chorus:{processor}:*{run_id}*", count=10_000))
        used = 0
        for at in range(0, len(keys), 1000):
            pipe = client.pipeline(transaction=False)
            for key in keys[at : at + 1000]:
                pipe.memory_usage(key, samples=0)
            used += sum(n or 0 for n in pipe.execute())
        return len(keys), used
    finally:
        client.close()


def _prefill(bootstrap: str, stream: Iterator[tuple[TopicSpec, Event]], events: int) -> None:
    producer = Producer(
        {**client_config(bootstrap=bootstrap), "linger.ms": 20, "batch.num.messages": 10000, "partitioner": PARTITIONER}
    )
    with click.progressbar(length=events, label="  pre-fill") as bar:
        for i, (spec, event) in enumerate(stream, 1):
            while True:
                try:
                    producer.produce(spec.name, encode(event), spec.key_of(event))
                    break
                except BufferError:
                    producer.poll(0.05)
            if i % 1000 == 0:
                producer.poll(0)
                bar.update(1000)
        bar.update(events % 1000)
    producer.flush(60)


def _passthrough(
    bootstrap: str, start: list[TopicPartition], end: list[TopicPartition], total: int
) -> tuple[float, float]:
    """Raw consume->produce of the same messages with confluent-kafka: no decode, no state.

    Returns events/s and events per CPU-second (this process, librdkafka's threads included)."""
    consumer = Consumer(
        {**client_config(bootstrap=bootstrap), "group.id": f"bench-pass-{uuid.uuid4().hex[:8]}", "enable.auto.commit": False}
    )
    producer = Producer({**client_config(bootstrap=bootstrap), "linger.ms": 5, "partitioner": PARTITIONER})
    consumer.assign([tp for tp, e in zip(start, end, strict=True) if e.offset > tp.offset])
    stop = {(e.topic, e.partition): e.offset for e in end}
    done = 0
    began = None
    cpu_began = time.process_time()
    with click.progressbar(length=total, label="  passthrough") as bar:
        while done < total:
            batch = consumer.consume(1000, timeout=1.0)
            if began is None and batch:
                began = time.perf_counter()
                cpu_began = time.process_time()
            counted = 0
            for msg in batch:
                if msg.error() or msg.offset() >= stop[(msg.topic(), msg.partition())]:
                    continue
                while True:
                    try:
                        producer.produce(PASSTHROUGH_TOPIC, msg.value(), msg.key())
                        break
                    except BufferError:
                        producer.poll(0.05)
                counted += 1
            producer.poll(0)
            done += counted
            bar.update(counted)
        producer.flush(60)
    elapsed = time.perf_counter() - (began or time.perf_counter())
    cpu = time.process_time() - cpu_began
    consumer.close()
    return total / max(elapsed, 1e-9), total / max(cpu, 1e-9)


def _run_processor(
    name: str, settings: Settings, run_id: str, total: int, workers: int = 1
) -> tuple[tuple[float, float], list[tuple[float, float]]]:
    """The processor as `workers` processes of one consumer group: ((events/s, events per CPU-second) of all of
    them together, and per worker (events it did, CPU-seconds it used) over the measured span)."""
    ports = [free_port() for _ in range(workers)]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers,
        "REDIS_URL": settings.redis_url,
        "CHORUS_RUN_ID": run_id,
        "CHORUS_APP_ID_SUFFIX": f"-{run_id}",
        "CHORUS_LOG_LEVEL": "WARNING",
    }
    if workers > 1:  # nothing is applied until the group has split the partitions among all of them
        env["CHORUS_HOLD_UNTIL_KEY"] = go = f"chorus:bench:{{{run_id}}}:go"
    log_path = Path(tempfile.gettempdir()) / f"chorus-bench-{name}-{run_id}.log"
    procs: list[subprocess.Popen] = []
    with log_path.open("w") as log, contextlib.ExitStack() as cleanup:
        for port in ports:
            proc = subprocess.Popen(
                [sys.executable, "-c", "from chorus.cli import main; main()", "worker", name],
                env={**env, "CHORUS_METRICS_PORT": str(port)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            procs.append(proc)
            cleanup.callback(_stop, proc)
        if workers > 1:
            _wait_split(procs, ports, name, log_path)
            client = redis.Redis.from_url(settings.redis_url)
            client.set(go, 1, ex=3600)
            client.close()
        return _follow(procs, ports, name, total, log_path)


def _wait_split(procs: list[subprocess.Popen], ports: list[int], name: str, log_path: Path) -> None:
    """Until every worker holds some of the group's partitions (its `chorus_assigned_partitions` gauge)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        _require_alive(procs, name, log_path)
        held = [_assigned(port) for port in ports]
        if all(held):
            click.echo(f"  partitions held by each worker: {held}")
            return
        time.sleep(0.2)
    raise click.ClickException(f"{name} workers did not split the partitions within 2 minutes; see {log_path}")


def _require_alive(procs: list[subprocess.Popen], name: str, log_path: Path) -> None:
    for proc in procs:
        if proc.poll() is not None:
            raise click.ClickException(f"{name} worker exited ({proc.returncode}); see {log_path}")


def _assigned(port: int) -> float:
    families = scrape(port) or []
    return sum(s.value for f in families if f.name == "chorus_assigned_partitions" for s in f.samples)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()


def _counters(ports: list[int]) -> tuple[float | None, float, list[tuple[float, float]]]:
    """(events done by all, CPU-seconds of all, per worker (done, cpu)); done is None until every worker answers."""
    each = [worker_counters(port) for port in ports]
    per = [(done or 0.0, cpu) for done, cpu in each]
    up = all(done is not None for done, _ in each)
    return (sum(d for d, _ in per) if up else None), sum(c for _, c in per), per


def _follow(
    procs: list[subprocess.Popen], ports: list[int], name: str, total: int, log_path: Path
) -> tuple[tuple[float, float], list[tuple[float, float]]]:
    """events/s and events per CPU-second between the first and the last completed batch, from the workers' own
    counters (`chorus_events_done_total`, `process_cpu_seconds_total`); when the ordering rule hands the whole
    backlog to one batch, from the last moment the workers answered with nothing done. Also, per worker, the
    events it did and the CPU-seconds it used over that span."""
    first: tuple[float, float, float] | None = None
    idle: tuple[float, float, float] | None = None
    last = (0.0, 0.0, 0.0)
    first_per: list[tuple[float, float]] = []
    idle_per: list[tuple[float, float]] = []
    last_per: list[tuple[float, float]] = []
    idle_since = time.monotonic()
    with click.progressbar(length=total, label=f"  {name}") as bar:
        shown = 0.0
        while last[1] < total:
            _require_alive(procs, name, log_path)
            count, cpu, per = _counters(ports)
            now = time.perf_counter()
            if count == 0:
                idle, idle_per = (now, 0.0, cpu), per  # up, nothing done yet: the start when the backlog goes in one batch
            if count is not None and count > last[1]:
                if first is None:
                    first, first_per = (now, count, cpu), per
                last, last_per = (now, count, cpu), per
                idle_since = time.monotonic()
                bar.update(int(count - shown))
                shown = count
            if time.monotonic() - idle_since > 120:
                raise click.ClickException(f"{name} made no progress for 2 minutes; see {log_path}")
            time.sleep(0.1)
    if first is not None and last[0] <= first[0] and idle is not None:
        first, first_per = idle, idle_per
    if first is None or last[0] <= first[0]:
        raise click.ClickException(f"{name} finished too fast to measure; use more --events")
    events = last[1] - first[1]
    # Per worker from the last moment nothing was done (when known): a worker may finish its share in one poll.
    start_per = idle_per if idle is not None else first_per
    per_worker = [(d1 - d0, c1 - c0) for (d0, c0), (d1, c1) in zip(start_per, last_per, strict=True)]
    return (events / (last[0] - first[0]), events / max(last[2] - first[2], 1e-9)), per_worker


def _bare_faust(settings: Settings, start: list[TopicPartition], total: int) -> tuple[float, float]:
    group = f"bench-faust-{uuid.uuid4().hex[:8]}"
    commit_group_offsets(settings.kafka_bootstrap_servers, group, start)
    env = {
        **os.environ,
        "BENCH_GROUP": group,
        "BENCH_TOPICS": ",".join(dict.fromkeys(tp.topic for tp in start)),
        "BENCH_TOTAL": str(total),
    }
    click.echo("  bare Faust loop running...")
    proc = subprocess.run(
        [sys.executable, "-c", "from chorus.bench_cmd import bare_faust_main; bare_faust_main()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_RATE "):
            return float(line.split()[1]), float(line.split()[2])
    raise click.ClickException(f"bare Faust loop failed: {proc.stderr[-1500:]}")


def bare_faust_main() -> None:
    """A Faust app that only counts what `take_events` hands it (same batch settings as the processors)."""
    import faust
    from faust.worker import Worker

    settings = Settings()
    total = int(os.environ["BENCH_TOTAL"])
    group = os.environ["BENCH_GROUP"]
    app = faust.App(
        group,
        broker=[f"kafka://{h}" for h in settings.kafka_bootstrap_servers.split(",")],
        broker_credentials=faust_credentials(settings),
        store="memory://",
        topic_disable_leader=True,
        topic_allow_declare=False,
        web_enabled=False,
        datadir=str(Path(tempfile.gettempdir()) / group),
        key_serializer="raw",
        value_serializer="raw",
    )
    source = app.topic(*os.environ["BENCH_TOPICS"].split(","), key_serializer="raw", value_serializer="raw")
    seen = {"count": 0, "first": 0.0}

    @app.agent(source)
    async def count(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(settings.batch_max_events, within=settings.batch_within_s):
            if not seen["count"]:
                seen["first"] = time.perf_counter()
                seen["cpu_first"] = time.process_time()
                seen["at_first"] = len(batch)
            seen["count"] += len(batch)
            if seen["count"] >= total:
                elapsed = time.perf_counter() - seen["first"]
                cpu = time.process_time() - seen["cpu_first"]
                counted = seen["count"] - seen["at_first"]
                print(f"BENCH_RATE {counted / max(elapsed, 1e-9)} {counted / max(cpu, 1e-9)}", flush=True)
                os._exit(0)

    Worker(app, loglevel="WARNING", redirect_stdouts=False).execute_from_commandline()


def _ensure_passthrough_topic(bootstrap: str) -> None:
    admin = AdminClient(client_config(bootstrap=bootstrap))
    if PASSTHROUGH_TOPIC in admin.list_topics(timeout=10).topics:
        return
    futures = admin.create_topics([NewTopic(PASSTHROUGH_TOPIC, 8, 1, config={"retention.ms": str(3600_000)})])
    for future in futures.values():
        try:
            future.result(30)
        except Exception as exc:  # created meanwhile by another bench
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
