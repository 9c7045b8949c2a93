"""The quarantine processor's internal topics: its inputs in one sequence.

The fleet cap is a share of the whole fleet, so whether one agent may be quarantined
depends on every other agent's state at that moment in event time. The book therefore
reads its inputs from single-partition copies: one worker applies them in one order (the
runtime's ordering rule), whatever the number of replicas. A second replica is a hot
standby that takes the partitions over when the first one dies.
"""

from __future__ import annotations

from schemas import ANOMALIES, COMMANDS, CONFLICTS, INTENTIONS, RECOVERY, TRUST, TopicSpec


def _sequenced(source: TopicSpec) -> TopicSpec:
    return TopicSpec(
        f"chorus-quarantine.seq.{source.name}",
        source.key_field,
        source.model,
        f"{source.name} copied into the quarantine book's single sequence (internal).",
        partitions=1,
        retention_ms=24 * 3600 * 1000,
    )


# In rank order: at equal event time, policy inputs come before the intentions they may hold back.
SOURCES = (TRUST, CONFLICTS, ANOMALIES, COMMANDS, RECOVERY, INTENTIONS)
SEQUENCED = {source.name: _sequenced(source) for source in SOURCES}
INTERNAL_TOPICS = tuple(SEQUENCED.values())
