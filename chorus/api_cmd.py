"""`chorus api`: the HTTP control plane and web dashboard."""

from __future__ import annotations

import click

from processors.runtime.settings import Settings


@click.command()
@click.option("--host", default=None, help="Listen address (default: CHORUS_API_HOST, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default: CHORUS_API_PORT, 8400).")
@click.option("--run-id", default=None, help="The run to serve (default: CHORUS_RUN_ID, else 'live').")
def api(host: str | None, port: int | None, run_id: str | None) -> None:
    """Serve the REST API (OpenAPI at /docs), the live decision feed (/feed, SSE) and the dashboard (/).

    Tokens come from CHORUS_API_TOKENS; without any, one read and one operate token are
    generated for this process and printed."""
    from .api.server import ApiServer, tokens_or_generated  # FastAPI and uvicorn only for this command

    settings = Settings()
    tokens, generated = tokens_or_generated(settings)
    server = ApiServer(settings, run_id or settings.run_id, tokens, host or settings.api_host, port or settings.api_port)
    click.echo(f"Chorus API for run {server.fleet.run_id} on {server.url}  (OpenAPI: {server.url}/docs)", err=True)
    if not settings.operator_key:
        click.echo("no CHORUS_OPERATOR_KEY: the API serves reads, and answers writes with 503 (it cannot sign "
                   "commands)", err=True)
    if generated:
        click.echo(f"no CHORUS_API_TOKENS configured; tokens for this process: read {generated['read']}  "
                   f"operate {generated['operate']}", err=True)
        click.echo(f"dashboard: {server.url}/#token={generated['operate']}", err=True)
    server.run()
