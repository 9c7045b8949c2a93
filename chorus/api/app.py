"""The HTTP control plane and dashboard: `create_app(...)`, served by `chorus api` (uvicorn).

Reads come from a `Fleet` that follows the run's decision topics; writes publish operator
commands through `CommandPublisher.publish_command` only. Bad input is a 4xx that says
what is wrong; an unreachable broker or Redis is a 503, never a 500.
"""

from __future__ import annotations

import asyncio
import json
from importlib import resources
from typing import Annotated, Literal

import redis
from confluent_kafka import KafkaException
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from sse_starlette.sse import EventSourceResponse

from processors.runtime.errors import KeyFileError, SecurityConfigError
from processors.runtime.settings import ApiToken, Settings
from schemas import ChorusError, OperatorCommand, encode

from .. import views
from ..fleet import Fleet
from .auth import Auth, Principal
from .commands import CommandPublisher
from .ratelimit import RateLimiter

AgentId = Annotated[str, Path(pattern=r"^\S+$", max_length=256, description="An agent id of the run.")]
FEED_POLL_S = 0.1
FEED_BATCH = 500
GROUPS_MAX_AGE_S = 5.0  # processors' groups and lag in /status are at most this old


class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field(default="", max_length=500, description="Why: kept in the command and in the decision's detail.")


class SetTrust(Note):
    trust: float = Field(ge=0, le=100, description="The new trust score, 0-100.")


class Accepted(BaseModel):
    """A command was published; its effect arrives as a decision on the feed."""

    command: dict


class Health(BaseModel):
    status: Literal["ok", "not ready"]
    run_id: str
    ledger_caught_up: bool
    redis: bool
    following: bool
    ledger_seq: int


