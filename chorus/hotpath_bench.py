"""`python -m chorus.hotpath_bench`: CPU per event of the hot path's parts, in process (no Kafka; Redis with --store).

Over the stream `chorus bench` pre-fills (vitals of a healthy fleet with some sick agents, and intentions):
decoding with pydantic alone and with `schemas.decode` (msgspec first), and the baseline step in batches
of a few events per agent as the runner hands them over, also with the stream's ticks 30 min apart in event
time (each agent's time-of-day profile fills, as in a fleet that has run for days). The collector is set up
as the worker sets it.
Prints CPU microseconds per event (median of rounds) and a digest of every output and final state, so two
versions of the step can be checked for identical results. With `--store`, also the client CPU of the
state store's round trips (read, write, trim) per entity, on the Redis of REDIS_URL, at 10, 100 and 1,000
entities a batch, through the worker's own client. With `--runner`, the baseline worker's whole batch
(`BatchRunner.process`: decode, fences, step, state round trips; outputs to a sender that drops them) per
event, each agent once a batch at 10, 100 and 1,000 agents, with the state cache of the worker's settings
and with none (every entity read and parsed each batch); and at 100 agents whose samples are 30 min apart,
measured after 200 batches (four days: each agent's time-of-day profile full, as in a fleet that has run
for days), with the size of such an agent's stored state. Numbers only: nothing here is asserted.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import itertools
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import click

from processors.baseline.app import make_processor
from processors.runtime import BatchRunner, Record, Settings
from processors.runtime.redisclient import async_client
from processors.runtime.statecodec import StateCodec
from processors.runtime.store import EntityRef, StateStore, Write
from schemas import VITALS, Intention, Vitals, decode, encode

from .bench_cmd import T0, intentions_stream, vitals_stream


def _cpu_us(work: Callable[[], object], n: int) -> float:
    started = time.process_time()
    work()
    return (time.process_time() - started) / n * 1e6


def _steps(processor: Any, by_agent: dict[str, list[Vitals]], per_batch: int, states: dict, outputs: Any) -> None:
    """Each agent's vitals through the step, a few at a time, in rounds across the fleet (as batches do)."""
    for at in range(0, max(len(vs) for vs in by_agent.values()), per_batch):
        for agent, vs in by_agent.items():
            step = processor.step(agent, states.get(agent), vs[at : at + per_batch])
            states[agent] = step.state
            for out in step.outputs:
                outputs.update(encode(out.event))


def _later(v: Vitals, every_s: int) -> Vitals:
    """The sample as if the stream's ticks (one second apart) were `every_s` apart in event time."""
    return v.model_copy(update={"occurred_at": T0 + (v.occurred_at - T0) * every_s})


@click.command()
@click.option("--events", type=int, default=60_000, show_default=True)
@click.option("--agents", type=int, default=500, show_default=True)
@click.option("--per-batch", type=int, default=4, show_default=True, help="Events of one agent per step call.")
@click.option("--rounds", type=int, default=3, show_default=True)
@click.option("--store/--no-store", default=False, show_default=True, help="Also the state store's round trips.")
@click.option(
    "--runner/--no-runner", default=False, show_default=True, help="Also the baseline runner's whole batch, on Redis."
)
def main(events: int, agents: int, per_batch: int, rounds: int, store: bool, runner: bool) -> None:
    processor = make_processor(Settings())
    codec = StateCodec(processor.state_model)
    vitals = [encode(v) for _, v in vitals_stream("bench", events, agents)]
    intentions = [encode(i) for _, i in intentions_stream("bench", events, agents)]
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)  # as processors.runtime.app sets it for a worker
    figures: dict[str, list[float]] = {}
    digest = ""
    for _ in range(rounds):
        for name, raws, model in (("vitals", vitals, Vitals), ("intention", intentions, Intention)):
            figures.setdefault(f"decode {name}, pydantic", []).append(
                _cpu_us(lambda raws=raws, model=model: [model.model_validate_json(r) for r in raws], events)
            )
            figures.setdefault(f"decode {name}, schemas.decode", []).append(
                _cpu_us(lambda raws=raws, model=model: [decode(model, r) for r in raws], events)
            )
        by_agent: dict[str, list[Vitals]] = {}
        for v in (decode(Vitals, r) for r in vitals):
            by_agent.setdefault(v.agent_id, []).append(v)
        outputs = hashlib.sha256()
        states: dict[str, Any] = {}
        step_us = _cpu_us(lambda: _steps(processor, by_agent, per_batch, states, outputs), events)  # noqa: B023
        figures.setdefault("baseline step per vitals", []).append(step_us)
        for agent in sorted(states):
            outputs.update(codec.encode(states[agent]))
        digest = outputs.hexdigest()[:16]
        # The bench's stream spans minutes of event time; a fleet that has run for days carries a full
        # time-of-day profile per metric (48 buckets), which every step's working copy used to copy.
        spread = {a: [_later(v, 1800) for v in vs] for a, vs in by_agent.items()}
        step_us = _cpu_us(lambda: _steps(processor, spread, per_batch, {}, hashlib.sha256()), events)  # noqa: B023
        figures.setdefault("baseline step per vitals, 30 min apart", []).append(step_us)
    for name, values in figures.items():
        click.echo(f"{name:<36}{statistics.median(values):>8.2f} us CPU per event")
    click.echo(f"outputs and final states: sha256 {digest}")
    if store:
        for entities, us in asyncio.run(_store_round_trips(Settings().redis_url, rounds)).items():
            click.echo(f"store read+write+trim, {entities:>5} a batch{statistics.median(us):>8.2f} us CPU per entity")
    if runner:
        runs, mature_bytes = asyncio.run(_runner_batches(Settings(), rounds))
        for (agents_a_batch, every_s, cache), us in runs.items():
            spacing = "30 min apart" if every_s > 1 else "1 s apart"
            click.echo(
                f"baseline runner, {agents_a_batch:>5} agents a batch, {spacing:<12}, state cache {cache:>6}"
                f"{statistics.median(us):>8.2f} us CPU per event"
            )
        click.echo(f"stored baseline state of an agent with four days of samples: {mature_bytes} bytes")


