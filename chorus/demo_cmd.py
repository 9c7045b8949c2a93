"""`chorus demo`: the whole immune system on a simulated fleet, with a live summary and a report."""

from __future__ import annotations

import os
import sys
import time
from datetime import UTC, datetime

import click
from confluent_kafka import KafkaException

from processors.runtime.settings import Settings
from processors.runtime.signing import generate_key_files
from schemas import ChorusError
from simulator import Progress, RunSummary, ScenarioError, load_scenario

from . import admin, stack
from .console import StatusLine
from .observer import RunView, describe, seconds_between
from .pipeline import run_scenario


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.command()
@click.option("--scenario", "scenario_ref", default="hoarder", show_default=True, metavar="NAME|PATH",
              help="A shipped scenario (clean, hoarder, flood, mixed, cascade, large) or a YAML file.")
@click.option("--duration", type=click.FloatRange(min=1), default=None, help="Simulated seconds (default: the scenario's).")
@click.option("--agents", type=click.IntRange(5, 100_000), default=None, help="Fleet size (default: the scenario's).")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Override the scenario's seed.")
@click.option("--speed", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Simulated time runs this many times faster than the wall clock.")
@click.option("--dashboard", is_flag=True, help="Also serve the API and web dashboard (chorus api) and print its URL; "
              "it stays up after the report until Ctrl-C.")
@click.option("--api-port", type=click.IntRange(1, 65535), default=None,
              help="Port of the dashboard (default: CHORUS_API_PORT, 8400).")
@click.option("--fleet-cap", type=click.FloatRange(0, 1), default=None,
              help="Share of the fleet policy may quarantine without an operator (default: CHORUS_QUARANTINE_FLEET_CAP, "
              "0.2); 0 sends every policy quarantine to the approval list.")
def demo(scenario_ref: str, duration: float | None, agents: int | None, seed: int | None, speed: float,
         dashboard: bool, api_port: int | None, fleet_cap: float | None) -> None:
    """Run the four processors against a simulated fleet and explain what they decided.

    Starts the local stack when needed, creates the topics, starts baseline, trust,
    conflict and quarantine as separate processes, runs the simulator through the
    quarantine gate, shows a live summary, and ends with a report: who was infected,
    who was quarantined and when, why (the chain of causes), and healthy agents
    degraded. Ctrl-C stops everything it started.
    """
    try:
        scenario = load_scenario(scenario_ref).with_overrides(agents=agents, duration=duration, seed=seed)
    except ScenarioError as exc:
        raise click.BadParameter(str(exc), param_hint="--scenario") from exc
    run_id = "demo-" + datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    _say(f"demo run {run_id}: scenario {scenario.name!r}, {scenario.agents.count} agents, "
         f"{scenario.duration:g} s simulated at {speed:g}x")
    if fleet_cap is not None:
        os.environ["CHORUS_QUARANTINE_FLEET_CAP"] = str(fleet_cap)  # the workers inherit the environment
    server = None
    try:
        with stack.running(_say) as services:
            if dashboard:
                server = _serve(run_id, *services, api_port)
            try:
                result = run_scenario(scenario, run_id, *services, speed=speed, progress=_live(), say=_say)
                click.echo("", err=True)
                _report(result.view, result.summary)
                if server is not None and not result.summary.interrupted:
                    _say(f"\nthe run is over (processors stopped); dashboard still at {server.url} - Ctrl-C to quit")
                    while True:
                        time.sleep(1)
            finally:
                if server is not None:
                    server.stop()
    except (ChorusError, KafkaException) as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        _say("\ninterrupted")
        sys.exit(130)
    if result.summary.interrupted:
        sys.exit(130)


def _serve(run_id: str, bootstrap: str, redis_url: str, port: int | None):  # noqa: ANN202 - ApiServer, imported late
    """The API on this run, started before the fleet so the dashboard sees it from the first event."""
    from .api.server import ApiServer, tokens_or_generated  # FastAPI and uvicorn only when asked for

    settings = Settings().model_copy(update={"kafka_bootstrap_servers": bootstrap, "redis_url": redis_url})
    if not settings.operator_key:
        # A key for this demo's dashboard: the API signs with it, the processors (which inherit the
        # environment) trust it besides any configured key.
        private, public, _ident = generate_key_files(stack.home() / "runs" / run_id, "dashboard")
        trusted = ",".join(filter(None, (os.environ.get("CHORUS_OPERATOR_PUBLIC_KEYS"), str(public))))
        os.environ["CHORUS_OPERATOR_PUBLIC_KEYS"] = trusted
        settings = settings.model_copy(update={"operator_key": str(private)})
    admin.create_topics(bootstrap)
    tokens, generated = tokens_or_generated(settings)
    server = ApiServer(settings, run_id, tokens, settings.api_host, port or settings.api_port).start()
    login = f"/#token={generated['operate']}" if generated else "/  (log in with a token from CHORUS_API_TOKENS)"
    _say(f"dashboard: {server.url}{login}")
    if generated:
        _say(f"API tokens for this demo: read {generated['read']}  operate {generated['operate']}  (OpenAPI: {server.url}/docs)")
    _say(f"try: chorus status --run-id {run_id}    chorus explain AGENT --run-id {run_id}")
    return server


def _live():  # noqa: ANN202 - a closure
    status = StatusLine()

    def show(p: Progress, view: RunView) -> None:
        low = sum(1 for score in view.trust.values() if score < 60)
        held = view.quarantined_now()
        reasons = ", ".join(f"{agent} ({d.reason})" for agent, d in sorted(held.items())[:4])
        line = (
            f"t={p.sim_time_s:5.0f}s  {p.events_per_s:7,.0f} ev/s  anomalies {view.counts['anomaly']:4}  "
            f"trust<60 {low:3}  conflicts {view.counts['conflict_prediction']:4}  "
            f"quarantined {len(held)}{': ' + reasons if reasons else ''}"
        )
        status.show(line, final=p.sim_time_s >= p.duration_s)

    return show


def _report(view: RunView, summary: RunSummary) -> None:
    first = view.first_quarantine()
    infected = view.infections
    click.echo("\n=== report ===")
    click.echo(f"fleet: {summary.agents} agents; events seen: " + ", ".join(f"{n} {t}" for t, n in sorted(view.counts.items())))
    click.echo(f"\ninfected ({len(infected)}):")
    for agent, truth in sorted(infected.items()):
        decision = first.get(agent)
        if decision is None:
            outcome = "NOT quarantined"
        else:
            outcome = f"quarantined {seconds_between(truth.occurred_at, decision.occurred_at):+.1f} s after onset"
        click.echo(f"  {agent:14} {truth.mode:10} onset {truth.occurred_at:%H:%M:%S}  {outcome}")
    click.echo(f"\nquarantined ({len(first)}):")
    for agent, decision in sorted(first.items(), key=lambda item: item[1].occurred_at):
        tag = "infected" if agent in infected else "HEALTHY (false quarantine)"
        click.echo(f"  {agent:14} at {decision.occurred_at:%H:%M:%S}  {tag}  — {describe(decision)}")
        for level, cause in view.causes(decision):
            click.echo(f"  {'':14} {'  ' * level}<- {describe(cause)}")
    pending = [d for d in view.decisions if d.action == "pending_approval"]
    if pending:
        click.echo(f"\npending operator approval ({len(pending)}): " + ", ".join(sorted({d.agent_id for d in pending})))
    healthy_hit = sorted(agent for agent in first if agent not in infected)
    click.echo(
        f"\nhealthy agents degraded by contention: {summary.degraded_healthy} "
        f"(at the peak {summary.peak_suffering_share:.0%} of the healthy were suffering); "
        f"healthy agents quarantined: {len(healthy_hit)}"
    )
