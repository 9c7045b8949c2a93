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
    QuarantineDecision,
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
    residual_z: float = 5.0
    fast_alpha: float = 0.3
    sustain: int = 3
    spike: float = 2.0
    clear: int = 5
    severity_ratio: tuple[float, float, float] = (2.0, 4.0, 8.0)
    envelope_growth: float = 1.5
    relearn: int = 300
    min_stddev: float = 0.01
    min_rel_stddev: float = 0.05
    snapshot_every: int = 50
    critical_beyond: Envelope = field(default_factory=lambda: dict(CRITICAL_BEYOND))

    @property
    def envelope_decay(self) -> float:
        # Slower than the mean's memory, so a pattern that recurs once per window stays learned.
        return 1.0 - 1.0 / (4.0 * self.window)


@dataclass(slots=True)
class MetricState:
    """One metric's statistics and streaks (a plain dataclass: the hot loop assigns its fields).

    count/mean/m2: the long baseline (what the metric's values look like); fast: a short-memory level (what
    it was just now), whose one-step error is the jump channel; rdev: the mean absolute jump; env_level and
    env_jump: the largest |z| of each channel that the metric has shown as normal (0 = the floor).
    """

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    fast: float = 0.0
    rdev: float = 0.0
    env_level: float = 0.0
    env_jump: float = 0.0
    deviating: int = 0  # consecutive deviating samples so far (the current episode)
    normal: int = 0  # consecutive normal samples while anomalous
    anomalous: bool = False
    severity: Severity | None = None
    streak_ids: tuple[str, ...] = ()
    peak_level: float = 0.0  # the current episode's largest |z| per channel
    peak_jump: float = 0.0

    def stddev(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0

    def copy(self) -> MetricState:
        return MetricState(
            self.count, self.mean, self.m2, self.fast, self.rdev, self.env_level, self.env_jump, self.deviating,
            self.normal, self.anomalous, self.severity, self.streak_ids, self.peak_level, self.peak_jump,
        )  # fmt: skip


class AgentBaseline(BaseModel):
    metrics: dict[Metric, MetricState] = Field(default_factory=dict)
    samples: int = 0
    since_snapshot: int = 0
    # While the agent is quarantined nothing it shows is learned: no envelope growth, no re-learning.
    held: bool = False

    @property
    def frozen(self) -> bool:
        return any(ms.anomalous for ms in self.metrics.values())

    def copy(self) -> AgentBaseline:
        """A working copy deep enough to mutate (MetricState fields are immutable values)."""
        return AgentBaseline.model_construct(
            metrics={k: ms.copy() for k, ms in self.metrics.items()},
            samples=self.samples,
            since_snapshot=self.since_snapshot,
            held=self.held,
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


def _floor(center: float, cfg: BaselineConfig) -> float:
    return max(cfg.min_stddev, cfg.min_rel_stddev * abs(center))


def scale(ms: MetricState, cfg: BaselineConfig) -> float:
    """The standard deviation used for level z-scores, floored so a flat metric does not make every blip infinite."""
    return max(ms.stddev(), _floor(ms.mean, cfg))


def jump_scale(ms: MetricState, cfg: BaselineConfig) -> float:
    # The mean absolute deviation of a normal variable is 0.8 of its standard deviation.
    return max(1.2533 * ms.rdev, _floor(ms.fast, cfg))


def severity_of(ratio: float, cfg: BaselineConfig) -> Severity:
    """Severity from how many times past the learned normal envelope a value lies."""
    level = sum(ratio >= bound for bound in cfg.severity_ratio)
    return SEVERITIES[level]


def beyond_contention(metric: str, x: float, mean: float, cfg: BaselineConfig) -> bool:
    """Whether a value is past what starvation or a degraded upstream can do to an agent."""
    rule = cfg.critical_beyond.get(metric)
    if rule is None:
        return False
    kind, bound = rule
    return x >= bound * mean if kind == "ratio" else x >= mean + bound


def judged_severity(metric: str, x: float, ratio: float, mean: float, cfg: BaselineConfig) -> Severity:
    """Severity from the envelope ratio, with critical only beyond the contention envelope (else high)."""
    sev = severity_of(ratio, cfg)
    if sev == "critical" and not beyond_contention(metric, x, mean, cfg):
        return "high"
    return sev


def step(
    agent_id: str, state: AgentBaseline | None, events: Sequence[Event], cfg: BaselineConfig
) -> Step[AgentBaseline]:
    """Fold an agent's new vitals (and quarantine decisions) into its baselines; anomalies and snapshots out."""
    work = state.copy() if state is not None else AgentBaseline()
    outputs: list[Output] = []
    for event in events:
        if isinstance(event, Vitals):
            outputs += _observe(work, event, cfg)
        elif isinstance(event, QuarantineDecision):
            if event.action == "quarantine":
                work.held = True
            elif event.action == "release":
                work.held = False
    return Step(state=work, outputs=outputs)


def observe(state: AgentBaseline, v: Vitals, cfg: BaselineConfig) -> tuple[AgentBaseline, list[Output]]:
    """One sample: the new state (the given one is not touched) and what to publish."""
    work = state.copy()
    return work, _observe(work, v, cfg)


def _observe(state: AgentBaseline, v: Vitals, cfg: BaselineConfig) -> list[Output]:
    """One sample, updating `state` in place (a private working copy)."""
    was_frozen = state.frozen
    outputs: list[Output] = []
    ratios: dict[Metric, tuple[float, float] | None] = {}
    relearned: list[Metric] = []
    for metric in Vitals.METRICS:
        ms = state.metrics.get(metric)
        if ms is None:
            ms = state.metrics[metric] = MetricState()
        x = float(getattr(v, metric))
        if ms.count < cfg.warmup:
            ratios[metric] = None
            continue
        zl = (x - ms.mean) / scale(ms, cfg)
        zj = (x - ms.fast) / jump_scale(ms, cfg)
        ratios[metric] = (zl, zj)
        anomaly, relearn = _judge(ms, metric, x, zl, zj, v, state.held, cfg)
        if anomaly is not None:
            outputs.append(Output(ANOMALIES, anomaly))
        if relearn:
            relearned.append(metric)
    frozen_now = state.frozen
    for metric, zs in ratios.items():
        ms = state.metrics[metric]
        x = float(getattr(v, metric))
        if metric in relearned:
            # A lasting shift: the long baseline starts again from here (a new warm-up), the learned
            # envelopes (how noisy the metric is) are kept.
            ms.count, ms.mean, ms.m2, ms.fast = 0, 0.0, 0.0, x
            _learn(ms, x, cfg.window)
            continue
        if zs is None:
            _learn(ms, x, cfg.window)
            ms.fast = ms.mean
            ms.rdev = ms.stddev() * 0.8
            continue
        zl, zj = zs
        calm = abs(zl) < _envelope(ms.env_level, cfg.zscore) and abs(zj) < _envelope(ms.env_jump, cfg.residual_z)
        if not was_frozen and not frozen_now and calm:
            # Learn only while nobody is anomalous (before, or because of, this sample), and not from
            # a sample that is itself deviating: a brewing spike must not drag the mean towards it.
            ms.rdev += (abs(x - ms.fast) - ms.rdev) / min(ms.count, cfg.window)
            _learn(ms, x, cfg.window)
            ms.env_level *= cfg.envelope_decay
            ms.env_jump *= cfg.envelope_decay
        # The short-memory level always follows: it is what "just now" means for the jump channel.
        ms.fast += cfg.fast_alpha * (x - ms.fast)
    state.samples += 1
    state.since_snapshot += 1
    changed = frozen_now != was_frozen or bool(outputs) or state.samples == cfg.warmup or bool(relearned)
    if changed or state.since_snapshot >= cfg.snapshot_every:
        outputs.append(Output(BASELINES, snapshot(v, state, tuple(relearned))))
        state.since_snapshot = 0
    return outputs


def _envelope(learned: float, floor: float) -> float:
    return max(learned, floor)


def _end_episode(ms: MetricState, held: bool, cfg: BaselineConfig) -> None:
    """A deviation is over. Unless the agent is quarantined, the envelopes grow towards its peak (by at
    most `envelope_growth` per episode): a burst that keeps coming back becomes normal, an infection held
    in quarantine never does."""
    if not held:
        g = cfg.envelope_growth
        ms.env_level = max(ms.env_level, min(ms.peak_level, _envelope(ms.env_level, cfg.zscore) * g))
        ms.env_jump = max(ms.env_jump, min(ms.peak_jump, _envelope(ms.env_jump, cfg.residual_z) * g))
    ms.anomalous, ms.severity, ms.normal, ms.deviating, ms.streak_ids = False, None, 0, 0, ()
    ms.peak_level = ms.peak_jump = 0.0


def _judge(
    ms: MetricState, metric: Metric, x: float, zl: float, zj: float, v: Vitals, held: bool, cfg: BaselineConfig
) -> tuple[Anomaly | None, bool]:
    """Advance one metric's streaks in place; the Anomaly to publish, if any, and whether to re-learn."""
    rl = abs(zl) / _envelope(ms.env_level, cfg.zscore)
    rj = abs(zj) / _envelope(ms.env_jump, cfg.residual_z)
    ratio = max(rl, rj)
    z = zl if rl >= rj else zj
    deviates = ratio >= 1.0
    if deviates:
        ms.peak_level, ms.peak_jump = max(ms.peak_level, abs(zl)), max(ms.peak_jump, abs(zj))
    if not ms.anomalous:
        if not deviates:
            if ms.deviating:
                _end_episode(ms, held, cfg)
            return None, False
        ms.deviating += 1
        ms.streak_ids = (*ms.streak_ids, v.event_id)[-cfg.sustain :]
        # One sample far past the envelope is news at once; a modest deviation must persist.
        if ms.deviating < cfg.sustain and ratio < cfg.spike:
            return None, False
        ms.anomalous, ms.severity, ms.normal = True, judged_severity(metric, x, ratio, ms.mean, cfg), 0
        return _anomaly(ms, metric, x, z, v, ms.severity, ms.deviating), False
    if not deviates:
        ms.normal += 1
        if ms.normal >= cfg.clear:
            _end_episode(ms, held, cfg)
        return None, False
    ms.normal = 0
    ms.deviating += 1
    ms.streak_ids = (*ms.streak_ids, v.event_id)[-cfg.sustain :]
    if ms.deviating >= cfg.relearn and not held:
        # Deviating this long without a quarantine is the metric's new normal: re-learn it.
        _end_episode(ms, True, cfg)
        return None, True
    sev = judged_severity(metric, x, ratio, ms.mean, cfg)
    if SEVERITIES.index(sev) > SEVERITIES.index(ms.severity or "low"):
        # An escalating infection is news; a steady one is not re-announced every tick.
        ms.severity = sev
        return _anomaly(ms, metric, x, z, v, sev, ms.deviating), False
    return None, False


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
        upstream_degraded=v.upstream_degraded,
    )


def snapshot(v: Vitals, state: AgentBaseline, relearned: tuple[Metric, ...] = ()) -> BaselineSnapshot:
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
        relearned=relearned,
    )


def _finite(z: float) -> float:
    return max(min(z, 1e12), -1e12)
