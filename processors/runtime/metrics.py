"""Prometheus metrics of a processor process, served on its own port with the health probes.

The port answers /metrics (Prometheus), /livez and /readyz (see health.py: 200 or 503 with
the reasons as JSON).
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Gauge, Histogram, generate_latest

from .health import WORKER, WorkerHealth

log = logging.getLogger(__name__)

# Default /metrics port per processor, so the four can run side by side on one host.
DEFAULT_PORTS = {"baseline": 9401, "trust": 9402, "conflict": 9403, "quarantine": 9404, "healing": 9405}
FALLBACK_PORT = 9409

EVENTS_IN = Counter("chorus_events_in", "Messages consumed, by source topic.", ["processor", "topic"])
EVENTS_DONE = Counter(
    "chorus_events_done", "Messages whose batch completed: outputs delivered, state and fences written.", ["processor"]
)
EVENTS_OUT = Counter("chorus_events_out", "Events produced, by destination topic.", ["processor", "topic"])
EVENTS_SKIPPED = Counter(
    "chorus_events_skipped", "Events of another run_id, or already applied (redelivered).", ["processor", "why"]
)
DEAD_LETTERS = Counter(
    "chorus_dead_letters",
    "Messages dead-lettered, by source topic and reason: wrong_topic, undecodable, event_time, command_refused, "
    "unroutable, step_failed, refused_by_broker.",
    ["processor", "topic", "reason"],
)
DECISIONS = Counter(
    "chorus_decisions",
    "Decisions delivered, by topic and kind (anomaly metric, conflict failure mode, trust reason, quarantine action).",
    ["processor", "topic", "kind"],
)
# The field naming each decision topic's kind, for the dashboards' "by type" panels.
DECISION_KIND = {
    "immune.anomalies": "metric",
    "immune.conflicts": "failure_mode",
    "immune.trust": "reason",
    "immune.quarantine": "action",
}
STATE_STORE_SECONDS = Histogram(
    "chorus_state_store_seconds",
    "Wall time of one state-store pipeline (read: states and fences; write: the Lua compare-and-set).",
    ["processor", "op"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
)
LAST_COMMIT = Gauge(
    "chorus_last_commit_timestamp_seconds",
    "Unix time of the last offset commit the broker confirmed (time since it: time() - this).",
    ["processor"],
)
ASSIGNED_PARTITIONS = Gauge("chorus_assigned_partitions", "Source partitions this worker holds now.", ["processor"])
BATCH_IN_FLIGHT = Gauge(
    "chorus_batch_in_flight_seconds", "How long the current batch has been in flight; 0 when idle.", ["processor"]
)
LIVE = Gauge("chorus_worker_live", "1 while /livez answers 200 (see health.py).", ["processor"])
READY = Gauge("chorus_worker_ready", "1 while /readyz would answer 200, without the probe's own Redis ping.", ["processor"])
BATCH_SECONDS = Histogram(
    "chorus_batch_seconds",
    "Wall time to process one batch, decode to state write.",
    ["processor"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
BATCH_EVENTS = Histogram(
    "chorus_batch_events", "Messages per batch.", ["processor"], buckets=(1, 5, 10, 50, 100, 250, 500, 1000, 5000)
)
DECISION_LATENCY = Histogram(
    "chorus_decision_latency_seconds",
    "From a cause's occurred_at to the delivery of the decision it caused.",
    ["processor", "topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
REDIS_ERRORS = Counter("chorus_redis_errors", "Transient Redis errors (each one retried).", ["processor"])
KAFKA_ERRORS = Counter("chorus_kafka_errors", "Transient Kafka produce errors (each one retried).", ["processor"])
BATCH_FAILURES = Counter(
    "chorus_batch_failures",
    "Batch attempts failing for a reason not known to be transient (retried too).",
    ["processor"],
)
STATE_CONFLICTS = Counter(
    "chorus_state_conflicts", "State writes that lost a compare-and-set and were recomputed.", ["processor"]
)
OUTBOX_REPUBLISHED = Counter(
    "chorus_outbox_republished",
    "Messages published from an outbox another attempt wrote but did not trim (a crash or a failed produce "
    "between write and publish, or a worker still publishing); duplicates by id downstream.",
    ["processor"],
)
STEP_FAILURES = Counter(
    "chorus_step_failures",
    "Events whose own step raised (after a failed batch step, events are retried one by one); each dead-lettered.",
    ["processor"],
)

EVENT_TIME_REJECTED = Counter(
    "chorus_event_time_rejected",
    "Events dead-lettered at ingress because occurred_at was too far ahead of (future) or behind (past) "
    "the broker timestamp; agent is bounded (see processors/runtime/ingress.py).",
    ["processor", "agent", "why"],
)
PRODUCE_REFUSED = Counter(
    "chorus_produce_refused",
    "Messages the broker refused for a permanent reason (poison: replaced by a dead letter; forbidden: fatal).",
    ["processor", "kind"],
)
COMMANDS_ACCEPTED = Counter(
    "chorus_commands_accepted", "Operator commands whose signature, freshness and nonce checked out.", ["processor", "command"]
)
COMMANDS_REFUSED = Counter(
    "chorus_commands_refused",
    "Operator commands refused and dead-lettered: unsigned, untrusted, forged, expired, ahead, no_timestamp, replayed.",
    ["processor", "why"],
)

MERGE_WAIT = Histogram(
    "chorus_merge_wait_seconds",
    "How long events were held by the ordering rule before they were applied.",
    ["processor"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5, 30),
)
MERGE_FORCED = Counter(
    "chorus_merge_forced",
    "Held events applied after merge_max_wait_s while an input still had unread data (order may differ from a replay).",
    ["processor"],
)
STATE_BEHIND = Counter(
    "chorus_state_behind",
    "Partitions whose Redis state was found behind the group's committed offset on assignment (state lost).",
    ["processor"],
)

def metrics_port(processor: str, configured: int | None) -> int:
    return DEFAULT_PORTS.get(processor, FALLBACK_PORT) if configured is None else configured


def watch_health(processor: str, health: WorkerHealth = WORKER) -> None:
    """Export the health record as gauges, computed at scrape time."""
    BATCH_IN_FLIGHT.labels(processor).set_function(health.seconds_in_flight)
    LIVE.labels(processor).set_function(lambda: float(health.verdict().live))
    READY.labels(processor).set_function(lambda: float(health.verdict().ready))


class _Handler(BaseHTTPRequestHandler):
    health: WorkerHealth = WORKER

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        elif path in ("/livez", "/readyz"):
            verdict = self.health.verdict(probe_services=path == "/readyz")
            ok = verdict.live if path == "/livez" else verdict.ready
            self._send(200 if ok else 503, json.dumps(verdict.as_json()).encode(), "application/json")
        else:
            self._send(404, b"not found: try /metrics, /livez or /readyz\n", "text/plain")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - probes every few seconds: no log line each
        pass


def serve_metrics(processor: str, configured: int | None) -> int | None:
    """Start the /metrics, /livez, /readyz server; the port, or None when off or taken (logged, not fatal)."""
    port = metrics_port(processor, configured)
    if port == 0:
        return None
    try:
        server = ThreadingHTTPServer(("0.0.0.0", port), _Handler)
    except OSError as exc:
        log.error("metrics port unavailable", extra={"port": port, "error": str(exc)})
        return None
    server.daemon_threads = True
    watch_health(processor)
    threading.Thread(target=server.serve_forever, name="chorus-metrics", daemon=True).start()
    log.info("metrics and health served", extra={"port": port})
    return port
