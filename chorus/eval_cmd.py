"""`chorus eval`: how well the immune system catches infections, scored against ground truth."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from confluent_kafka import KafkaException

from schemas import ChorusError
from simulator import Progress, ScenarioError, load_scenario

from . import stack
from .console import StatusLine
from .evaluation import RECALL_WINDOW_S, score
from .healing_score import score_healing
from .observer import RunView
from .pipeline import PipelineRun, run_scenario


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.command("eval")
@click.option("--scenario", "scenario_ref", required=True, metavar="NAME|PATH",
              help="A shipped scenario (clean, hoarder, flood, mixed, cascade, large) or a YAML file.")
@click.option("--immune", type=click.Choice(["on", "off"]), default="on", show_default=True,
              help="on: the four processors and the gate, then the same run without them for comparison; "
                   "off: only the run without them.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the results as JSON to this file.")
@click.option("--agents", type=click.IntRange(5, 100_000), default=None, help="Override the fleet size.")
@click.option("--duration", type=click.FloatRange(min=1), default=None, help="Override the simulated seconds.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Override the scenario's seed.")
@click.option("--speed", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Simulated time runs this many times faster than the wall clock.")
def eval_(scenario_ref: str, immune: str, json_out: Path | None, agents: int | None, duration: float | None,
          seed: int | None, speed: float) -> None:  # fmt: skip
    """Run a scenario through the real pipeline under a fresh run id and score it.

    Scores the quarantine decisions against sim.truth: time from infection onset to
    quarantine, recall (infected agents quarantined within 10 s of onset), precision,
    false quarantines, gate leaks (admitted intentions of quarantined agents), and
    healthy agents degraded by contention with the immune system on and off.
    """
    try:
        scenario = load_scenario(scenario_ref).with_overrides(agents=agents, duration=duration, seed=seed)
    except ScenarioError as exc:
        raise click.BadParameter(str(exc), param_hint="--scenario") from exc
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    try:
        with stack.running(_say) as services:
            on = None
            if immune == "on":
                _say(f"[1/2] {scenario.name}: immune system on")
                on = run_scenario(scenario, f"eval-{stamp}-on", *services, speed=speed, watch_admitted=True,
                                  progress=_progress(), say=_say)  # fmt: skip
                _say(f"\n[2/2] {scenario.name}: immune system off (for comparison)")
            off = run_scenario(scenario, f"eval-{stamp}-off", *services, speed=speed, immune=False, progress=_progress(), say=_say)
    except (ChorusError, KafkaException) as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        _say("\ninterrupted")
        sys.exit(130)
    _say("")
    results = _results(scenario.name, on, off)
    _print(results)
    if json_out is not None:
        json_out.write_text(json.dumps(results, indent=2) + "\n")
        _say(f"wrote {json_out}")


def _results(name: str, on: PipelineRun | None, off: PipelineRun) -> dict:
    scored = on or off
    view = scored.view
    result = score(view.truth, view.decisions, view.admitted.values())
    return {
        "scenario": name,
        "run_id": scored.summary.run_id,
        "immune": on is not None,
        "recall": result.recall,
        "precision": result.precision,
        "false_quarantines": len(result.false_quarantines),
        "gate_leaks": result.gate_leaks,
        "time_to_quarantine_s": result.ttq_stats(),
        "degraded_healthy": {
            "immune_on": on.summary.degraded_healthy if on else None,
            "immune_off": off.summary.degraded_healthy,
        },
        "infected": list(result.infected),
        "quarantined": list(result.quarantined),
        "false_quarantined_agents": list(result.false_quarantines),
        "per_agent_time_to_quarantine_s": result.time_to_quarantine_s,
        "healing": score_healing(view.truth, view.decisions, view.healing).report() if on is not None else None,
    }


def _print(r: dict) -> None:
    def fmt(value) -> str:  # noqa: ANN001
        return "n/a" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)

    ttq = r["time_to_quarantine_s"]
    rows = [
        ("scenario", r["scenario"]),
        ("run id", r["run_id"]),
        ("infected", f"{len(r['infected'])} ({', '.join(r['infected'][:6])}{' ...' if len(r['infected']) > 6 else ''})"),
        (f"recall (quarantined <= {RECALL_WINDOW_S:g} s)", fmt(r["recall"])),
        ("precision", fmt(r["precision"])),
        ("false quarantines", fmt(r["false_quarantines"])),
        ("gate leaks", fmt(r["gate_leaks"])),
        ("time to quarantine p50/p95/max (s)", "/".join(fmt(ttq[k]) for k in ("p50", "p95", "max"))),
        ("healthy degraded, immune on", fmt(r["degraded_healthy"]["immune_on"])),
        ("healthy degraded, immune off", fmt(r["degraded_healthy"]["immune_off"])),
    ]
    if r.get("healing"):
        rows += _healing_rows(r["healing"], fmt)
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        click.echo(f"{label:<{width}}  {value}")


def _healing_rows(h: dict, fmt) -> list[tuple[str, str]]:  # noqa: ANN001 - the formatter above
    def figures(prefix: str, f: dict) -> list[tuple[str, str]]:
        ttc = f["time_to_cure_s"]
        return [
            (f"{prefix}cured / infections", f"{f['cured']}/{f['infections']} ({fmt(f['share_cured'])})"),
            (f"{prefix}quarantine -> verified cure p50/max (s)", f"{fmt(ttc['p50'])}/{fmt(ttc['max'])}"),
            (f"{prefix}healing actions per cure", fmt(f["actions_per_cure"])),
        ]

    rows = figures("healing: ", h) + [("healing: released uncured (must be 0)", fmt(h["released_uncured"]))]
    if len(h["waves"]) > 1:
        for n, wave in enumerate(h["waves"], 1):
            rows += figures(f"  wave {n}: ", wave)
    return rows


def _progress():  # noqa: ANN202 - a closure
    status = StatusLine()

    def show(p: Progress, view: RunView) -> None:
        line = (
            f"  sim {p.sim_time_s:6.1f}/{p.duration_s:g}s  {p.events_per_s:8,.0f} ev/s  "
            f"decisions {len(view.decisions)}  suffering {p.suffering_healthy}/{p.healthy}"
        )
        status.show(line, final=p.sim_time_s >= p.duration_s)

    return show
