"""The healing processor's own metrics (the runtime's cover events in and out)."""

from __future__ import annotations

from prometheus_client import Counter

OUTCOMES = Counter("chorus_healing_outcomes", "Healing outcomes, by condition and outcome.", ["condition", "outcome"])
DIAGNOSES = Counter("chorus_healing_diagnoses", "Diagnoses, by condition.", ["condition"])
