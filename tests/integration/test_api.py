"""The HTTP API on the real broker and Redis: tokens and roles, clear 4xx for bad input, writes that
publish operator commands naming the token's subject, write rate limits, and a feed that resumes
after a dropped connection without losing an event."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from chorus.api.app import create_app
from chorus.api.commands import CommandPublisher
from chorus.ledger import Ledger, read_decisions
from schemas import TRUST, OperatorCommand
from tests.integration.api_fixtures import (
    OPERATE,
    READ,
    TOKENS,
    follow,
    publish,
    seed,
    serve,
    settings_for,
    trust_change,
    wait_for,
)
from tests.operators import make_key
from tests.services import Services

pytestmark = pytest.mark.integration
AS_READ = {"Authorization": f"Bearer {READ}"}
AS_OPERATE = {"Authorization": f"Bearer {OPERATE}"}


@pytest.fixture
def client(services: Services, run_id: str, tmp_path: Path):
    seeded = seed(services, run_id, "agent-1")
    fleet = follow(services, run_id)
    wait_for(lambda: fleet.ledger.last_seq >= 2, what="the seeded decisions")
    key = make_key(tmp_path / "api", "api")
    settings = settings_for(services, api_write_burst=3, api_write_rate_per_min=1.0, operator_key=str(key.private_path))
    app = create_app(settings, fleet, TOKENS, CommandPublisher(settings))
    with TestClient(app, raise_server_exceptions=False) as c:
        c.seeded = seeded
        c.key_id = key.key_id
        yield c
    fleet.close()


def test_no_token_is_401_and_a_read_token_writing_is_403(client: TestClient) -> None:
    assert client.get("/status").status_code == 401
    assert client.get("/status", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/status", headers=AS_READ).status_code == 200
    refused = client.post("/agents/agent-1/release", headers=AS_READ)
    assert refused.status_code == 403
    assert "needs 'operate'" in refused.json()["detail"]
    assert client.get("/health").status_code == 200  # probes need no token


def test_malformed_bodies_are_422_naming_the_field(client: TestClient) -> None:
    missing = client.post("/agents/agent-1/trust", headers=AS_OPERATE, json={"note": "x"})
    assert missing.status_code == 422
    assert [e["field"] for e in missing.json()["errors"]] == ["body.trust"]
    out_of_range = client.post("/agents/agent-1/trust", headers=AS_OPERATE, json={"trust": 150})
    assert out_of_range.status_code == 422 and "body.trust" in out_of_range.json()["detail"]
    unknown = client.post("/agents/agent-1/release", headers=AS_OPERATE, json={"nonsense": 1})
    assert unknown.status_code == 422 and "body.nonsense" in unknown.json()["detail"]
    garbage = client.post("/agents/agent-1/trust", headers={**AS_OPERATE, "Content-Type": "application/json"},
                          content=b"{not json")
    assert garbage.status_code == 422 and "JSON" in garbage.json()["detail"]
    assert client.get("/feed", headers={**AS_READ, "Last-Event-ID": "abc"}).status_code == 400


def test_unknown_things_are_404_and_impossible_commands_409(client: TestClient) -> None:
    assert client.get("/agents/nobody", headers=AS_READ).status_code == 404
    assert client.post("/agents/nobody/quarantine", headers=AS_OPERATE).status_code == 404
    assert client.post("/approvals/no-such-decision/approve", headers=AS_OPERATE).status_code == 404
    trust_id = client.seeded[0].event_id
    assert client.post(f"/approvals/{trust_id}/approve", headers=AS_OPERATE).status_code == 409


def test_reads_show_the_pending_decision_with_its_chain(client: TestClient) -> None:
    change, decision = client.seeded
    approvals = client.get("/approvals", headers=AS_READ).json()
    assert [(a["agent_id"], a["decision_id"]) for a in approvals] == [("agent-1", decision.event_id)]
    story = client.get("/agents/agent-1", headers=AS_READ).json()
    assert story["status"] == "pending"
    assert story["decisions"][0]["chain"]["causes"][0]["event_type"] == "input"
    assert [p["event_id"] for p in story["trust_history"]] == [change.event_id]
    assert client.get("/status", headers=AS_READ).json()["pending"][0]["agent_id"] == "agent-1"


def test_approve_publishes_a_command_naming_the_subject_then_writes_are_rate_limited(
    client: TestClient, services: Services, run_id: str
) -> None:
    decision = client.seeded[1]
    accepted = client.post(f"/approvals/{decision.event_id}/approve", headers=AS_OPERATE, json={"note": "seen it"})
    assert accepted.status_code == 202, accepted.text
    sent = accepted.json()["command"]
    assert (sent["command"], sent["agent_id"], sent["operator"], sent["note"]) == ("approve", "agent-1", "alice", "seen it")

    on_topic = read_decisions(services.kafka, Ledger(run_id), agent="agent-1")
    commands = [r.event for r in on_topic.records if isinstance(r.event, OperatorCommand)]
    assert [(c.event_id, c.operator, c.command) for c in commands] == [(sent["event_id"], "alice", "approve")]
    assert commands[0].signature and commands[0].key_id == client.key_id  # signed with the API's key

    assert client.post("/agents/agent-1/trust", headers=AS_OPERATE, json={"trust": 50}).status_code == 202
    assert client.post("/agents/agent-1/trust", headers=AS_OPERATE, json={"trust": 55}).status_code == 202
    limited = client.post("/agents/agent-1/trust", headers=AS_OPERATE, json={"trust": 60})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def _read_events(response: httpx.Response, count: int) -> list[tuple[int, dict]]:
    events, current = [], {}
    for line in response.iter_lines():
        if line.startswith("id:"):
            current["id"] = int(line[3:].strip())
        elif line.startswith("data:"):
            current["data"] = json.loads(line[5:].strip())
        elif not line and "data" in current:
            events.append((current["id"], current["data"]))
            current = {}
            if len(events) == count:
                break
    return events


def test_the_feed_resumes_after_a_dropped_connection_without_losing_an_event(services: Services, run_id: str) -> None:
    server = serve(services, run_id)
    try:
        first = [trust_change(run_id, f"agent-{n % 3}", n) for n in range(6)]
        publish(services, [(TRUST, e) for e in first])
        auth = {"Authorization": f"Bearer {READ}"}
        with httpx.Client(base_url=server.url, timeout=30) as http:
            with http.stream("GET", "/feed", params={"after": 0}, headers=auth) as resp:
                assert resp.status_code == 200
                seen = _read_events(resp, 4)  # then the connection drops
            later = [trust_change(run_id, f"agent-{n % 3}", n) for n in range(6, 12)]
            publish(services, [(TRUST, e) for e in later])
            with http.stream("GET", "/feed", headers={**auth, "Last-Event-ID": str(seen[-1][0])}) as resp:
                seen += _read_events(resp, 8)
        ids = [i for i, _ in seen]
        assert ids == list(range(1, 13)), ids
        assert {d["event"]["event_id"] for _, d in seen} == {e.event_id for e in first + later}
    finally:
        server.stop()
