"""Diagnosis: from an agent's recent anomalies, conflicts and trust drops, name its condition.

Pure and deterministic: the same evidence gives the same condition, confidence and
evidence ids, whatever order it was gathered in (evidence is sorted before use).

Rules, first match wins:
1. *defiance*: the agent claimed resources in a conflict window that began after its
   quarantine had reached it (`held_from`; a held agent that obeys claims nothing).
2. a claim pattern (named most aggressive, or aggressive with at least twice its fair
   share, or quarantined as a conflict aggressor): *resource_hoarding* when its vitals
   deviated too (a hoarder's own load shows), else *deception* (hoards while looking healthy).
3. vitals only: *request_flood* when requests/s rose, *latency_fault* when latency reached
   10x its mean, *error_burst* when the error rate rose by 0.4 or more; else the metric
   with the largest |z| decides (latency -> latency_fault, errors -> error_burst).
4. otherwise *unknown*.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel

from schemas import Condition

LATENCY_FAULT_RATIO = 10.0  # the contention envelope of the baseline: starvation never reaches 10x latency
ERROR_BURST_DELTA = 0.4


class AnomalySeen(BaseModel):
    id: str
    at: datetime
    metric: str
    zscore: float
    ratio: float  # value / mean (inf-safe: 0 mean -> large)
    delta: float  # value - mean


class ConflictSeen(BaseModel):
    id: str
    at: datetime
    window_start: datetime
    aggressor: bool


class TrustSeen(BaseModel):
    id: str
    at: datetime
    reason: str
    drop: float


@dataclass(frozen=True)
class Finding:
    condition: Condition
    confidence: float
    evidence: tuple[str, ...]
    detail: str


def diagnose(
    since: datetime,
    reason: str,
    anomalies: Sequence[AnomalySeen],
    conflicts: Sequence[ConflictSeen],
    trust: Sequence[TrustSeen],
    held_from: datetime | None = None,
) -> Finding:
    """The condition of an agent quarantined at `since` for `reason`, from the evidence around it; claims
    from `held_from` on (default `since`) are defiance."""
    anomalies = sorted(anomalies, key=lambda a: (a.at, a.id))
    conflicts = sorted(conflicts, key=lambda c: (c.at, c.id))
    trust = sorted(trust, key=lambda t: (t.at, t.id))
    defied = [c for c in conflicts if c.window_start >= (held_from or since)]
    if defied:
        return Finding("defiance", _confidence(0.95, len(defied)), _ids(defied), f"claimed in {len(defied)} "
                       "conflict window(s) that began after its quarantine")  # fmt: skip
    aggressive = [c for c in conflicts if c.aggressor]
    if aggressive or reason == "conflict_aggressor":
        if anomalies:
            metrics = ", ".join(sorted({a.metric for a in anomalies}))
            return Finding("resource_hoarding", _confidence(0.9, len(aggressive) + len(anomalies)),
                           _ids(aggressive) + _ids(anomalies), f"aggressive claims and deviating {metrics}")  # fmt: skip
        return Finding("deception", _confidence(0.8, len(aggressive) + 1), _ids(aggressive),
                       "aggressive claims while its vitals look healthy")  # fmt: skip
    if anomalies:
        return _from_vitals(anomalies, trust)
    drops = [t for t in trust if t.drop > 0]
    return Finding("unknown", _confidence(0.3, len(drops)), _ids(drops), f"no pattern in {len(drops)} trust drop(s)")


def _from_vitals(anomalies: Sequence[AnomalySeen], trust: Sequence[TrustSeen]) -> Finding:
    by_metric: dict[str, list[AnomalySeen]] = {}
    for a in anomalies:
        by_metric.setdefault(a.metric, []).append(a)

    def found(condition: Condition, metric: str, why: str) -> Finding:
        items = by_metric[metric]
        return Finding(condition, _confidence(0.85, len(items)), _ids(items), why)

    rps = [a for a in by_metric.get("requests_per_s", ()) if a.zscore > 0]
    if rps:
        return found("request_flood", "requests_per_s", f"requests/s up to {max(a.ratio for a in rps):.1f}x its mean")
    latency = by_metric.get("latency_ms", [])
    if latency and max(a.ratio for a in latency) >= LATENCY_FAULT_RATIO:
        return found("latency_fault", "latency_ms", f"latency up to {max(a.ratio for a in latency):.0f}x its mean")
    errors = by_metric.get("error_rate", [])
    if errors and max(a.delta for a in errors) >= ERROR_BURST_DELTA:
        return found("error_burst", "error_rate", f"error rate up by {max(a.delta for a in errors):.2f}")
    top = max(anomalies, key=lambda a: (abs(a.zscore), a.metric))
    mapped: dict[str, Condition] = {"latency_ms": "latency_fault", "error_rate": "error_burst"}
    condition = mapped.get(top.metric, "unknown")
    confidence = 0.5 if condition != "unknown" else 0.3
    return Finding(condition, _confidence(confidence, len(by_metric[top.metric])), _ids(by_metric[top.metric]),
                   f"largest deviation on {top.metric} (z={top.zscore:.1f})")  # fmt: skip


def _confidence(strength: float, evidence: int) -> float:
    """More independent evidence, more confidence, never above the rule's strength."""
    return round(strength * (1.0 - math.exp(-max(evidence, 1) / 2.0)), 4)


def _ids(items: Sequence[AnomalySeen | ConflictSeen | TrustSeen]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i.id for i in items))
