"""The healing loop on the real broker and Redis: the quarantine and healing workers as real
processes; the test plays the fleet (vitals, a baseline, evidence) and the operator."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from schemas import (
    ANOMALIES,
    BASELINES,
    COMMANDS,
    CONFLICTS,
    DIAGNOSES,
    HEALING,
    HELD,
    INTENTIONS,
    QUARANTINE,
    RECOVERY,
    TRUST,
    VITALS,
    AffectedAgent,
    Anomaly,
    BaselineSnapshot,
    ConflictPrediction,
    Diagnosis,
    HealingAction,
    HealingOutcome,
    MetricBaseline,
    QuarantineDecision,
    Vitals,
)
from tests.integration.test_conflict_quarantine_pipeline import T0, Tail, intention, produce, worker
from tests.operators import make_key

pytestmark = pytest.mark.integration

NORMAL = {"latency_ms": 100.0, "error_rate": 0.01, "queue_depth": 5.0, "cpu": 0.3, "requests_per_s": 10.0}
HEALING_ENV = {
    "CHORUS_HEALING_POLICY": json.dumps(
        {"actions": {"resource_hoarding": ["reset_state"]}, "action_timeout_s": 60, "verify_samples": 3,
         "diagnosis_delay_s": 2}
    )
}  # fmt: skip
Q_SOURCES = [INTENTIONS.name, CONFLICTS.name, TRUST.name, ANOMALIES.name, COMMANDS.name, RECOVERY.name]
H_SOURCES = [QUARANTINE.name, VITALS.name, HELD.name, BASELINES.name, ANOMALIES.name, TRUST.name,
             CONFLICTS.name, COMMANDS.name, DIAGNOSES.name, HEALING.name, RECOVERY.name]  # fmt: skip


def at(t: float):  # noqa: ANN201
    return T0 + timedelta(seconds=t)


def vitals(run_id: str, agent: str, t: float, **changed: float) -> Vitals:
    return Vitals(event_id=f"{run_id}-v-{agent}-{t}", occurred_at=at(t), producer="test", run_id=run_id,
                  agent_id=agent, **{**NORMAL, **changed})  # fmt: skip


def baseline(run_id: str, agent: str) -> BaselineSnapshot:
    return BaselineSnapshot(
        event_id=f"{run_id}-b-{agent}", occurred_at=at(0), producer="test", run_id=run_id, agent_id=agent,
        frozen=False, metrics={m: MetricBaseline(count=40, mean=v, stddev=0.05 * v) for m, v in NORMAL.items()},
    )  # fmt: skip


def conflict(run_id: str, agent: str, t: float) -> ConflictPrediction:
    me = AffectedAgent(agent_id=agent, demand=120, share=0.8, fair_share=0.2, priority=10, aggressiveness=0.95)
    return ConflictPrediction(
        event_id=f"{run_id}-c-{agent}", occurred_at=at(t), producer="test", run_id=run_id, resource="gpu",
        window_start=at(t - 2), window_end=at(t), capacity=50, demand=150, risk=0.9, confidence=0.9,
        failure_mode="hoarding", affected=(me,), most_aggressive=agent,
    )  # fmt: skip


def cpu_anomaly(run_id: str, agent: str, t: float) -> Anomaly:
    return Anomaly(event_id=f"{run_id}-a-{agent}", occurred_at=at(t), producer="test", run_id=run_id, agent_id=agent,
                   metric="cpu", value=0.6, mean=0.3, stddev=0.015, zscore=20, severity="high",
                   sustained_samples=3)  # fmt: skip


def pace(t: float) -> None:
    """Keep event time behind the wall clock: the ingress rule refuses events dated ahead of the broker."""
    while at(t) > datetime.now(UTC) + timedelta(seconds=5):
        time.sleep(0.1)


def listen(tail: Tail, seconds: float) -> list:
    """What the tail has seen after reading for `seconds` more."""
    until = time.monotonic() + seconds
    return tail.until(lambda _seen: time.monotonic() >= until, timeout_s=seconds + 5)


def of(seen, kind, agent, **match):  # noqa: ANN001, ANN201
    return [e for _, e in seen if isinstance(e, kind) and e.agent_id == agent
            and all(getattr(e, k) == v for k, v in match.items())]  # fmt: skip


def test_a_hoarder_is_diagnosed_healed_verified_and_released_and_a_rejected_severe_case_stays_held(
    services, run_id, tmp_path
) -> None:
    alice = make_key(tmp_path, "alice")
    keys = {"CHORUS_OPERATOR_PUBLIC_KEYS": str(alice.public_path)}
    tail = Tail(services.kafka, [QUARANTINE, DIAGNOSES, HEALING, RECOVERY], run_id)
    fleet = [f"a{i}" for i in range(5)] + ["hog", "liar"]
    try:
        with (
            worker("quarantine", services, run_id, Q_SOURCES, CHORUS_QUARANTINE_FLEET_CAP="1.0", **keys),
            worker("healing", services, run_id, H_SOURCES, **HEALING_ENV, **keys),
        ):
            produce(services.kafka, BASELINES, [baseline(run_id, a) for a in ("hog", "liar")])
            produce(services.kafka, INTENTIONS, [intention(run_id, i, a, 0.5) for i, a in enumerate(fleet)])
            # The hoarder's own load shows in its cpu; the liar hoards with healthy vitals (deception: severe).
            produce(services.kafka, ANOMALIES, [cpu_anomaly(run_id, "hog", 1.5)])
            produce(services.kafka, CONFLICTS, [conflict(run_id, "hog", 2.0), conflict(run_id, "liar", 2.0)])
            seen = tail.until(lambda s: len(of(s, QuarantineDecision, "hog", action="quarantine"))
                              and len(of(s, QuarantineDecision, "liar", action="quarantine")))  # fmt: skip
            t, cured_from = 3.0, None
            # Play the fleet: one vitals sample a second; the hoarder is sick until the policy's action reaches it.
            while not of(seen, QuarantineDecision, "hog", action="release"):
                pace(t)
                sick = cured_from is None or t < cured_from
                produce(services.kafka, VITALS, [vitals(run_id, "hog", t, **({"cpu": 0.6} if sick else {})),
                                                 vitals(run_id, "liar", t)])  # fmt: skip
                seen = listen(tail, 0.5)
                if cured_from is None and of(seen, HealingAction, "hog", status="issued", action="reset_state"):
                    cured_from = t + 1
                t += 1
                assert t < 90, f"no release by event time {t}: {[(type(e).__name__) for _, e in seen]}"
            # The severe case: pending approval; the operator rejects it.
            seen = tail.until(lambda s: len(of(s, HealingAction, "liar", status="pending_approval")))
            produce(services.kafka, COMMANDS, [alice.sign("liar", "reject", run_id=run_id, operator="alice")])
            seen = tail.until(lambda s: len(of(s, HealingOutcome, "liar", outcome="rejected")))
            for k in range(8):  # healthy-looking vitals go on: a rejected healing keeps it held all the same
                pace(t + 1 + k)
                produce(services.kafka, VITALS, [vitals(run_id, "liar", t + 1 + k)])
            seen = listen(tail, 4.0)
    finally:
        tail.close()

    (diag,) = of(seen, Diagnosis, "hog")
    assert diag.condition == "resource_hoarding" and not diag.severe
    assert [(a.action, a.status) for a in of(seen, HealingAction, "hog")] == [("reset_state", "issued")]
    (cure,) = of(seen, HealingOutcome, "hog")
    (held,) = of(seen, QuarantineDecision, "hog", action="quarantine")
    (release,) = of(seen, QuarantineDecision, "hog", action="release")
    assert (cure.outcome, cure.quarantine_id, cure.samples) == ("cured", held.event_id, 3)
    assert cure.occurred_at >= at(cured_from + 2)  # three samples after the cure, never before
    assert (release.reason, release.causation_ids) == ("recovered", (cure.event_id,))

    assert [d.condition for d in of(seen, Diagnosis, "liar")] == ["deception"]
    assert [(a.status) for a in of(seen, HealingAction, "liar")] == ["pending_approval"]
    assert [o.outcome for o in of(seen, HealingOutcome, "liar")] == ["rejected"]
    assert not of(seen, QuarantineDecision, "liar", action="release")