def create_app(settings: Settings, fleet: Fleet, tokens: dict[str, ApiToken], publisher: CommandPublisher) -> FastAPI:
    app = FastAPI(
        title="Chorus operator API",
        version="1",
        description="The fleet's state, each agent's story with its cause chains, operator commands, "
        "and a live feed of decisions (Server-Sent Events). Authenticate with `Authorization: Bearer <token>`; "
        "roles: `read` (GET) and `operate` (POST).",
    )
    auth = Auth(tokens)
    limiter = RateLimiter(settings.api_write_rate_per_min / 60.0, settings.api_write_burst)
    reader = Depends(auth.require("read"))
    operator = Depends(auth.require("operate"))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return JSONResponse({"detail": f"invalid request: {summary}", "errors": errors}, status_code=422)

    @app.exception_handler(KeyFileError)
    @app.exception_handler(SecurityConfigError)
    async def _cannot_sign(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"this API cannot sign operator commands: {exc}"}, status_code=503)

    @app.exception_handler(KafkaException)
    @app.exception_handler(redis.RedisError)
    @app.exception_handler(ChorusError)
    async def _unavailable(_request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"a backing service is unavailable: {exc}"}, status_code=503)

    # --- health ------------------------------------------------------------------------

    def _health() -> Health:
        ok_redis = fleet.state.ping()
        ready = fleet.ledger.caught_up and ok_redis and fleet.following
        return Health(status="ok" if ready else "not ready", run_id=fleet.run_id,
                      ledger_caught_up=fleet.ledger.caught_up, redis=ok_redis, following=fleet.following,
                      ledger_seq=fleet.ledger.last_seq)

    @app.get("/health", tags=["health"], summary="The process answers")
    def health() -> dict:
        return {"status": "ok"}

    @app.get("/ready", tags=["health"], summary="Caught up with the decision topics and Redis answers",
             responses={503: {"model": Health}})
    def ready() -> JSONResponse:
        h = _health()
        return JSONResponse(h.model_dump(), status_code=200 if h.status == "ok" else 503)

    # --- reads -----------------------------------------------------------------------------

    @app.get("/whoami", tags=["health"], summary="The token's subject and role")
    def whoami(principal: Principal = reader) -> dict:
        return {"subject": principal.subject, "role": principal.role, "run_id": fleet.run_id,
                "can_sign": publisher.can_sign}

    @app.get("/status", tags=["fleet"], dependencies=[reader], summary="The fleet now")
    def status() -> views.Status:
        return fleet.status(groups_max_age_s=GROUPS_MAX_AGE_S)

    @app.get("/agents", tags=["fleet"], dependencies=[reader], summary="Every agent with trust and status")
    def agents() -> list[views.AgentRow]:
        return fleet.agents()

    @app.get("/agents/{agent_id}", tags=["fleet"], dependencies=[reader],
             summary="An agent's story: trust history, anomalies, conflicts, decisions with cause chains")
    def agent(agent_id: AgentId) -> views.Explanation:
        if not fleet.knows(agent_id):
            raise HTTPException(404, f"agent {agent_id!r} has no state or decisions in run {fleet.run_id!r}")
        return fleet.explain(agent_id)

    @app.get("/quarantine", tags=["fleet"], dependencies=[reader], summary="Agents held now")
    def quarantine() -> list[views.Held]:
        return fleet.held()[0]

    @app.get("/approvals", tags=["fleet"], dependencies=[reader], summary="Quarantines waiting for an operator")
    def approvals() -> list[views.Held]:
        return fleet.held()[1]

    @app.get("/conflicts", tags=["fleet"], dependencies=[reader], summary="Predicted conflicts per resource")
    def conflicts() -> list[views.ResourceConflicts]:
        return fleet.conflicts()

    @app.get("/feed", tags=["feed"], summary="Live decisions (Server-Sent Events); resumes after Last-Event-ID",
             response_class=EventSourceResponse)
    async def feed(
        request: Request,
        principal: Principal = Depends(auth.require("read", allow_query=True)),  # noqa: B008
        after: int | None = Query(default=None, ge=0, description="Start after this ledger sequence number "
                                  "(default: from now). The Last-Event-ID header takes precedence."),
        types: str | None = Query(default=None, description="Comma-separated event types to send (default: all)."),
    ) -> EventSourceResponse:
        last = request.headers.get("last-event-id")
        if last is not None:
            if not last.isdigit():
                raise HTTPException(400, f"Last-Event-ID must be a ledger sequence number, got {last!r}")
            start = int(last)
        else:
            start = fleet.ledger.last_seq if after is None else after
        wanted = {t.strip() for t in types.split(",")} if types else None

        async def events():
            seq = start
            while True:
                if await request.is_disconnected():
                    return
                batch = fleet.ledger.since(seq, FEED_BATCH)
                if not batch:
                    await asyncio.sleep(FEED_POLL_S)
                    continue
                for record in batch:
                    seq = record.seq
                    if wanted is None or record.event.event_type in wanted:
                        yield {"id": str(record.seq), "event": record.event.event_type,
                               "data": json.dumps({"seq": record.seq, "topic": record.topic,
                                                   "event": json.loads(encode(record.event))})}

        return EventSourceResponse(events(), ping=settings.api_feed_keepalive_s)

    # --- writes ----------------------------------------------------------------------------

    def _publish(principal: Principal, agent_id: str, command: str, note: str, trust: float | None = None) -> Accepted:
        limiter.check(principal.subject)
        cmd: OperatorCommand = publisher.publish_command(
            run_id=fleet.run_id, agent_id=agent_id, command=command, operator=principal.subject, note=note,
            trust=trust)
        return Accepted(command=json.loads(encode(cmd)))

    def _known(agent_id: str) -> None:
        if not fleet.knows(agent_id):
            raise HTTPException(404, f"agent {agent_id!r} has no state or decisions in run {fleet.run_id!r}")

    @app.post("/agents/{agent_id}/quarantine", tags=["commands"], status_code=202, summary="Quarantine now")
    def quarantine_agent(agent_id: AgentId, body: Note | None = None, principal: Principal = operator) -> Accepted:
        _known(agent_id)
        if agent_id in {h.agent_id for h in fleet.held()[0]}:
            raise HTTPException(409, f"agent {agent_id!r} is already quarantined")
        return _publish(principal, agent_id, "quarantine", (body or Note()).note)

    @app.post("/agents/{agent_id}/release", tags=["commands"], status_code=202, summary="Release now")
    def release_agent(agent_id: AgentId, body: Note | None = None, principal: Principal = operator) -> Accepted:
        _known(agent_id)
        quarantined, pending = fleet.held()
        if agent_id not in {h.agent_id for h in quarantined + pending}:
            raise HTTPException(409, f"agent {agent_id!r} is neither quarantined nor pending")
        return _publish(principal, agent_id, "release", (body or Note()).note)

    @app.post("/agents/{agent_id}/trust", tags=["commands"], status_code=202, summary="Set the trust score")
    def set_trust(agent_id: AgentId, body: SetTrust, principal: Principal = operator) -> Accepted:
        _known(agent_id)
        return _publish(principal, agent_id, "set_trust", body.note, trust=body.trust)

    def _pending(decision_id: str) -> str:
        agent_id = fleet.pending_agent(decision_id)
        if agent_id is None:
            if decision_id not in fleet.ledger.by_id:
                raise HTTPException(404, f"no decision {decision_id!r} in run {fleet.run_id!r}")
            raise HTTPException(409, f"decision {decision_id!r} is not a pending approval (anymore)")
        return agent_id

    @app.post("/approvals/{decision_id}/approve", tags=["commands"], status_code=202,
              summary="Approve a pending quarantine")
    def approve(decision_id: AgentId, body: Note | None = None, principal: Principal = operator) -> Accepted:
        return _publish(principal, _pending(decision_id), "approve", (body or Note()).note)

    @app.post("/approvals/{decision_id}/reject", tags=["commands"], status_code=202,
              summary="Reject a pending quarantine")
    def reject(decision_id: AgentId, body: Note | None = None, principal: Principal = operator) -> Accepted:
        return _publish(principal, _pending(decision_id), "reject", (body or Note()).note)

    # --- dashboard -------------------------------------------------------------------------

    static = resources.files(__package__).joinpath("static")

    @app.get("/", include_in_schema=False)
    def dashboard() -> HTMLResponse:
        return HTMLResponse(static.joinpath("index.html").read_text())

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app
