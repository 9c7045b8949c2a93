"""Throughput benchmark: `python -m simulator.bench [--agents 1000 --agents 10000] [--duration S]`.

Runs the `large` scenario's fleet (with its chaos) at full speed, without the gate, and
prints events/s: once for generating the events alone, once end to end into the broker
at KAFKA_BOOTSTRAP_SERVERS including the final flush. It produces into throwaway
copies of the topics (same partitions, deleted afterwards), so that processors running
against the broker do not have to wade through a million benchmark events.
"""

from __future__ import annotations

import time
import uuid

import click
from confluent_kafka.admin import AdminClient, NewTopic

from processors.runtime import Settings
from processors.runtime.security import client_config
from schemas import INTENTIONS, QUARANTINE, TRUTH, VITALS

from .engine import Simulation
from .kafka_io import FleetLink
from .runner import run
from .scenario import load_scenario

TOPICS = (INTENTIONS, VITALS, TRUTH, QUARANTINE)


@click.command()
@click.option("--agents", "fleet_sizes", type=int, multiple=True, default=(1_000, 10_000), show_default=True)
@click.option("--duration", type=float, default=30.0, show_default=True, help="Simulated seconds per measurement.")
@click.option("--scenario", "scenario_ref", default="large", show_default=True)
def main(fleet_sizes: tuple[int, ...], duration: float, scenario_ref: str) -> None:
    bootstrap = Settings().kafka_bootstrap_servers
    base = load_scenario(scenario_ref)
    prefix = f"bench-{uuid.uuid4().hex[:8]}."
    admin = AdminClient(client_config(Settings()))
    names = [prefix + spec.name for spec in TOPICS]
    for future in admin.create_topics([NewTopic(prefix + s.name, s.partitions, 1) for s in TOPICS]).values():
        future.result(timeout=30)
    click.echo(f"scenario {base.name!r}, {duration:g}s simulated per run, broker {bootstrap}, topics {prefix}*")
    click.echo("(ev/cpu-s: events per CPU-second of this process, librdkafka threads included; it does not depend")
    click.echo(" on what else the machine is running, while ev/s does)")
    click.echo(f"{'agents':>8} {'events':>10} {'generate ev/s':>14} {'kafka ev/s':>12} {'kafka ev/cpu-s':>15} {'wall s':>7}")
    try:
        time.sleep(1.0)  # let the new topics' metadata settle
        for n in fleet_sizes:
            scenario = base.with_overrides(agents=n, duration=duration)
            sim = Simulation(scenario, "bench", gate=False)
            started = time.perf_counter()
            generated = 0
            while not sim.done:
                generated += sim.step().events
            gen_rate = generated / (time.perf_counter() - started)
            link = FleetLink(bootstrap, "bench", gate=False, topic_prefix=prefix, client=client_config(Settings()))
            link.check()
            cpu_started = time.process_time()
            summary = run(Simulation(scenario, "bench", gate=False), link, speed=None)
            cpu_rate = summary.events / max(time.process_time() - cpu_started, 1e-9)
            if not summary.ok:
                raise click.ClickException(f"delivery failed: {summary.delivery_errors}, {summary.undelivered} undelivered")
            click.echo(
                f"{n:>8,} {summary.events:>10,} {gen_rate:>14,.0f} {summary.events_per_s:>12,.0f} {cpu_rate:>15,.0f} "
                f"{summary.wall_s:>7.1f}"
            )
    finally:
        for future in admin.delete_topics(names).values():
            future.result(timeout=30)


if __name__ == "__main__":
    main()
