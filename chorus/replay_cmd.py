"""`chorus replay`: a recording's inputs through the four processors again, under a new run id."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from confluent_kafka import KafkaException

from schemas import ChorusError

from . import recording, stack
from .replay import replay


def _speed(value: str) -> float | None:
    if value == "max":
        return None
    try:
        speed = float(value)
    except ValueError as exc:
        raise click.BadParameter("a number > 0 or 'max'", param_hint="--speed") from exc
    if speed <= 0:
        raise click.BadParameter("a number > 0 or 'max'", param_hint="--speed")
    return speed


@click.command("replay")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--run-id", default=None, help="Run id of the replay (default: <recorded run>-replay-<time>).")
@click.option("--speed", default="max", show_default=True, metavar="X|max",
              help="Re-publish at X times the recorded event-time pace, or as fast as possible.")
@click.option("--replicas", type=click.IntRange(1, 8), default=1, show_default=True,
              help="Worker processes per processor.")
@click.option("--kill-every", type=click.FloatRange(min=0.5), default=None, metavar="S",
              help="Fault drill: SIGKILL a random worker every S seconds and restart it (must change nothing).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write decisions.jsonl.zst and summary.json (default: .chorus/runs/<run id>/).")
def replay_(file: Path, run_id: str | None, speed: str, replicas: int, kill_every: float | None,
            out_dir: Path | None) -> None:  # fmt: skip
    """Re-publish a recording's inputs under a new run id and run the four processors on them.

    Waits until every input is processed, then writes the run's decisions next to a summary.
    Compare two replays (or a replay and the recorded run) with `chorus diff`.
    """
    pace = _speed(speed)
    try:
        head, _ = recording.read(file)
        run_id = run_id or f"{head['run_id']}-replay-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}"
        if any(c.isspace() for c in run_id):
            raise click.BadParameter("must not contain whitespace", param_hint="--run-id")
        out_dir = out_dir or stack.home() / "runs" / run_id
        with stack.running(lambda m: click.echo(m, err=True)) as (bootstrap, redis_url):
            result = replay(
                file,
                run_id=run_id,
                bootstrap=bootstrap,
                redis_url=redis_url,
                log_dir=out_dir / "logs",
                speed=pace,
                replicas=replicas,
                kill_every=kill_every,
                say=lambda m: click.echo(m, err=True),
            )
    except (ChorusError, KafkaException) as exc:
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt:
        click.echo("\ninterrupted", err=True)
        sys.exit(130)
    decisions = out_dir / "decisions.jsonl.zst"
    recording.write(
        decisions,
        recording.header(run_id, recording.DECISION_TOPICS, 0, replay_of=head["run_id"], source=str(file)),
        result.decisions,
    )
    summary = {**result.summary(), "recording": str(file), "speed": speed, "replicas": replicas,
               "kill_every_s": kill_every, "decisions_file": str(decisions)}  # fmt: skip
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    click.echo(f"replayed {result.published:,} inputs of {head['run_id']!r} as {run_id!r} in {result.seconds:.0f} s")
    for topic, count in result.counts.items():
        click.echo(f"  {topic:<28} {count:>8,}")
    click.echo(f"  kills survived: {result.kills}; final state sha256 {result.state_digest[:16]}")
    click.echo(f"decisions: {decisions}\nsummary:   {out_dir / 'summary.json'}")
