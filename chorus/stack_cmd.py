"""`chorus stack`: the local Kafka broker and Redis server."""

from __future__ import annotations

import sys

import click

from . import stack as local_stack
from .errors import StackError


def _say(message: str) -> None:
    click.echo(message, err=True)


@click.group()
def stack() -> None:
    """Local Kafka broker (KRaft, from Maven Central jars) and Redis server.

    Data and logs live in .chorus/ (or $CHORUS_HOME). A service whose address is
    set in KAFKA_BOOTSTRAP_SERVERS / REDIS_URL is used as it is: nothing is started.
    """


@stack.command()
@click.option("--secure", is_flag=True, help="Broker with SASL_SSL, SCRAM users per principal and ACLs.")
def up(secure: bool) -> None:
    """Start Kafka and Redis; return once both answer. Idempotent.

    With --secure the broker has one SASL_SSL listener (a CA and certificates generated in
    $CHORUS_HOME/kafka-secure/secure), a SCRAM user per processor, the simulator, an agent, an
    operator and admin, and ACLs; each principal's client settings are in <principal>.env there
    (`set -a; . admin.env; set +a` before `chorus demo`).
    """
    try:
        services = local_stack.up(_say, secure=secure or None)
    except StackError as exc:
        raise click.ClickException(str(exc)) from exc
    for svc in services.values():
        where = "external" if svc.pid is None else f"pid {svc.pid}"
        click.echo(f"{svc.name:6} {svc.address}  {where}{'  SASL_SSL' if svc.secure else ''}")


@stack.command()
@click.option("--purge", is_flag=True, help="Also delete the broker's and Redis's data.")
def down(purge: bool) -> None:
    """Stop exactly the processes `chorus stack up` started."""
    local_stack.down(_say, purge=purge)


@stack.command()
def status() -> None:
    """What runs where, and whether it answers. Exit 1 when something is down."""
    rows = local_stack.status()
    for row in rows:
        state = "answering" if row.answering else "NOT ANSWERING"
        click.echo(f"{row.name:6} {row.address:28} {row.managed:24} {state}")
    if not all(row.answering for row in rows):
        sys.exit(1)
