"""`chorus ingest` as its own process on the real broker and Redis, with the real quarantine worker as the gate."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from chorus.probe import free_port
from schemas import ANOMALIES, COMMANDS, CONFLICTS, INTENTIONS, TRUST, VITALS
from tests.integration.runtime_workers import TopicReader, produce, running_worker
from tests.operators import make_key

pytestmark = pytest.mark.integration

TOKENS = {"alpha": "tok-alpha-5f2c", "beta": "tok-beta-91ad"}


def auth(agent: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[agent]}"}


@contextlib.contextmanager
def ingest(services, run_id: str, log_dir: Path, **env: str) -> Iterator[str]:
    port = free_port()
    full = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": services.kafka,
        "REDIS_URL": services.redis_url,
        "CHORUS_RUN_ID": run_id,
        "CHORUS_INGEST_TOKENS": json.dumps(TOKENS),
        **env,
    }
    with (log_dir / "ingest.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "chorus.cli", "ingest", "--port", str(port)],
            env=full,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                assert proc.poll() is None, (log_dir / "ingest.log").read_text()
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                        break
                assert time.monotonic() < deadline, "the ingest did not answer within 60 s"
                time.sleep(0.2)
            yield url
        finally:
            proc.terminate()
            proc.wait(30)


def intention(agent: str, **fields: object) -> dict[str, object]:
    return {"agent_id": agent, "action": "acquire", "resource": "gpu", "amount": 1.0, "hold_s": 2.0} | fields


def poll_until(url: str, agent: str, after: int, done, timeout_s: float = 90.0) -> tuple[list[dict], int, dict]:
    items: list[dict] = []
    deadline = time.monotonic() + timeout_s
    body: dict = {}
    while not done(items):
        assert time.monotonic() < deadline, f"verdicts so far: {items}"
        body = httpx.get(
            f"{url}/v1/agents/{agent}/verdicts", params={"after": after, "wait": 5}, headers=auth(agent), timeout=10
        ).json()
        items += body["verdicts"]
        after = body["next"]
    return items, after, body


def test_tokens_bodies_and_verdicts(services, run_id, tmp_path: Path) -> None:
    reader = TopicReader(services, [INTENTIONS, VITALS], run_id)
    operator = make_key(tmp_path)
    try:
        with (
            running_worker(
                "quarantine",
                services,
                run_id,
                (TRUST, CONFLICTS, ANOMALIES, COMMANDS, INTENTIONS),
                tmp_path,
                CHORUS_OPERATOR_PUBLIC_KEYS=str(operator.public_path),
            ),
            ingest(services, run_id, tmp_path) as url,
        ):
            post = lambda path, body, agent=None: httpx.post(  # noqa: E731
                f"{url}{path}", json=body, headers=auth(agent) if agent else {}, timeout=30
            )
            assert post("/v1/intentions", intention("alpha")).status_code == 401
            assert (
                httpx.post(
                    f"{url}/v1/intentions", json=intention("alpha"), headers={"Authorization": "Bearer nope"}
                ).status_code
                == 401
            )
            forbidden = post("/v1/intentions", [intention("alpha"), intention("beta")], "alpha")
            assert forbidden.status_code == 403 and "beta" in forbidden.json()["error"]
            bad = post("/v1/intentions", [intention("alpha"), intention("alpha", amount=-1, action="borrow")], "alpha")
            assert bad.status_code == 422
            assert {p["field"] for p in bad.json()["detail"]} == {"[1].amount", "[1].action"}
            assert (
                post("/v1/vitals", {"agent_id": "alpha", "latency_ms": 3}, "alpha").json()["detail"][0]["field"]
                == "error_rate"
            )
            assert httpx.get(f"{url}/v1/agents/beta/verdicts", headers=auth("alpha")).status_code == 403

            ok = post("/v1/intentions", [intention("alpha"), intention("alpha", resource="api")], "alpha")
            assert ok.status_code == 202, ok.text
            ids = ok.json()["event_ids"]
            vitals = {
                "agent_id": "alpha",
                "latency_ms": 12.5,
                "error_rate": 0.0,
                "queue_depth": 1,
                "cpu": 0.2,
                "requests_per_s": 4,
            }
            assert post("/v1/vitals", vitals, "alpha").status_code == 202

            items, cursor, body = poll_until(
                url, "alpha", 0, lambda got: {i.get("intention_id") for i in got} >= set(ids)
            )
            assert [i["kind"] for i in items if i.get("intention_id") in ids] == ["admitted", "admitted"]
            assert body["quarantined"] is False

            quarantine = operator.sign("alpha", "quarantine", run_id=run_id)
            produce(services, [(COMMANDS, quarantine)])
            items, cursor, body = poll_until(
                url, "alpha", cursor, lambda got: any(i["kind"] == "decision" for i in got)
            )
            assert body["quarantined"] is True and body["decision"]["reason"] == "operator"

            # The ingest forwards what a held agent sends; the gate holds it and says so.
            late = post("/v1/intentions", intention("alpha"), "alpha")
            assert late.status_code == 202
            [late_id] = late.json()["event_ids"]
            items, cursor, _ = poll_until(
                url, "alpha", cursor, lambda got: any(i.get("intention_id") == late_id for i in got)
            )
            [verdict] = [i for i in items if i.get("intention_id") == late_id]
            assert verdict["kind"] == "held" and verdict["event"]["reason"] == "operator"

            # Server-Sent Events, resuming after a cursor: the held verdict again, as an event with its id.
            with httpx.stream(
                "GET",
                f"{url}/v1/agents/alpha/verdicts",
                headers=auth("alpha") | {"Accept": "text/event-stream", "Last-Event-ID": str(verdict["seq"] - 1)},
                timeout=30,
            ) as stream:
                lines = []
                for line in stream.iter_lines():
                    lines.append(line)
                    if line.startswith("data:"):
                        break
            assert f"id: {verdict['seq']}" in lines and "event: held" in lines
            assert json.loads(lines[-1][len("data:") :])["intention_id"] == late_id
        seen = reader.wait_for(lambda s: len(s) >= 4, 30)
    finally:
        reader.close()
    on_topics = {(t, v["event_id"]) for t, v in seen}
    assert {(INTENTIONS.name, i) for i in ids + [late_id]} <= on_topics
    assert any(t == VITALS.name and v["latency_ms"] == 12.5 and v["producer"] == "ingest:alpha" for t, v in seen)


def test_a_full_producer_queue_answers_429_and_loses_no_accepted_event(services, run_id, tmp_path: Path) -> None:
    reader = TopicReader(services, [INTENTIONS], run_id)
    # A small queue that drains slowly (each request waits 1.5 s to fill): the queue fills for real.
    with ingest(services, run_id, tmp_path, CHORUS_INGEST_QUEUE_MAX="20", CHORUS_AGENT_LINGER_MS="1500") as url:

        def send(n: int) -> tuple[int, list[str], str | None]:
            body = [intention("beta", event_id=f"{run_id}-{n}-{k}") for k in range(5)]
            r = httpx.post(f"{url}/v1/intentions", json=body, headers=auth("beta"), timeout=60)
            return r.status_code, [b["event_id"] for b in body], r.headers.get("retry-after")

        with ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(send, range(12)))
    try:
        accepted = [i for code, ids, _ in answers if code == 202 for i in ids]
        refused = [i for code, ids, _ in answers if code == 429 for i in ids]
        assert {code for code, _, _ in answers} == {202, 429}
        assert all(after == "1" for code, _, after in answers if code == 429)
        assert len(accepted) + len(refused) == 60
        reader.wait_for(lambda s: len(s) >= len(accepted), 30)
        reader.drain(2)
    finally:
        reader.close()
    written = [v["event_id"] for _, v in reader.seen]
    assert sorted(written) == sorted(accepted)  # every accepted event once, nothing of a refused request
