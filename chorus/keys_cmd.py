"""`chorus keys`: the operator's Ed25519 signing keys."""

from __future__ import annotations

from pathlib import Path

import click

from processors.runtime.errors import KeyFileError
from processors.runtime.signing import generate_key_files


@click.group()
def keys() -> None:
    """Operator signing keys (Ed25519) for `chorus command`."""


@keys.command("generate")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
              show_default=True, help="Where to write NAME.key and NAME.pub.")
@click.option("--name", default="operator", show_default=True, help="File name and comment of the key.")
def generate(directory: Path, name: str) -> None:
    """Write a new key pair: NAME.key (private, mode 0600) and NAME.pub (one line, to trust).

    Give the operator CHORUS_OPERATOR_KEY=NAME.key; append NAME.pub to the file the trust and
    quarantine processors read through CHORUS_OPERATOR_PUBLIC_KEYS.
    """
    try:
        private, public, ident = generate_key_files(directory, name)
    except KeyFileError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"private key {private} (keep it secret: CHORUS_OPERATOR_KEY={private})")
    click.echo(f"public key  {public} (trust it: CHORUS_OPERATOR_PUBLIC_KEYS={public})")
    click.echo(f"key id      {ident}")
