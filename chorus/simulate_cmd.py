"""`chorus simulate`: run a simulated agent fleet from a scenario against Kafka."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

import click

from processors.runtime import Settings
from processors.runtime.security import client_config
from simulator import BrokerUnreachable, FleetLink, Progress, RunSummary, ScenarioError, Simulation, load_scenario, run

from .record_cmd import write_manifest

NON_TTY_PROGRESS_EVERY_S = 5.0


def _speed(value: str) -> float | None:
    if value.lower() in ("max", "0"):
        return None
    try:
        speed = float(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a number or 'max'") from None
    if not speed > 0:
        raise click.BadParameter("must be positive, or 'max'")
    return speed


@click.command()
@click.option("--scenario", "scenario_ref", required=True, metavar="NAME|PATH",
              help="A shipped scenario (clean, hoarder, flood, mixed, cascade, large) or a YAML file.")
@click.option("--agents", type=click.IntRange(5, 100_000), default=None, help="Override the fleet size.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Override the simulated seconds to run.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Override the scenario's seed.")
@click.option("--run-id", default=None, help="Run id stamped on every event (default: CHORUS_RUN_ID, 'live').")
@click.option("--speed", default="1", show_default=True, metavar="X|max",
              help="Simulated time runs X times faster than the wall clock; 'max' as fast as possible.")
@click.option("--no-gate", is_flag=True,
              help="The resource manager takes agent.intentions directly instead of agent.intentions.admitted.")
def simulate(
    scenario_ref: str, agents: int | None, duration: float | None, seed: int | None, run_id: str | None,
    speed: str, no_gate: bool,
) -> None:
    """Simulate a fleet: intentions and vitals to Kafka, infections to sim.truth.

    Agents obey quarantine decisions for this run id (except defiant ones). Without
    --no-gate, resources are granted only to intentions the quarantine gate admits,
    so run the quarantine processor too or every claim waits.
    """
    pace = _speed(speed)
    settings = Settings()
    try:
        scenario = load_scenario(scenario_ref).with_overrides(agents=agents, duration=duration, seed=seed)
    except ScenarioError as exc:
        raise click.BadParameter(str(exc), param_hint="--scenario") from exc
    run_id = run_id or settings.run_id
    if not run_id or any(c.isspace() for c in run_id):
        raise click.BadParameter("must be non-empty and without whitespace", param_hint="--run-id")
    link = FleetLink(settings.kafka_bootstrap_servers, run_id, gate=not no_gate, client=client_config(settings))
    try:
        link.check(timeout_s=settings.sim_broker_timeout_s)
    except BrokerUnreachable as exc:
        link.close(timeout_s=0)
        raise click.ClickException(str(exc)) from exc
    sim = Simulation(scenario, run_id, gate=not no_gate)
    mode = "no gate: resources take agent.intentions" if no_gate else "gated: resources take agent.intentions.admitted"
    click.echo(
        f"simulating {scenario.name!r}: {sim.n} agents, {scenario.duration:g}s simulated, seed {scenario.seed}, "
        f"run {run_id!r}, speed {speed}, {mode}",
        err=True,
    )
    capacities = {name: cap for name, cap in zip(sim.resource_names, sim.capacity.tolist(), strict=True)}
    click.echo(f"resource capacities (for the conflict processor): CHORUS_CONFLICT_CAPACITIES='{json.dumps(capacities)}'",
               err=True)
    write_manifest(run_id, scenario=scenario.name, seed=scenario.seed, agents=sim.n, capacities=capacities)
    summary = run(sim, link, speed=pace, progress=_progress_printer())
    _print_summary(summary, gated=not no_gate)
    if summary.interrupted:
        sys.exit(130)
    if not summary.ok:
        sys.exit(1)


def _progress_printer() -> Callable[[Progress], None]:
    tty = sys.stderr.isatty()
    last = [0.0]

    def show(p: Progress) -> None:
        line = (
            f"sim {p.sim_time_s:7.1f}/{p.duration_s:g}s  {p.events_per_s:9,.0f} ev/s  {p.events:11,} events  "
            f"granted {p.granted:,} denied {p.denied:,}  suffering {p.suffering_healthy}/{p.healthy}  "
            f"quarantined {p.quarantined}"
        )
        if tty:
            click.echo("\r" + line + "\x1b[K", nl=False, err=True)
        elif time.monotonic() - last[0] >= NON_TTY_PROGRESS_EVERY_S or p.sim_time_s >= p.duration_s:
            last[0] = time.monotonic()
            click.echo(line, err=True)

    return show


def _print_summary(s: RunSummary, *, gated: bool) -> None:
    if sys.stderr.isatty():
        click.echo("", err=True)
    state = "interrupted" if s.interrupted else "done"
    click.echo(f"{state}: run {s.run_id!r}, scenario {s.scenario!r}, {s.agents} agents, {s.sim_time_s:g}s simulated "
               f"in {s.wall_s:.1f}s wall")
    for topic, count in s.produced.items():
        click.echo(f"  {topic:20} {count:>12,}")
    click.echo(f"  {'total':20} {s.events:>12,}  ({s.events_per_s:,.0f} events/s)")
    click.echo(f"  resources: {s.granted:,} granted, {s.denied:,} denied; "
               f"peak share of healthy agents suffering: {s.peak_suffering_share:.0%}; "
               f"healthy agents degraded: {s.degraded_healthy:,}")
    if gated:
        click.echo(f"  admitted intentions received from the gate: {s.admitted_received:,}"
                   + ("  (is the quarantine processor running? or use --no-gate)" if s.admitted_received == 0 else ""))
    click.echo(f"  quarantine decisions applied: {s.quarantine_decisions:,}")
    if s.skipped_inputs:
        click.echo(f"  skipped {s.skipped_inputs:,} undecodable or unknown input message(s)")
    if s.delivery_errors or s.undelivered:
        click.echo(f"  DELIVERY FAILED: {s.undelivered:,} undelivered; errors: {s.delivery_errors}")
