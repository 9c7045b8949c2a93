"""`chorus eval`: how well the immune system catches infections, scored against ground truth."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click
from confluent_kafka import KafkaException

from schemas import ChorusError
from simulator import Progress, ScenarioError, load_scenario

from . import stack
from .console import StatusLine
from .evaluation import RECALL_WINDOW_S, score, spread, stats
from .healing_score import score_healing
from .observer import RunView
from .pipeline import PipelineRun, run_scenario


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.command("eval")
@click.option("--scenario", "scenario_ref", required=True, metavar="NAME|PATH",
              help="A shipped scenario (clean, hoarder, flood, mixed, cascade, large, mild) or a YAML file.")
@click.option("--immune", type=click.Choice(["on", "off"]), default="on", show_default=True,
              help="on: the four processors and the gate, then the same run without them for comparison; "
                   "off: only the run without them.")
@click.option("--compare/--no-compare", default=True, show_default=True,
              help="With --immune on, also run without the immune system (for degraded_healthy off).")
@click.option("--seeds", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Run the scenario with this many seeds (its seed, +1, ...) and give each figure's min/median/max.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the results as JSON to this file.")
@click.option("--agents", type=click.IntRange(5, 100_000), default=None, help="Override the fleet size.")
@click.option("--duration", type=click.FloatRange(min=1), default=None, help="Override the simulated seconds.")
@click.option("--seed", type=click.IntRange(min=0), default=None, help="Override the scenario's (first) seed.")
@click.option("--speed", type=click.FloatRange(min=0.1), default=2.0, show_default=True,
              help="Simulated time runs this many times faster than the wall clock.")
def eval_(scenario_ref: str, immune: str, compare: bool, seeds: int, json_out: Path | None, agents: int | None,
          duration: float | None, seed: int | None, speed: float) -> None:  # fmt: skip
    """Run a scenario through the real pipeline under a fresh run id and score it.

    Scores the quarantine decisions against sim.truth: recall (infected agents
    quarantined while their infection is active, within 10 s of onset), precision,
    false quarantines (healthy, too early, or after the infection ended), time to
    quarantine in event time and in wall-clock time, pending approvals (healthy and
    infected), intentions of infected agents admitted before their quarantine, gate
    leaks (admitted intentions of quarantined agents), and healthy agents degraded by
    contention with the immune system on and off. With --seeds N every figure is also
    given as min/median/max over the seeds. The README defines each figure.
    """
    try:
        base = load_scenario(scenario_ref).with_overrides(agents=agents, duration=duration, seed=seed)
    except ScenarioError as exc:
        raise click.BadParameter(str(exc), param_hint="--scenario") from exc
    runs: list[dict] = []
    try:
        with stack.running(_say) as services:
            for k in range(seeds):
                scenario = base.with_overrides(seed=base.seed + k)
                stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
                tag = f"{scenario.name} seed {scenario.seed}"
                on = off = None
                if immune == "on":
                    _say(f"[{k + 1}/{seeds}] {tag}: immune system on")
                    on = run_scenario(scenario, f"eval-{stamp}-s{scenario.seed}-on", *services, speed=speed,
                                      watch_admitted=True, progress=_progress(), say=_say)  # fmt: skip
                if immune == "off" or compare:
                    _say(f"\n[{k + 1}/{seeds}] {tag}: immune system off (for comparison)")
                    off = run_scenario(scenario, f"eval-{stamp}-s{scenario.seed}-off", *services, speed=speed,
                                       immune=False, progress=_progress(), say=_say)  # fmt: skip
                _say("")
                runs.append(_results(scenario.name, scenario.seed, on, off))
                if seeds > 1:
                    _print(runs[-1])
                    click.echo("")
    except (ChorusError, KafkaException) as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        _say("\ninterrupted")
        sys.exit(130)
    results = runs[0] if seeds == 1 else _summary(base.name, runs)
    if seeds == 1:
        _print(results)
    else:
        _print_summary(results)
    if json_out is not None:
        json_out.write_text(json.dumps(results, indent=2) + "\n")
        _say(f"wrote {json_out}")


def _results(name: str, seed: int, on: PipelineRun | None, off: PipelineRun | None) -> dict:
    scored = on or off
    assert scored is not None
    view = scored.view
    result = score(view.truth, view.decisions, view.admitted.values())
    wall = _wall_ttq(view, result.time_to_quarantine_s)
    return {
        "scenario": name,
        "seed": seed,
        "run_id": scored.summary.run_id,
        "immune": on is not None,
        "recall": result.recall,
        "precision": result.precision,
        "false_quarantines": len(result.false_quarantines),
        "gate_leaks": result.gate_leaks,
        "leaked_intentions": result.leaked_intentions,
        "pending_approval": {"healthy": result.pending_healthy, "infected": result.pending_infected},
        "time_to_quarantine_s": result.ttq_stats(),
        "wall_time_to_quarantine_s": stats(list(wall.values())),
        "degraded_healthy": {
            "immune_on": on.summary.degraded_healthy if on else None,
            "immune_off": off.summary.degraded_healthy if off else None,
        },
        "infected": list(result.infected),
        "quarantined": list(result.quarantined),
        "false_quarantined_agents": list(result.false_quarantines),
        "late_quarantined_agents": list(result.late_quarantines),
        "per_agent_time_to_quarantine_s": result.time_to_quarantine_s,
        "per_agent_wall_time_to_quarantine_s": wall,
        "healing": score_healing(view.truth, view.decisions, view.healing).report() if on is not None else None,
    }


def _wall_ttq(view: RunView, caught: dict[str, float]) -> dict[str, float]:
    """Per caught agent: wall-clock seconds from the arrival of what set its quarantine off to the decision's."""
    out: dict[str, float] = {}
    for decision in sorted(view.decisions, key=lambda d: d.occurred_at):
        if decision.action == "quarantine" and decision.agent_id in caught and decision.agent_id not in out:
            seconds = view.wall_seconds_to(decision)
            if seconds is not None:
                out[decision.agent_id] = seconds
    return out


