"""The trust processor's internal topic: conflicts re-keyed by affected agent."""

from __future__ import annotations

from schemas import ConflictPrediction, TopicSpec

CONFLICTS_BY_AGENT = TopicSpec(
    "chorus-trust.conflicts-by-agent",
    "agent_id",
    ConflictPrediction,
    "A copy of each conflict prediction per affected agent, keyed by that agent (internal).",
    partitions=8,
    retention_ms=24 * 3600 * 1000,
)
INTERNAL_TOPICS = (CONFLICTS_BY_AGENT,)
