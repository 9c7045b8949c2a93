"""Prometheus metrics of a processor process, served on its own port."""

from __future__ import annotations

import logging

from prometheus_client import Counter, Histogram, start_http_server

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
DEAD_LETTERS = Counter("chorus_dead_letters", "Messages sent to the dead-letter topic.", ["processor", "topic"])
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


def metrics_port(processor: str, configured: int | None) -> int:
    return DEFAULT_PORTS.get(processor, FALLBACK_PORT) if configured is None else configured


def serve_metrics(processor: str, configured: int | None) -> int | None:
    """Start the /metrics HTTP server; the port, or None when off or taken (logged, not fatal)."""
    port = metrics_port(processor, configured)
    if port == 0:
        return None
    try:
        start_http_server(port)
    except OSError as exc:
        log.error("metrics port unavailable", extra={"port": port, "error": str(exc)})
        return None
    log.info("metrics served", extra={"port": port})
    return port