async def _store_round_trips(redis_url: str, rounds: int) -> dict[int, list[float]]:
    """A batch's state round trips as the runner makes them, a ~1 kB state per entity, in a throwaway run."""
    client = async_client(redis_url, read_timeout_s=None)
    store = StateStore(client, "hotpath-bench", 100)
    run_id, offsets, state = f"hotpath-{uuid.uuid4().hex[:8]}", itertools.count(1), '{"x": "' + "y" * 1000 + '"}'
    figures: dict[int, list[float]] = {}
    try:
        for _ in range(rounds):
            for entities in (10, 100, 1000):
                refs = [EntityRef(run_id, f"agent:{i}") for i in range(entities)]
                batches = max(3, 3000 // entities)
                started = time.process_time()
                for _ in range(batches):
                    snaps = await store.read(refs)
                    await store.write(
                        [
                            Write(
                                r, snaps[r].version, {"f:agent.vitals:0": next(offsets)}, state, ("a line",), b"[]", b"x"
                            )
                            for r in refs
                        ]
                    )
                    await store.trim([(r, snaps[r].version + 1) for r in refs])
                figures.setdefault(entities, []).append((time.process_time() - started) / batches / entities * 1e6)
    finally:
        await _drop_run(client, run_id)
        await client.aclose()
    return figures


async def _drop_run(client: Any, run_id: str) -> None:
    """Delete a throwaway run's keys, a thousand at a time."""
    keys = [k async for k in client.scan_iter(f"*{run_id}*")]
    for at in range(0, len(keys), 1000):
        await client.delete(*keys[at : at + 1000])


RUNNER_SHAPES = (  # agents a batch, batches measured, after how many, seconds between an agent's samples
    (10, 200, 5, 1),
    (100, 40, 5, 1),
    (1000, 6, 5, 1),
    (100, 40, 200, 1800),  # four days of samples first: the time-of-day profile is full
)


async def _runner_batches(settings: Settings, rounds: int) -> tuple[dict[tuple[int, int, int], list[float]], int]:
    """The baseline worker's batches, each agent once a batch (the shape of a light load over a big fleet):
    CPU us per event by (agents, sample spacing, cache size), and the stored state of a days-old agent."""
    client = async_client(settings.redis_url, read_timeout_s=None)
    processor = make_processor(settings)
    figures: dict[tuple[int, int, int], list[float]] = {}
    mature_bytes = 0

    async def drop(messages: object) -> None:
        pass

    try:
        for _ in range(rounds):
            for agents, batches, warm, every_s in RUNNER_SHAPES:
                for cache in (settings.state_cache_entities, 0):
                    run_id = f"hotpath-{uuid.uuid4().hex[:8]}"
                    store = StateStore(client, processor.name, settings.history_cap)
                    runner = BatchRunner(processor, store, drop, run_id=run_id, state_cache=cache)
                    stream = vitals_stream(run_id, agents * (batches + warm), agents)
                    records = [encode(_later(v, every_s) if every_s > 1 else v) for _, v in stream]
                    cut = [
                        [Record(VITALS.name, i % 16, at + i, None, raw) for i, raw in enumerate(records[at : at + agents])]
                        for at in range(0, len(records), agents)
                    ]
                    try:
                        for batch in cut[:warm]:  # every agent known: its first read is not the steady state
                            await runner.process(batch)
                        started = time.process_time()
                        for batch in cut[warm:]:
                            await runner.process(batch)
                        used = time.process_time() - started
                        if every_s > 1:
                            mature_bytes = len((await store.get(run_id, "bench-0")).state_raw or b"")
                    finally:
                        await _drop_run(client, run_id)
                    figures.setdefault((agents, every_s, cache), []).append(used / (batches * agents) * 1e6)
    finally:
        await client.aclose()
    return figures, mature_bytes


if __name__ == "__main__":
    main()
