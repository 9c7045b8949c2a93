"""Baseline learning and anomaly detection, pure: no I/O, no clock.

Per agent and metric, a running mean/variance (Welford's update with the count capped
at `window`, so old samples fade and the baseline can follow slow drift). After
`warmup` samples a sample deviates when |z| >= `zscore`; `sustain` consecutive
deviating samples raise an Anomaly (one noisy sample does not), and `clear`
consecutive normal ones end it. While any metric of an agent is anomalous the whole
agent's baseline is frozen, so an infection is never learned as normal.

Critical is kept for what contention cannot explain. An agent starved of a resource,
or depending on one that is, waits: its latency and queue grow, its errors rise a
little, it does less. Those symptoms are bounded and say nothing about whether the
agent is to blame, and a victim must never be quarantined for them. So a deviation
reaches critical only when it is both extreme in |z| and beyond the contention
envelope (`critical_beyond`): latency many times its mean, errors far above theirs,
a surge of requests. A growing queue or a busy cpu alone is at most high.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, Field

from processors.runtime import Output, Step
from schemas import (
    ANOMALIES,
    BASELINES,
    SEVERITIES,
    Anomaly,
    BaselineSnapshot,
    Event,
    Metric,
    MetricBaseline,
    Severity,
    Vitals,
    derive_event_id,
)

PRODUCER = "baseline"

# How far past its mean a metric must go before contention can no longer explain it:
# ("ratio", r) = value >= r x mean; ("rise", d) = value >= mean + d. A metric not
# listed is never critical (a queue is what waiting looks like; cpu is the agent's own).
Envelope = Mapping[str, tuple[Literal["ratio", "rise"], float]]
CRITICAL_BEYOND: dict[str, tuple[Literal["ratio", "rise"], float]] = {
    "latency_ms": ("ratio", 10.0),  # waiting on starved upstreams slows an agent ~5x at worst
    "error_rate": ("rise", 0.4),  # starvation failures add about a quarter at worst
    "requests_per_s": ("ratio", 4.0),  # a starving agent does less, never more: a surge is its own
}


@dataclass(frozen=True)
class BaselineConfig:
    warmup: int = 15
    window: int = 500
    zscore: float = 4.0
    sustain: int = 3
    clear: int = 5
    severity_z: tuple[float, float, float] = (6.0, 10.0, 20.0)
    min_stddev: float = 0.01
    min_rel_stddev: float = 0.05
    snapshot_every: int = 50
    critical_beyond: Envelope = field(default_factory=lambda: dict(CRITICAL_BEYOND))


@dataclass(slots=True)
class MetricState:
    """One metric's running statistics and streaks (a plain dataclass: the hot loop assigns its fields)."""

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    deviating: int = 0  # consecutive deviating samples so far
    normal: int = 0  # consecutive normal samples while anomalous
    anomalous: bool = False
    severity: Severity | None = None
    streak_ids: tuple[str, ...] = ()

    def stddev(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0

    def copy(self) -> MetricState:
        return MetricState(
            self.count, self.mean, self.m2, self.deviating, self.normal, self.anomalous, self.severity, self.streak_ids
        )


class AgentBaseline(BaseModel):
    metrics: dict[Metric, MetricState] = Field(default_factory=dict)
    samples: int = 0
    since_snapshot: int = 0

    @property
    def frozen(self) -> bool:
        return any(ms.anomalous for ms in self.metrics.values())

    def copy(self) -> AgentBaseline:
        """A working copy deep enough to mutate (MetricState fields are immutable values)."""
        return AgentBaseline.model_construct(
            metrics={k: ms.copy() for k, ms in self.metrics.items()},
            samples=self.samples,
            since_snapshot=self.since_snapshot,
        )


def learn(ms: MetricState, x: float, window: int) -> MetricState:
    """Welford's update (a new MetricState); past `window` samples an exponentially weighted one."""
    ms = ms.copy()
    _learn(ms, x, window)
    return ms


def _learn(ms: MetricState, x: float, window: int) -> None:
    count = ms.count + 1
    delta = x - ms.mean
    if count <= window:
        mean = ms.mean + delta / count
        m2 = ms.m2 + delta * (x - mean)
    else:
        alpha = 1.0 / window
        mean = ms.mean + alpha * delta
        m2 = (1 - alpha) * (ms.stddev() ** 2 + alpha * delta * delta) * (count - 1)
    ms.count, ms.mean, ms.m2 = count, mean, max(m2, 0.0)


def scale(ms: MetricState, cfg: BaselineConfig) -> float:
    """The standard deviation used for z-scores, floored so a flat metric does not make every blip infinite."""
    return max(ms.stddev(), cfg.min_stddev, cfg.min_rel_stddev * abs(ms.mean))


def severity_of(z: float, cfg: BaselineConfig) -> Severity:
    level = sum(abs(z) >= bound for bound in cfg.severity_z)
    return SEVERITIES[level]


def beyond_contention(metric: str, x: float, mean: float, cfg: BaselineConfig) -> bool:
    """Whether a value is past what starvation or a degraded upstream can do to an agent."""
    rule = cfg.critical_beyond.get(metric)
    if rule is None:
        return False
    kind, bound = rule
    return x >= bound * mean if kind == "ratio" else x >= mean + bound


def judged_severity(metric: str, x: float, z: float, mean: float, cfg: BaselineConfig) -> Severity:
    """Severity from |z|, with critical only beyond the contention envelope (else high)."""
    sev = severity_of(z, cfg)
    if sev == "critical" and not beyond_contention(metric, x, mean, cfg):
        return "high"
    return sev


def step(
    agent_id: str, state: AgentBaseline | None, events: Sequence[Event], cfg: BaselineConfig
) -> Step[AgentBaseline]:
    """Fold an agent's new vitals into its baselines; anomalies and snapshots out. The input state is not touched."""
    work = state.copy() if state is not None else AgentBaseline()
    outputs: list[Output] = []
    for vitals in events:
        if isinstance(vitals, Vitals):
            outputs += _observe(work, vitals, cfg)
    return Step(state=work, outputs=outputs)


def observe(state: AgentBaseline, v: Vitals, cfg: BaselineConfig) -> tuple[AgentBaseline, list[Output]]:
    """One sample: the new state (the given one is not touched) and what to publish."""
    work = state.copy()
    return work, _observe(work, v, cfg)


def _observe(state: AgentBaseline, v: Vitals, cfg: BaselineConfig) -> list[Output]:
    """One sample, updating `state` in place (a private working copy)."""
    was_frozen = state.frozen
    outputs: list[Output] = []
    zs: dict[Metric, float | None] = {}
    for metric in Vitals.METRICS:
        ms = state.metrics.get(metric)
        if ms is None:
            ms = state.metrics[metric] = MetricState()
        if ms.count < cfg.warmup:
            zs[metric] = None
            continue
        x = float(getattr(v, metric))
        z = (x - ms.mean) / scale(ms, cfg)
        zs[metric] = z
        anomaly = _judge(ms, metric, x, z, v, cfg)
        if anomaly is not None:
            outputs.append(Output(ANOMALIES, anomaly))
    frozen_now = state.frozen
    if not was_frozen and not frozen_now:
        # Learn only while nobody is anomalous (before, or because of, this sample), and not from
        # a sample that is itself deviating: a brewing spike must not drag the mean towards it.
        for metric, z in zs.items():
            if z is None or abs(z) < cfg.zscore:
                _learn(state.metrics[metric], float(getattr(v, metric)), cfg.window)
    state.samples += 1
    state.since_snapshot += 1
    changed = frozen_now != was_frozen or bool(outputs) or state.samples == cfg.warmup
    if changed or state.since_snapshot >= cfg.snapshot_every:
        outputs.append(Output(BASELINES, snapshot(v, state)))
        state.since_snapshot = 0
    return outputs


def _judge(ms: MetricState, metric: Metric, x: float, z: float, v: Vitals, cfg: BaselineConfig) -> Anomaly | None:
    """Advance one metric's streaks in place; the Anomaly to publish, if any."""
    deviates = abs(z) >= cfg.zscore
    if not ms.anomalous:
        if not deviates:
            ms.deviating, ms.streak_ids = 0, ()
            return None
        ms.deviating += 1
        ms.streak_ids = (*ms.streak_ids, v.event_id)[-cfg.sustain :]
        if ms.deviating < cfg.sustain:
            return None
        ms.anomalous, ms.severity, ms.normal = True, judged_severity(metric, x, z, ms.mean, cfg), 0
        return _anomaly(ms, metric, x, z, v, ms.severity, ms.deviating)
    if not deviates:
        ms.normal += 1
        if ms.normal >= cfg.clear:
            ms.anomalous, ms.severity, ms.normal, ms.deviating, ms.streak_ids = False, None, 0, 0, ()
        return None
    ms.normal = 0
    ms.deviating += 1
    ms.streak_ids = (*ms.streak_ids, v.event_id)[-cfg.sustain :]
    sev = judged_severity(metric, x, z, ms.mean, cfg)
    if SEVERITIES.index(sev) > SEVERITIES.index(ms.severity or "low"):
        # An escalating infection is news; a steady one is not re-announced every tick.
        ms.severity = sev
        return _anomaly(ms, metric, x, z, v, sev, ms.deviating)
    return None


def _anomaly(ms: MetricState, metric: Metric, x: float, z: float, v: Vitals, sev: Severity, sustained: int) -> Anomaly:
    return Anomaly(
        event_id=derive_event_id(PRODUCER, "anomaly", v.event_id, metric),
        occurred_at=v.occurred_at,
        run_id=v.run_id,
        causation_ids=ms.streak_ids,
        producer=PRODUCER,
        agent_id=v.agent_id,
        metric=metric,
        value=x,
        mean=ms.mean,
        stddev=ms.stddev(),
        zscore=_finite(z),
        severity=sev,
        sustained_samples=sustained,
    )


def snapshot(v: Vitals, state: AgentBaseline) -> BaselineSnapshot:
    return BaselineSnapshot(
        event_id=derive_event_id(PRODUCER, "snapshot", v.event_id),
        occurred_at=v.occurred_at,
        run_id=v.run_id,
        causation_ids=(v.event_id,),
        producer=PRODUCER,
        agent_id=v.agent_id,
        metrics={
            k: MetricBaseline(count=ms.count, mean=ms.mean, stddev=ms.stddev()) for k, ms in state.metrics.items()
        },
        frozen=state.frozen,
        anomalous_metrics=tuple(k for k, ms in state.metrics.items() if ms.anomalous),
    )


def _finite(z: float) -> float:
    return max(min(z, 1e12), -1e12)
