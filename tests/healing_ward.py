"""An in-process loop of the healing processor's pure step, for unit tests and scenario checks:
events in, outputs routed back to the entities that read them (as the topics would), states kept."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from processors.healing.policy import HealingPolicy
from processors.healing.step import HealingState, entities_of, step
from schemas import (
    AffectedAgent,
    Anomaly,
    BaselineSnapshot,
    ConflictPrediction,
    Diagnosis,
    Event,
    HealingAction,
    HealingOutcome,
    ImmuneMemory,
    IntentionHeld,
    MetricBaseline,
    OperatorCommand,
    QuarantineDecision,
    TrustChange,
    Vitals,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RUN = "run"
NORMAL = {"latency_ms": 100.0, "error_rate": 0.01, "queue_depth": 5.0, "cpu": 0.3, "requests_per_s": 10.0}
LOOPED = (Diagnosis, HealingAction, HealingOutcome)  # the processor reads its own outputs back


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


@dataclass
class Ward:
    policy: HealingPolicy = field(default_factory=HealingPolicy)
    states: dict[str, HealingState] = field(default_factory=dict)
    published: list[Event] = field(default_factory=list)

    def feed(self, *events: Event) -> list[Event]:
        """Apply events (and every output they cause, in order); the new outputs."""
        start = len(self.published)
        queue = deque(events)
        while queue:
            event = queue.popleft()
            for entity in entities_of(event):
                before = self.states.get(entity)
                seen = before.model_dump() if before is not None else None
                result = step(entity, before, [event], self.policy)
                assert before is None or before.model_dump() == seen, "the step changed its input state"
                if result.state is not None:
                    self.states[entity] = result.state
                for out in result.outputs:
                    self.published.append(out.event)
                    if isinstance(out.event, LOOPED):
                        queue.append(out.event)
        return self.published[start:]

    def of(self, kind: type[Event]) -> list:
        return [e for e in self.published if isinstance(e, kind)]

    def memory(self, condition: str) -> list[ImmuneMemory]:
        return [e for e in self.of(ImmuneMemory) if e.condition == condition]


_n = 0


def _id(prefix: str) -> str:
    global _n
    _n += 1
    return f"{prefix}{_n}"


def vitals(agent: str, t: float, **deviations: float) -> Vitals:
    return Vitals(event_id=_id("v"), occurred_at=at(t), producer="sim", run_id=RUN, agent_id=agent,
                  **{**NORMAL, **deviations})  # fmt: skip


def baseline(agent: str, t: float) -> BaselineSnapshot:
    return BaselineSnapshot(
        event_id=_id("b"), occurred_at=at(t), producer="baseline", run_id=RUN, agent_id=agent, frozen=False,
        metrics={m: MetricBaseline(count=50, mean=v, stddev=0.02 * v + 0.001) for m, v in NORMAL.items()},
    )  # fmt: skip


def anomaly(agent: str, t: float, metric: str, value: float) -> Anomaly:
    mean = NORMAL[metric]
    return Anomaly(event_id=_id("a"), occurred_at=at(t), producer="baseline", run_id=RUN, agent_id=agent,
                   metric=metric, value=value, mean=mean, stddev=0.05 * mean, zscore=(value - mean) / (0.05 * mean),
                   severity="high", sustained_samples=3)  # fmt: skip


def conflict(agent: str, t: float, window_start: float, *, aggressor: bool = True) -> ConflictPrediction:
    me = AffectedAgent(agent_id=agent, demand=50.0, share=0.8 if aggressor else 0.1, fair_share=0.2, priority=10,
                       aggressiveness=0.9 if aggressor else 0.1)  # fmt: skip
    return ConflictPrediction(
        event_id=_id("c"), occurred_at=at(t), producer="conflict", run_id=RUN, resource="gpu",
        window_start=at(window_start), window_end=at(window_start + 5), capacity=100.0, demand=90.0, risk=0.9,
        confidence=0.9, failure_mode="hoarding", affected=(me,), most_aggressive=agent if aggressor else None,
    )  # fmt: skip


def quarantine(agent: str, t: float, reason: str = "conflict_aggressor") -> QuarantineDecision:
    return QuarantineDecision(event_id=_id("q"), occurred_at=at(t), producer="quarantine", run_id=RUN,
                              agent_id=agent, action="quarantine", reason=reason)  # fmt: skip


def release(agent: str, t: float, reason: str = "recovered") -> QuarantineDecision:
    return QuarantineDecision(event_id=_id("r"), occurred_at=at(t), producer="quarantine", run_id=RUN,
                              agent_id=agent, action="release", reason=reason)  # fmt: skip


def attributed(agent: str, t: float, *causes: str) -> TrustChange:
    """Trust blaming a symptom (the anomaly among `causes`) on the fleet: zero points, as the trust processor does."""
    return TrustChange(event_id=_id("t"), occurred_at=at(t), producer="trust", run_id=RUN, agent_id=agent,
                       causation_ids=causes, before=100.0, after=100.0, reason="attributed",
                       detail="blamed on contention")  # fmt: skip


def command(agent: str, t: float, what: str) -> OperatorCommand:
    return OperatorCommand(event_id=_id("o"), occurred_at=at(t), producer="cli", run_id=RUN, agent_id=agent,
                           command=what, operator="alice")  # fmt: skip


def claim(agent: str, t: float) -> IntentionHeld:
    """An acquisition of a quarantined agent, as the gate publishes it when it holds it."""
    intention = _id("i")
    return IntentionHeld(event_id=_id("h"), occurred_at=at(t), producer="quarantine", run_id=RUN, agent_id=agent,
                         causation_ids=(intention,), intention_id=intention, action="acquire", resource="gpu")  # fmt: skip
