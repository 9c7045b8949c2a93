"""`chorus topics`: create and describe the registry's topics."""

from __future__ import annotations

import click

from processors.runtime import Settings

from . import admin


@click.group()
def topics() -> None:
    """Kafka topics from the registry in schemas/ (the single source of truth)."""


@topics.command("create")
@click.option("--replication", type=int, default=None, help="Replication factor (default: the registry's, 1).")
def create(replication: int | None) -> None:
    """Create every registry topic (and the processors' internal ones) that is missing. Idempotent."""
    bootstrap = Settings().kafka_bootstrap_servers
    for name, outcome in admin.create_topics(bootstrap, replication=replication).items():
        click.echo(f"{outcome:8} {name}")


@topics.command("describe")
def describe() -> None:
    """Show each registry topic with partition count, cleanup policy and end offsets."""
    bootstrap = Settings().kafka_bootstrap_servers
    click.echo(f"{'topic':34} {'partitions':>10} {'cleanup':>8} {'messages':>10}  end offsets")
    for state in admin.describe_topics(bootstrap):
        if isinstance(state, str):
            click.echo(f"{state:34} {'missing (run: chorus topics create)':>31}")
            continue
        offsets = ",".join(str(o) for o in state.end_offsets)
        click.echo(f"{state.name:34} {state.partitions:>10} {state.cleanup_policy:>8} {state.messages:>10}  {offsets}")
