"""The conflict processor's own metrics (the runtime's cover events in and out)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

GEMINI_CALLS = Counter(
    "chorus_gemini_calls", "Gemini analyses asked for, by outcome (ok, cached or a failure reason).", ["outcome"]
)
GEMINI_FAILURES = Counter(
    "chorus_gemini_failures",
    "Gemini analyses that failed (the fast path stood alone), by reason: "
    "timeout, rate_limited, server_error, client_error, malformed, breaker_open, shed, error.",
    ["reason"],
)
GEMINI_SECONDS = Histogram(
    "chorus_gemini_seconds",
    "Wall time of one Gemini analysis, retries included.",
    buckets=(0.1, 0.5, 1, 2, 5, 10, 20, 60),
)
GEMINI_BREAKER_OPEN = Gauge("chorus_gemini_breaker_open", "1 while the Gemini circuit breaker is open.")
WINDOW_SECONDS = Histogram(
    "chorus_conflict_window_seconds",
    "Fast-path cost of predicting one closed window.",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01),
)
LATE_CLAIMS = Counter("chorus_conflict_late_claims", "Claims for a window that had already closed (not counted).")
