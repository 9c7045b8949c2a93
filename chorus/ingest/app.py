"""`chorus ingest`: the HTTP ingest for agents that cannot speak Kafka (FastAPI, served by uvicorn).

- POST /v1/intentions, POST /v1/vitals: one event or a JSON list, validated by the same schemas
  (422 names each bad field), written only for the token's own agent (403 otherwise), answered
  202 once Kafka has acknowledged every event: an accepted event is durable. When the producer's
  bounded queue has no room for the whole request: 429 with Retry-After, and nothing of it queued.
- GET /v1/agents/{id}/verdicts: the gate's verdicts on the agent's intentions and its quarantine
  decisions, as a long poll (`?after=SEQ&wait=S`) or Server-Sent Events (`Accept: text/event-stream`,
  resuming after `Last-Event-ID`).
- GET /health.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from chorus.agent import Connection
from chorus.agent.errors import AgentError
from processors.runtime.settings import Settings
from schemas import INTENTIONS, VITALS, Event, Intention, TopicSpec, Vitals

from .bodies import parse_events
from .errors import InvalidBody
from .feed import VerdictFeed, status_json
from .tokens import Tokens

SSE_HEARTBEAT_S = 15.0


def create_app(settings: Settings | None = None, tokens: Tokens | None = None) -> FastAPI:
    settings = settings or Settings()
    tokens = tokens or Tokens.from_settings(settings)
    connection = Connection(tokens.agent_ids, settings, queue_max=settings.ingest_queue_max)
    feed = VerdictFeed(tokens.agent_ids, settings.ingest_verdicts_kept)
    connection.on_event(feed.add)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await connection.start()
        try:
            yield
        finally:
            await connection.close()

    app = FastAPI(
        title="Chorus ingest",
        version="1",
        description="Intentions and vitals from agents that cannot speak Kafka; the gate's verdicts back.",
        lifespan=lifespan,
    )
    app.state.connection = connection
    app.state.feed = feed

    def caller(request: Request) -> str | JSONResponse:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        agent = tokens.agent_for(token.strip()) if scheme.lower() == "bearer" else None
        if agent is None:
            return JSONResponse(
                {"error": "a valid per-agent bearer token is required (Authorization: Bearer TOKEN)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return agent

    async def ingest(request: Request, spec: TopicSpec, model: type[Event]) -> Response:
        agent = caller(request)
        if isinstance(agent, Response):
            return agent
        try:
            body = json.loads(await request.body())
        except ValueError as exc:
            return JSONResponse({"error": f"the body is not JSON: {exc}"}, status_code=400)
        try:
            events = parse_events(
                body, model, run_id=settings.run_id, now=datetime.now(UTC), max_batch=settings.ingest_max_batch
            )
        except InvalidBody as exc:
            return JSONResponse({"error": str(exc), "detail": exc.problems}, status_code=422)
        foreign = sorted({e.agent_id for e in events} - {agent})  # type: ignore[attr-defined]
        if foreign:
            return JSONResponse(
                {"error": f"this token writes agent {agent} only, not {', '.join(foreign)}"}, status_code=403
            )
        if connection.capacity() < len(events):
            # All or nothing: a request is queued whole or not at all, so a retry never duplicates part of it.
            return JSONResponse(
                {"error": f"the ingest's producer queue is full ({settings.ingest_queue_max} events); retry later"},
                status_code=429,
                headers={"Retry-After": str(settings.ingest_retry_after_s)},
            )
        try:
            acks = [connection.publish(spec, e) for e in events]
        except AgentError as exc:  # the queue was checked above: only a broken producer gets here
            return JSONResponse({"error": str(exc)}, status_code=503)
        results = await asyncio.gather(*acks, return_exceptions=True)
        failed = [(e.event_id, str(r)) for e, r in zip(events, results, strict=True) if isinstance(r, Exception)]
        if failed:
            return JSONResponse(
                {
                    "error": "Kafka did not acknowledge some events; retrying them with the same event_id is safe",
                    "failed": [{"event_id": i, "error": m} for i, m in failed],
                    "accepted": [e.event_id for e in events if e.event_id not in dict(failed)],
                },
                status_code=503,
            )
        return JSONResponse({"accepted": len(events), "event_ids": [e.event_id for e in events]}, status_code=202)

    @app.post("/v1/intentions", status_code=202, summary="Publish one intention or a list")
    async def post_intentions(request: Request) -> Response:
        return await ingest(request, INTENTIONS, Intention)

    @app.post("/v1/vitals", status_code=202, summary="Publish one vitals sample or a list")
    async def post_vitals(request: Request) -> Response:
        return await ingest(request, VITALS, Vitals)

    @app.get("/v1/agents/{agent_id}/verdicts", summary="Gate verdicts and quarantine decisions (long poll or SSE)")
    async def verdicts(request: Request, agent_id: str, after: int = 0, wait: float = 0.0) -> Response:
        agent = caller(request)
        if isinstance(agent, Response):
            return agent
        if agent != agent_id:
            return JSONResponse({"error": f"this token reads agent {agent} only, not {agent_id}"}, status_code=403)
        if "text/event-stream" in request.headers.get("accept", ""):
            last = request.headers.get("last-event-id")
            start = int(last) if last and last.isdigit() else after
            return StreamingResponse(
                _sse(feed, agent_id, start, request),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        items = await feed.wait_after(agent_id, after, min(max(wait, 0.0), settings.ingest_poll_max_s))
        return JSONResponse(
            {
                "agent_id": agent_id,
                **status_json(connection.status(agent_id)),
                "verdicts": [i.as_json() for i in items],
                "next": items[-1].seq if items else after,
            }
        )

    @app.get("/health", summary="Liveness and the producer queue")
    async def health() -> dict[str, Any]:
        return {
            "status": "ok" if not connection.closed else "closed",
            "queue_free": connection.capacity() if not connection.closed else 0,
            "queue_max": settings.ingest_queue_max,
            "agents": len(tokens.agent_ids),
        }

    return app


async def _sse(feed: VerdictFeed, agent_id: str, seq: int, request: Request) -> AsyncIterator[str]:
    while not await request.is_disconnected():
        items = await feed.wait_after(agent_id, seq, SSE_HEARTBEAT_S)
        if not items:
            yield ": keep-alive\n\n"
            continue
        for item in items:
            yield f"id: {item.seq}\nevent: {item.kind}\ndata: {json.dumps(item.as_json())}\n\n"
            seq = item.seq
