"""`chorus exporter`: the processors' consumer lag, read from Kafka, on a Prometheus /metrics port."""

from __future__ import annotations

import signal
import threading

import click
from prometheus_client import start_http_server

from processors.runtime import Settings, app_id, configure_logging

from .lag import DEFAULT_PORT, PROCESSORS, LagExporter


@click.command()
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="Port of /metrics.")
@click.option(
    "--processor",
    "names",
    multiple=True,
    type=click.Choice(PROCESSORS),
    help="Processors whose group to watch (repeatable; default: all).",
)
def exporter(port: int, names: tuple[str, ...]) -> None:
    """Serve chorus_consumer_lag{processor,topic,partition} for the processors' consumer groups.

    Reads each group's committed offsets and each partition's end from Kafka every
    CHORUS_LAG_INTERVAL_S seconds, so lag keeps rising while a processor is stopped or
    stuck (its own /metrics cannot say so). Runs until SIGTERM.
    """
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    groups = {name: app_id(name, settings) for name in names or PROCESSORS}
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    start_http_server(port)
    click.echo(f"lag of {', '.join(groups.values())} on :{port}/metrics every {settings.lag_interval_s:g}s", err=True)
    LagExporter(settings.kafka_bootstrap_servers, groups).run(settings.lag_interval_s, stop)
