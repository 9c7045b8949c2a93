"""`chorus ingest`: serve the HTTP ingest for agents that cannot speak Kafka."""

from __future__ import annotations

import click

from schemas import ChorusError


@click.command()
@click.option("--host", default=None, help="Address to listen on [default: CHORUS_INGEST_HOST, 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Port [default: CHORUS_INGEST_PORT, 8500].")
def ingest(host: str | None, port: int | None) -> None:
    """Serve POST /v1/intentions, POST /v1/vitals and GET /v1/agents/{id}/verdicts (OpenAPI at /docs).

    Each agent authenticates with its own bearer token (CHORUS_INGEST_TOKENS or
    CHORUS_INGEST_TOKENS_FILE) and may write only its own agent_id. Stops on SIGTERM/Ctrl-C
    after delivering what it accepted.
    """
    import uvicorn

    from processors.runtime.settings import Settings

    from .ingest import create_app

    settings = Settings()
    try:
        app = create_app(settings)
    except ChorusError as exc:
        raise click.ClickException(str(exc)) from exc
    uvicorn.run(
        app,
        host=host or settings.ingest_host,
        port=port or settings.ingest_port,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
