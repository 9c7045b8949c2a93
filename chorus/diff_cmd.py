"""`chorus diff`: two runs' decision streams, event by event."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from confluent_kafka import KafkaException

from schemas import ChorusError

from . import recording, stack
from .capture import capture
from .diff import DiffReport, compare


def _load(ref: str, bootstrap: str | None) -> tuple[str, list[recording.Record]]:
    """A recording (or a replay's decisions file) when `ref` is a file, else a run id read off the topics."""
    path = Path(ref)
    if path.is_file():
        head, records = recording.read(path)
        kept = [r for r in records if r.topic in recording.DECISION_TOPICS]
        if not set(head.get("topics", [])) & set(recording.DECISION_TOPICS):
            raise click.ClickException(f"{ref} holds no decisions: record it with --topics all")
        return f"{head['run_id']} ({path.name})", kept
    assert bootstrap is not None
    return ref, list(capture(bootstrap, ref, recording.DECISION_TOPICS))


@click.command("diff")
@click.argument("run_a")
@click.argument("run_b")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the full comparison as JSON.")
@click.option("--show", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many divergences to print, earliest first.")
def diff(run_a: str, run_b: str, json_out: Path | None, show: int) -> None:  # fmt: skip
    """Compare the decisions of RUN_A and RUN_B (each a run id or a recording made with --topics all).

    Events are matched by topic and event id, with run ids normalised. Exit status 0 when
    the two decision streams are identical, 1 otherwise.
    """
    try:
        if Path(run_a).is_file() and Path(run_b).is_file():
            (name_a, a), (name_b, b) = _load(run_a, None), _load(run_b, None)
        else:
            with stack.running(lambda m: click.echo(m, err=True)) as (bootstrap, _redis):
                (name_a, a), (name_b, b) = _load(run_a, bootstrap), _load(run_b, bootstrap)
    except (ChorusError, KafkaException) as exc:
        raise click.ClickException(str(exc)) from exc
    report = compare(a, b)
    _print(report, name_a, name_b, show)
    if json_out is not None:
        json_out.write_text(json.dumps({"a": name_a, "b": name_b, **report.to_json()}, indent=2) + "\n")
        click.echo(f"wrote {json_out}", err=True)
    sys.exit(0 if report.identical else 1)


def _print(report: DiffReport, name_a: str, name_b: str, show: int) -> None:
    click.echo(f"A = {name_a}\nB = {name_b}")
    header = f"{'topic':<28} {'A':>8} {'B':>8} {'identical':>10} {'missing':>8} {'extra':>8} {'different':>10}"
    click.echo(header)
    for topic, c in report.counts.items():
        click.echo(f"{topic:<28} {c.a:>8,} {c.b:>8,} {c.identical:>10,} {c.missing:>8,} {c.extra:>8,} {c.different:>10,}")
    if report.unstable:
        click.echo(f"{report.unstable} event ids were published twice with different contents within one run")
    if report.identical:
        click.echo("identical: same event ids, same contents")
        return
    click.echo(f"{len(report.divergences):,} divergences; the first {min(show, len(report.divergences))}:")
    for d in report.divergences[:show]:
        what = {"missing": "only in A", "extra": "only in B", "different": "differs: " + ", ".join(d.fields)}[d.kind]
        click.echo(f"- {d.occurred_at} {d.topic} {d.event_id}: {what}")
        for line in d.causes:
            click.echo(f"  {line}")
