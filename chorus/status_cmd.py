"""`chorus status`: the fleet now."""

from __future__ import annotations

import gc

import click

from processors.runtime.settings import Settings

from .fleet import Fleet
from .operator_view import status_lines


@click.command()
@click.option("--run-id", default=None, help="The run to show (default: CHORUS_RUN_ID, else 'live').")
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON (the API's /status).")
def status(run_id: str | None, as_json: bool) -> None:
    """Agents seen, who is quarantined (reason, term end) or waiting for approval, the trust
    distribution, recent anomalies and conflicts, and per processor: replicas, lag, last output,
    dead letters. Read from the decision topics and Redis."""
    gc.freeze()  # the reads allocate thousands of small models: keep the collector off the import-time heap
    settings = Settings()
    fleet = Fleet.once(settings, run_id or settings.run_id)
    try:
        view = fleet.status()
    finally:
        fleet.close()
    if as_json:
        click.echo(view.model_dump_json(indent=2))
    else:
        click.echo("\n".join(status_lines(view)))