# Figures summarised over seeds: a name and how to read it from one run's results.
FIGURES: dict[str, Callable[[dict], float | None]] = {
    "recall": lambda r: r["recall"],
    "precision": lambda r: r["precision"],
    "false_quarantines": lambda r: r["false_quarantines"],
    "gate_leaks": lambda r: r["gate_leaks"],
    "leaked_intentions": lambda r: r["leaked_intentions"],
    "pending_approval_healthy": lambda r: r["pending_approval"]["healthy"],
    "pending_approval_infected": lambda r: r["pending_approval"]["infected"],
    "time_to_quarantine_p50_s": lambda r: r["time_to_quarantine_s"]["p50"],
    "time_to_quarantine_max_s": lambda r: r["time_to_quarantine_s"]["max"],
    "wall_time_to_quarantine_p50_s": lambda r: r["wall_time_to_quarantine_s"]["p50"],
    "wall_time_to_quarantine_max_s": lambda r: r["wall_time_to_quarantine_s"]["max"],
    "degraded_healthy_on": lambda r: r["degraded_healthy"]["immune_on"],
    "degraded_healthy_off": lambda r: r["degraded_healthy"]["immune_off"],
    # Must be 0: an agent released while its infection was still active (a "cure" that was not one).
    "released_uncured": lambda r: r["healing"]["released_uncured"] if r.get("healing") else None,
}


def _summary(name: str, runs: list[dict]) -> dict:
    return {
        "scenario": name,
        "seeds": [r["seed"] for r in runs],
        "summary": {figure: spread([read(r) for r in runs]) for figure, read in FIGURES.items()},
        "runs": runs,
    }


def _fmt(value) -> str:  # noqa: ANN001
    return "n/a" if value is None else f"{value:.3g}" if isinstance(value, float) else str(value)


def _print(r: dict) -> None:
    ttq, wall, pend = r["time_to_quarantine_s"], r["wall_time_to_quarantine_s"], r["pending_approval"]
    rows = [
        ("scenario", f"{r['scenario']} (seed {r['seed']})"),
        ("run id", r["run_id"]),
        ("infected", f"{len(r['infected'])} ({', '.join(r['infected'][:6])}{' ...' if len(r['infected']) > 6 else ''})"),
        (f"recall (quarantined while active, <= {RECALL_WINDOW_S:g} s)", _fmt(r["recall"])),
        ("precision", _fmt(r["precision"])),
        ("false quarantines", _fmt(r["false_quarantines"])),
        ("pending approval healthy/infected", f"{pend['healthy']}/{pend['infected']}"),
        ("gate leaks", _fmt(r["gate_leaks"])),
        ("intentions leaked before quarantine", _fmt(r["leaked_intentions"])),
        ("time to quarantine p50/p95/max (s)", "/".join(_fmt(ttq[k]) for k in ("p50", "p95", "max"))),
        ("  wall clock p50/p95/max (s)", "/".join(_fmt(wall[k]) for k in ("p50", "p95", "max"))),
        ("healthy degraded, immune on", _fmt(r["degraded_healthy"]["immune_on"])),
        ("healthy degraded, immune off", _fmt(r["degraded_healthy"]["immune_off"])),
    ]
    if r.get("healing"):
        rows += _healing_rows(r["healing"], _fmt)
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


def _print_summary(s: dict) -> None:
    click.echo(f"{s['scenario']} over seeds {', '.join(map(str, s['seeds']))}: min / median / max")
    width = max(len(f) for f in FIGURES)
    for figure, spread_ in s["summary"].items():
        click.echo(f"  {figure:<{width}}  " + " / ".join(_fmt(spread_[k]) for k in ("min", "median", "max")))


def _progress():  # noqa: ANN202 - a closure
    status = StatusLine()

    def show(p: Progress, view: RunView) -> None:
        line = (
            f"  sim {p.sim_time_s:6.1f}/{p.duration_s:g}s  {p.events_per_s:8,.0f} ev/s  "
            f"decisions {len(view.decisions)}  suffering {p.suffering_healthy}/{p.healthy}"
        )
        status.show(line, final=p.sim_time_s >= p.duration_s)

    return show
