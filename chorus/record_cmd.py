"""`chorus record`: one run's inputs (and with --topics all, its decisions) into a portable file."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from confluent_kafka import KafkaException

from processors.runtime import Settings
from schemas import ChorusError

from . import recording, stack
from .capture import capture
from .console import StatusLine


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 time (e.g. 2026-01-01T00:00:00Z)") from exc
    return at if at.tzinfo else at.replace(tzinfo=UTC)


@click.command("record")
@click.option("--run-id", required=True, help="The run to record.")
@click.option(
    "--topics",
    "which",
    type=click.Choice(["inputs", "all"]),
    default="inputs",
    show_default=True,
    help="inputs: intentions, vitals, operator commands, ground truth, healing's verdicts; all: also every decision.",
)
@click.option("--from", "since", default=None, metavar="TIME", help="Only events that occurred at or after TIME.")
@click.option("--to", "until", default=None, metavar="TIME", help="Only events that occurred at or before TIME.")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The recording to write (zstd-compressed JSON Lines; read it with `zstdcat FILE | jq`).",
)
def record(run_id: str, which: str, since: str | None, until: str | None, out: Path) -> None:  # fmt: skip
    """Record a run's events, with the settings and capacities its decisions depend on."""
    topics = recording.INPUT_TOPICS + (recording.DECISION_TOPICS if which == "all" else ())
    status = StatusLine()

    def progress(read: int, total: int) -> None:
        status.show(f"  scanned {read:,}/{total:,} messages", final=read >= total)

    try:
        with stack.running(lambda m: click.echo(m, err=True)) as (bootstrap, _redis):
            records = capture(bootstrap, run_id, topics, since=_time(since), until=_time(until), progress=progress)
            head = recording.header(
                run_id,
                topics,
                0,
                recorded_at=datetime.now(UTC).isoformat(),
                time_range=[since, until],
                settings=decision_settings(Settings()),
                capacities=run_manifest(run_id).get("capacities"),
                scenario=run_manifest(run_id).get("scenario"),
            )
            count = recording.write(out, head, records)
    except (ChorusError, KafkaException) as exc:
        raise click.ClickException(str(exc)) from exc
    if count == 0:
        out.unlink(missing_ok=True)
        raise click.ClickException(f"no events of run {run_id!r} on {', '.join(topics)}")
    click.echo(f"recorded {count:,} records of run {run_id!r} into {out}")
    if head["capacities"] is None:
        click.echo(
            "note: no run manifest with the scenario's capacities was found; a replay's conflict processor "
            "will use its configured capacities",
            err=True,
        )


def decision_settings(settings: Settings) -> dict[str, Any]:
    """The settings whose values change decisions (JSON-ready)."""
    dumped = settings.model_dump(mode="json")
    return {k: v for k, v in dumped.items() if k.startswith(recording.DECISION_SETTINGS) and "api_key" not in k}


def manifest_path(run_id: str) -> Path:
    return stack.home() / "runs" / run_id / "run.json"


def write_manifest(run_id: str, **facts: Any) -> None:
    """What `chorus simulate` / `eval` know about a run that its events do not say (capacities)."""
    path = manifest_path(run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"run_id": run_id, **facts}, indent=2) + "\n")


def run_manifest(run_id: str) -> dict[str, Any]:
    try:
        return json.loads(manifest_path(run_id).read_text())
    except (OSError, ValueError):
        return {}
