"""The trust processor's own metric: the distribution of stored scores."""

from __future__ import annotations

from prometheus_client import Histogram

TRUST_SCORES = Histogram(
    "chorus_trust_score",
    "Trust scores as stored after each update (the fleet's trust distribution, weighted by activity).",
    buckets=(10, 20, 30, 40, 50, 60, 70, 80, 90, 100),
)
