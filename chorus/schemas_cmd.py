"""`chorus schemas`: the event contracts as JSON Schema."""

from __future__ import annotations

from pathlib import Path

import click

from schemas import export_schemas


@click.group()
def schemas() -> None:
    """Event contracts: one JSON Schema per topic."""


@schemas.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def export(directory: Path) -> None:
    """Write <topic>.v<version>.schema.json for every topic into DIRECTORY."""
    for path in export_schemas(directory):
        click.echo(path)
