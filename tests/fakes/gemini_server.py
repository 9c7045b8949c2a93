"""A local fake of the Gemini REST API's generateContent, for the real google-genai SDK.

It serves real HTTP on 127.0.0.1 from its own thread; each request takes the next
scripted Reply (or the default one): a JSON body as the model's text, a non-JSON
text, an HTTP error status, or a delay longer than the client's timeout.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Reply:
    text: str | None = None
    status: int = 200
    delay_s: float = 0.0

    @classmethod
    def json(cls, body: dict[str, Any]) -> Reply:
        return cls(text=json.dumps(body))

    @classmethod
    def error(cls, status: int) -> Reply:
        return cls(status=status)


_STATUS_NAMES = {400: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}


class FakeGemini:
    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply(text="{}")
        self.requests: list[dict[str, Any]] = []
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-gemini", daemon=True)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def script(self, *replies: Reply) -> None:
        with self._lock:
            self._script.extend(replies)

    def __enter__(self) -> FakeGemini:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/{version}/models/{call}", self._generate)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _generate(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            self.requests.append({"path": request.path, "body": body, "api_key": request.headers.get("x-goog-api-key")})
            reply = self._script.popleft() if self._script else self.default
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.status != 200:
            error = {
                "code": reply.status,
                "message": "scripted failure",
                "status": _STATUS_NAMES.get(reply.status, "UNKNOWN"),
            }
            return web.json_response({"error": error}, status=reply.status)
        model = request.match_info["call"].split(":")[0]
        return web.json_response(
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": reply.text or ""}]},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 10, "totalTokenCount": 20},
                "modelVersion": model,
            }
        )
