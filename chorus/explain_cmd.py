"""`chorus explain AGENT`: why an agent's trust moved and why it was (or was not) quarantined."""

from __future__ import annotations

import gc

import click

from processors.runtime.settings import Settings

from .fleet import Fleet
from .operator_view import explain_lines


@click.command()
@click.argument("agent")
@click.option("--run-id", default=None, help="The run (default: CHORUS_RUN_ID, else 'live').")
@click.option("--json", "as_json", is_flag=True, help="Print the story as JSON (the API's /agents/AGENT).")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Text output: show the last N trust changes, anomalies and conflicts (0 = all).")
def explain(agent: str, run_id: str | None, as_json: bool, limit: int) -> None:
    """The agent's story: every trust change with reason and cause, its anomalies, the conflicts
    that named it, and each quarantine decision with its cause chain down to the input events."""
    gc.freeze()  # the reads allocate thousands of small models: keep the collector off the import-time heap
    settings = Settings()
    run = run_id or settings.run_id
    fleet = Fleet.once(settings, run, agent=agent)
    try:
        if not fleet.knows(agent):
            raise click.ClickException(f"agent {agent!r} has no state or decisions in run {run!r}")
        story = fleet.explain(agent)
    finally:
        fleet.close()
    if as_json:
        click.echo(story.model_dump_json(indent=2))
    else:
        click.echo("\n".join(explain_lines(story, limit)))
