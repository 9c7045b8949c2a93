"""`chorus worker NAME`: run one processor (baseline, trust, conflict, quarantine) until SIGTERM."""

from __future__ import annotations

import click

from processors.runtime import Settings, configure_logging, load_app, run_worker
from schemas import ChorusError


@click.command()
@click.argument("name")
def worker(name: str) -> None:
    """Run the processor NAME (its Faust app `chorus-NAME`) in this process.

    Settings come from the environment (CHORUS_*, KAFKA_BOOTSTRAP_SERVERS, REDIS_URL);
    start-up waits for Kafka and Redis; SIGTERM stops it cleanly.
    """
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    try:
        app = load_app(name)
    except ChorusError as exc:  # an unknown name, an invalid policy file...
        raise click.ClickException(str(exc)) from exc
    run_worker(app, settings.log_level)
