"""`chorus eval-detector`: the baseline detector on the Numenta Anomaly Benchmark, scored by NAB itself."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import click

from processors.baseline.app import config_from
from processors.runtime import Settings

from . import nab
from .errors import BenchmarkError

PUBLISHED = {  # NAB's scoreboard (README of the checkout): standard, low FP, low FN
    "ARTime": (74.9, 65.1, 80.4),
    "Numenta HTM": (70.1, 61.7, 74.2),
    "CAD OSE": (69.9, 67.0, 73.2),
}
LABELS = {"standard": "standard", "reward_low_FP_rate": "low FP", "reward_low_FN_rate": "low FN"}


def _say(message: str) -> None:
    click.echo(message, err=True)


def _progress(total: int) -> Callable[[str], None]:
    seen = [0]

    def say(name: str) -> None:
        seen[0] += 1
        _say(f"  [{seen[0]}/{total}] {name}")

    return say


@click.command("eval-detector")
@click.option("--nab", "nab_path", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="A NAB checkout (git clone https://github.com/numenta/NAB): its data/, labels/ and scorer are used.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the scores (corpus and per category, with the reference) as JSON to this file.")
@click.option("--results", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Keep NAB's result and score files here (default: a temporary directory).")
@click.option("--nab-venv", type=click.Path(file_okay=False, path_type=Path), default=Path(".nab-venv"),
              show_default=True,
              help="Python environment for NAB's scorer; created with pandas<2, numpy<2, simplejson, "
                   "python-dateutil if missing or unusable.")
def eval_detector(nab_path: Path, json_out: Path | None, results: Path | None, nab_venv: Path) -> None:  # fmt: skip
    """Score the baseline detector on NAB (the Numenta Anomaly Benchmark) with NAB's own scorer.

    Every NAB series is fed to the pure detector with the processor's settings (the
    CHORUS_BASELINE_* environment applies) as one agent's latency_ms; a row's score is the
    surprise s of the Anomaly it published there as s / (s + 10) (0 where none). NAB's
    run.py then runs its windowed-Gaussian and null detectors, optimises thresholds and
    scores all three with the standard, low-FP and low-FN profiles. NAB's code runs from
    the checkout in its own Python (--nab-venv, created on first use: NAB needs pandas<2).
    Categories realAWSCloudwatch and realKnownCause were held out while the detector was
    developed. Takes about 4 CPU-minutes (3 of them NAB's windowed Gaussian
    and scoring), with progress on stderr.
    """
    try:
        checkout = nab.checkout(nab_path.resolve())
        python = nab.nab_python(nab_venv.resolve(), _say)
        with tempfile.TemporaryDirectory(prefix="chorus-nab-") as tmp:
            out = (results or Path(tmp)).resolve()
            out.mkdir(parents=True, exist_ok=True)
            series = nab.corpus(checkout)
            _say(f"detecting: {len(series)} series")
            started = time.process_time()
            nab.write_results(checkout, out, config_from(Settings()), series, _progress(len(series)))
            _say(f"detected in {time.process_time() - started:.0f} CPU-s")
            _say("scoring with NAB's run.py (windowed Gaussian and null detectors in the same run)")
            nab.score(python, checkout, out, _say)
            report = {
                nab.DETECTOR: nab.read_scores(checkout, out, nab.DETECTOR),
                nab.REFERENCE: nab.read_scores(checkout, out, nab.REFERENCE),
                "nab_final_results": nab.final_results(out),
                "published": {k: dict(zip(nab.PROFILES, v, strict=True)) for k, v in PUBLISHED.items()},
                "held_out": list(nab.HELD_OUT),
            }
    except BenchmarkError as exc:
        raise click.ClickException(str(exc)) from exc
    _print(report)
    if json_out is not None:
        json_out.write_text(json.dumps(report, indent=2))
        _say(f"wrote {json_out}")


def _print(report: dict) -> None:  # type: ignore[type-arg]
    ours, ref = report[nab.DETECTOR], report[nab.REFERENCE]
    head = "".join(f"{LABELS[p]:>10}" for p in nab.PROFILES)
    click.echo(f"{'NAB score':<34}{head}")
    rows = [("Chorus baseline (whole corpus)", ours["all"]), ("NAB windowed Gaussian (same run)", ref["all"])]
    rows += [(f"{name} (published)", dict(zip(nab.PROFILES, v, strict=True))) for name, v in PUBLISHED.items()]
    for name, scores in rows:
        click.echo(f"{name:<34}" + "".join(f"{scores[p]:>10.1f}" for p in nab.PROFILES))
    click.echo("\nper category (Chorus / windowed Gaussian), standard | low FP | low FN:")
    for cat in nab.categories(ours):
        mark = "  (held out)" if cat in nab.HELD_OUT else ""
        cells = " | ".join(f"{ours[cat][p]:6.1f} / {ref[cat][p]:6.1f}" for p in nab.PROFILES)
        click.echo(f"  {cat:<24}{cells}{mark}")
    for group in ("development", "held_out"):
        if group in ours:
            cells = " | ".join(f"{ours[group][p]:6.1f} / {ref[group][p]:6.1f}" for p in nab.PROFILES)
            click.echo(f"  {group.replace('_', ' ') + ' (all files)':<24}{cells}")
