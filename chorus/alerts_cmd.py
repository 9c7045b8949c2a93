"""`chorus alerts tail`: a webhook receiver for Alertmanager that prints each alert it is sent.

For the demo and for checking a deployment's alert path end to end: Alertmanager posts
its webhook JSON (version 4) here; every alert becomes one line with its status, name,
severity, processor, summary and runbook.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import click

DEFAULT_PORT = 9420


def alert_lines(payload: Mapping[str, Any]) -> list[str]:
    """One line per alert of an Alertmanager webhook payload; a payload of another shape gives one line saying so."""
    alerts = payload.get("alerts") if isinstance(payload, Mapping) else None
    if not isinstance(alerts, list):
        return [f"not an Alertmanager payload: {json.dumps(payload)[:200]}"]
    lines = []
    for alert in alerts:
        if not isinstance(alert, Mapping):
            continue
        labels = alert.get("labels") or {}
        notes = alert.get("annotations") or {}
        status = str(alert.get("status", "?")).upper()
        where = labels.get("processor") or labels.get("job") or "-"
        line = (
            f"{alert.get('startsAt', '?')[:19]} {status:8} {labels.get('alertname', '?')} "
            f"[{labels.get('severity', '-')}] {where}: {notes.get('summary', '')}"
        )
        if notes.get("runbook"):
            line += f"\n    runbook: {notes['runbook']}"
        lines.append(line)
    return lines


def receiver(port: int, emit: Callable[[str], None], host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """An HTTP server that emits the lines of every JSON body POSTed to it (not started)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the http.server API
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                payload = json.loads(body)
            except ValueError:
                self.send_response(400)
                self.end_headers()
                emit(f"not JSON ({len(body)} bytes)")
                return
            for line in alert_lines(payload):
                emit(line)
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server


@click.group()
def alerts() -> None:
    """Alerts from Alertmanager (deploy/alertmanager/alertmanager.yml sends them here)."""


@alerts.command("tail")
@click.option("--port", type=int, default=DEFAULT_PORT, show_default=True, help="Port Alertmanager's webhook posts to.")
def tail(port: int) -> None:
    """Receive Alertmanager's webhooks on PORT and print every alert, firing or resolved, until Ctrl-C."""
    lock = threading.Lock()

    def emit(line: str) -> None:
        with lock:
            click.echo(line)

    server = receiver(port, emit)
    click.echo(f"waiting for Alertmanager on :{port}/ (Ctrl-C to stop)", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
