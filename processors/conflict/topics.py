"""The conflict processor's own internal topic: intentions repartitioned by resource."""

from __future__ import annotations

from schemas import Intention, TopicSpec

CLAIMS = TopicSpec(
    "chorus-conflict.claims-by-resource",
    "resource",
    Intention,
    "Intentions repartitioned by resource, so every claim on one resource meets in one place (internal).",
    partitions=8,
    retention_ms=24 * 3600 * 1000,
)
INTERNAL_TOPICS = (CLAIMS,)
