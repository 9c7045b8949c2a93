"""Serving the API: in the foreground (`chorus api`) or in a background thread (`chorus demo --dashboard`, tests)."""

from __future__ import annotations

import secrets
import threading
import time

import uvicorn

from processors.runtime.settings import ApiToken, Settings

from ..errors import ApiError
from ..fleet import Fleet
from .app import create_app
from .commands import CommandPublisher

START_TIMEOUT_S = 20.0


def tokens_or_generated(settings: Settings) -> tuple[dict[str, ApiToken], dict[str, str]]:
    """The configured tokens; with none configured, one fresh `read` and one `operate` token for this
    process only (returned by role so the caller can print them)."""
    if settings.api_tokens:
        return dict(settings.api_tokens), {}
    generated = {"read": secrets.token_urlsafe(24), "operate": secrets.token_urlsafe(24)}
    tokens = {
        generated["read"]: ApiToken(subject="viewer", role="read"),
        generated["operate"]: ApiToken(subject="operator", role="operate"),
    }
    return tokens, generated


class ApiServer:
    """uvicorn with a following Fleet; `start()` returns once it accepts connections."""

    def __init__(self, settings: Settings, run_id: str, tokens: dict[str, ApiToken], host: str, port: int) -> None:
        self.fleet = Fleet.follow(settings, run_id)
        self.app = create_app(settings, self.fleet, tokens, CommandPublisher(settings))
        self.host, self.port = host, port
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host=host, port=port, log_level="warning", lifespan="off", access_log=False)
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def run(self) -> None:
        try:
            self.server.run()
        finally:
            self.fleet.close()

    def start(self) -> ApiServer:
        self._thread = threading.Thread(target=self.server.run, name="chorus-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.fleet.close()
                raise ApiError(f"the API did not start on {self.url} (port in use?)")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.fleet.close()
