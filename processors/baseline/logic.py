"""Baseline learning and anomaly detection, pure: no I/O, no clock, bounded state.

Per agent and metric, two views of "normal", each a z-score:

- level: the value against a long baseline (running mean/variance, Welford's update with
  the count capped at `window`, so old samples fade and slow drift is followed). A daily
  cycle or a bursty series lies inside it: its variance covers both phases.
- jump: the value against a short-memory level (`fast_alpha`), i.e. a sudden change,
  scaled by the mean absolute change. Coming back to normal after a spike is not a jump.

How improbable a |z| is comes from a learned extreme-value tail per channel (the
peaks-over-threshold idea of SPOT/DSPOT, with an exponential tail, GPD shape 0): the
share of samples past `tail_u` and their mean excess. Surprise = -log10 P(|z| >= z_obs)
under that tail. A series whose bursts are part of life learns a heavy tail and stops
alarming on them; a quiet one keeps a light tail and a small change is news. The mean
excess is an exponentially weighted average over about 2 / `tail_alpha` exceedances
(200: a few windows of samples at the normal's share): one unusual episode, learned as
one observation, moves the tail by `tail_alpha` of its excess, so a single burst does not
make the next extreme look ordinary, and the tail's scale is not re-estimated from a
handful of points.

A sample deviates at surprise >= `surprise`; an Anomaly is raised at once when one sample
reaches `spike` (a one-sample spike of extreme size is an anomaly), or after `sustain`
deviating samples, up to `gap` normal samples between them (a noisy shift dips back);
`clear` normal samples end it. A deviation no larger than `seen_before` episodes that
ended within the last `window` samples is not news: its surprise is capped at
-log10(seen / window). Severity comes from the surprise (`severity_surprise`), not from
constants of the simulator; the Anomaly carries the surprise itself.

What is learned, and when (the rule):
- While any metric of an agent is anomalous the whole agent's baseline is frozen, and a
  deviating sample is never learned into the level or the tail: an infection is never
  learned as normal while it is being handled.
- When a deviation episode ends, its peak counts as one observation of the tail and one
  remembered burst (so a burst that keeps coming back becomes normal), unless the agent
  is quarantined.
- A metric that deviates for `relearn` samples in a row while its agent is not
  quarantined has a new normal: its level restarts from the current value (a new
  warm-up), its tail is kept, and the baseline snapshot says so (`relearned`). Quarantine
  decisions reach the baseline processor; while an agent is held nothing it shows is
  learned, so an infection in quarantine is never re-learned as normal however long.

Critical is kept for what contention cannot explain. An agent starved of a resource,
or depending on one that is, waits: its latency and queue grow, its errors rise a
little, it does less. A deviation reaches critical only when it is both extremely
improbable and beyond the contention envelope (`critical_beyond`): latency many times
its mean, errors far above theirs, a surge of requests. Below that it is at most high,
and the trust processor decides whether the fleet's state explains it.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

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
    window: int = 1000
    fast_alpha: float = 0.3
    tail_u: float = 2.0
    clip: float = 3.0
    tail_alpha: float = 0.01
    surprise: float = 3.0
    spike: float = 5.0
    sustain: int = 2
    gap: int = 2
    clear: int = 5
    severity_surprise: tuple[float, float, float] = (6.0, 10.0, 20.0)
    relearn: int = 300
    min_stddev: float = 0.01
    min_rel_stddev: float = 0.05
    snapshot_every: int = 50
    # The seasonal profile: time of day (event time) in buckets of season_bucket_s seconds (0: none); a
    # bucket speaks once it has been seen on season_days distinct days; season_window caps its memory.
    season_bucket_s: int = 1800
    season_days: int = 3
    season_window: int = 64
    # Samples in a row the season alone must find odd before it counts: a bucket's statistics are noisy, a
    # missing peak lasts.
    season_sustain: int = 6
    # After a report, a new episode of the same metric no more severe is not re-announced for this many
    # samples (one burst, one report; trust charges one incident once anyway).
    suppress: int = 30
    # A deviation no larger than `seen_before` earlier ones within the last `window` samples is not news:
    # its surprise is at most -log10(seen / window) (a burst that keeps coming back, however far).
    seen_before: int = 2
    bursts: int = 8
    season_normal: float = 2.0  # |z| against the season under which a sample is what this time of day looks like
    critical_beyond: Envelope = field(default_factory=lambda: dict(CRITICAL_BEYOND))


# A standard normal's tail past 2: P(|z| > 2) and the mean excess E[|z| - 2 | |z| > 2]; the prior
# of every tail until the metric has shown its own.
PRIOR_EXCEED, PRIOR_EXCESS = 0.0455, 0.37
LN10 = math.log(10.0)


@dataclass(slots=True)
class MetricState:
    """One metric's statistics and streaks (a plain dataclass: the hot loop assigns its fields).

    count/mean/m2: the long baseline; fast: the short-memory level; rdev: the mean absolute jump;
    l_exceed/l_excess and j_exceed/j_excess: each channel's tail (share past tail_u, mean excess).
    """

    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    fast: float = 0.0
    rdev: float = 0.0
    l_exceed: float = PRIOR_EXCEED
    l_excess: float = PRIOR_EXCESS
    j_exceed: float = PRIOR_EXCEED
    j_excess: float = PRIOR_EXCESS
    deviating: int = 0  # consecutive deviating samples so far (the current episode)
    normal: int = 0  # consecutive normal samples while anomalous
    anomalous: bool = False
    severity: Severity | None = None
    streak_ids: tuple[str, ...] = ()
    peak_level: float = 0.0  # the current episode's largest |z| per channel
    peak_jump: float = 0.0
    s_exceed: float = PRIOR_EXCEED  # the seasonal channel's tail
    s_excess: float = PRIOR_EXCESS
    peak_season: float = 0.0
    s_run: int = 0  # consecutive samples the seasonal channel alone found surprising
    quiet: int = 0  # samples left in which a new episode no more severe than `reported` is not re-announced
    reported: Severity | None = None
    # The time-of-day profile, packed: one slot of five float64 (SLOT: distinct days seen, last day, count,
    # mean, m2) per bucket, from bucket `season_at` on, wrapping at the day's end; it grows as buckets are
    # first learned, to at most 86400/season_bucket_s slots; a slot never learned has days 0. One block
    # rather than a list per bucket: it is stored and read as one (a list per bucket made a days-old
    # agent's state ~1,500 objects to encode), and a working copy updates its own copy of it in place.
    # (A dict {bucket: [5 numbers]} only as read from a state stored as JSON before; packed at once.)
    season: bytes | dict[int, list[float]] = b""
    season_at: int = 0
    # Recent deviations' peaks, [sample number when it ended, peak level |z|, peak jump |z|], at most
    # `bursts` of them within the last `window` samples: how often something this far has been seen.
    bursts: list[list[float]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if isinstance(self.season, dict):
            self.season, self.season_at = _pack_profile(self.season)

    def stddev(self) -> float:
        return math.sqrt(self.m2 / (self.count - 1)) if self.count > 1 else 0.0

    def copy(self) -> MetricState:
        """A working copy. Its season profile is its own (a bytearray, learned in place: one copy per step, not
        one per sample); its remembered bursts are shared with the original: replaced, never changed in place
        (_end_episode)."""
        return MetricState(
            self.count, self.mean, self.m2, self.fast, self.rdev, self.l_exceed, self.l_excess, self.j_exceed,
            self.j_excess, self.deviating, self.normal, self.anomalous, self.severity, self.streak_ids,
            self.peak_level, self.peak_jump, self.s_exceed, self.s_excess, self.peak_season, self.s_run, self.quiet,
            self.reported, bytearray(self.season), self.season_at, list(self.bursts),
        )  # fmt: skip


@dataclass(slots=True)
class AgentBaseline:
    """One agent's baselines: a plain dataclass, stored as MessagePack (processors.runtime.statecodec)."""

    metrics: dict[Metric, MetricState] = field(default_factory=dict)
    samples: int = 0
    since_snapshot: int = 0
    # While the agent is quarantined nothing it shows is learned: no tail growth, no re-learning.
    held: bool = False

    @property
    def frozen(self) -> bool:
        for ms in self.metrics.values():  # noqa: SIM110 - a loop, not any(<generator>): asked twice per sample
            if ms.anomalous:
                return True
        return False

    def copy(self) -> AgentBaseline:
        """A working copy deep enough to mutate (MetricState fields are immutable values)."""
        return AgentBaseline({k: ms.copy() for k, ms in self.metrics.items()}, self.samples, self.since_snapshot, self.held)


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


def tail_surprise(z: float, exceed: float, excess: float, cfg: BaselineConfig) -> float:
    """-log10 P(|Z| >= |z|) under an exponential tail past tail_u (share `exceed`, mean excess `excess`)."""
    over = abs(z) - cfg.tail_u
    if over <= 0:
        return 0.0  # inside the body of the distribution: nothing to say
    return -math.log10(min(1.0, max(exceed, 1e-12))) + over / (max(excess, 1e-6) * LN10)


def _learn_tail(ms: MetricState, zl: float, zj: float, zs: float | None, cfg: BaselineConfig) -> None:
    """One observation of each channel's tail: how often it goes past tail_u, and how far when it does.
    (Both channels spelled out: this runs for every metric of every calm sample.)"""
    w, a = 1.0 / cfg.window, cfg.tail_alpha
    over = abs(zl) - cfg.tail_u
    ms.l_exceed = ms.l_exceed + w * ((over > 0) - ms.l_exceed)
    if over > 0:
        ms.l_excess = ms.l_excess + a * (over - ms.l_excess)
    over = abs(zj) - cfg.tail_u
    ms.j_exceed = ms.j_exceed + w * ((over > 0) - ms.j_exceed)
    if over > 0:
        ms.j_excess = ms.j_excess + a * (over - ms.j_excess)
    if zs is not None:
        over = abs(zs) - cfg.tail_u
        ms.s_exceed = ms.s_exceed + w * ((over > 0) - ms.s_exceed)
        if over > 0:
            ms.s_excess = ms.s_excess + a * (over - ms.s_excess)


SeasonKey = tuple[int, int]  # (day, time-of-day bucket) of a sample's event time


def season_key(v: Vitals, cfg: BaselineConfig) -> SeasonKey | None:
    if cfg.season_bucket_s <= 0:
        return None
    t = v.occurred_at.timestamp()
    return int(t // 86400), int(t % 86400 // cfg.season_bucket_s)


def season_z(ms: MetricState, x: float, key: SeasonKey | None, cfg: BaselineConfig) -> tuple[float, float] | None:
    """The value against what this time of day has looked like, once its bucket has been seen on
    season_days distinct days (None before: the season says nothing): its z against the bucket, and
    give or take a bucket (the smallest |z| against it and its mature neighbours), so that a daily step
    a little early, or inside a bucket, is still what this time of day looks like."""
    b = season_bucket(ms, key[1], cfg) if key is not None else None
    if key is None or b is None or b[0] < cfg.season_days:
        return None
    n = 86400 // cfg.season_bucket_s
    near = (season_bucket(ms, (key[1] + d) % n, cfg) for d in (-1, 1))
    zs = [(x - c[3]) / _season_scale(c, cfg) for c in (b, *near) if c is not None and c[0] >= cfg.season_days]
    return zs[0], min(zs, key=abs)


SLOT = struct.Struct("<5d")  # one bucket of the packed profile: days seen, last day, count, mean, m2
NEW_BUCKET = (0.0, -1.0, 0.0, 0.0, 0.0)


def _slot_at(ms: MetricState, bucket: int, cfg: BaselineConfig) -> int:
    """Where a bucket's slot is (or would be) in the packed profile, in bytes."""
    return (bucket - ms.season_at) % (86400 // cfg.season_bucket_s) * SLOT.size


def season_bucket(ms: MetricState, bucket: int, cfg: BaselineConfig) -> tuple[float, ...] | None:
    """A time-of-day bucket's (days seen, last day, count, mean, m2); None if it was never learned."""
    at = _slot_at(ms, bucket, cfg)
    if at >= len(ms.season):
        return None
    b = SLOT.unpack_from(ms.season, at)
    return b if b[0] > 0 else None


def _pack_profile(buckets: Mapping[int, Sequence[float]]) -> tuple[bytes, int]:
    """{bucket: [5 numbers]} (a state stored as JSON before the profile was packed) as (profile, season_at)."""
    if not buckets:
        return b"", 0
    first = min(buckets)
    packed = bytearray(SLOT.size * (max(buckets) - first + 1))
    for bucket, b in buckets.items():
        SLOT.pack_into(packed, (bucket - first) * SLOT.size, *b)
    return bytes(packed), first


def _season_scale(b: Sequence[float], cfg: BaselineConfig) -> float:
    sd = math.sqrt(b[4] / (b[2] - 1)) if b[2] > 1 else 0.0
    return max(sd, _floor(b[3], cfg))


def _learn_season(ms: MetricState, x: float, key: SeasonKey, cfg: BaselineConfig) -> None:
    """One sample into its time-of-day bucket. A mature bucket learns it winsorised to `clip` of its own
    scale, so an anomaly moves the profile little; a young one learns everything (it is learning the cycle)."""
    day, bucket = key
    old = season_bucket(ms, bucket, cfg)
    b = list(NEW_BUCKET if old is None else old)
    if day != b[1]:
        b[0], b[1] = b[0] + 1, float(day)
    if b[0] >= cfg.season_days:
        bound = cfg.clip * _season_scale(b, cfg)
        x = min(max(x, b[3] - bound), b[3] + bound)
    count, delta = b[2] + 1, x - b[3]
    if count <= cfg.season_window:
        mean = b[3] + delta / count
        m2 = b[4] + delta * (x - mean)
    else:
        alpha = 1.0 / cfg.season_window
        mean = b[3] + alpha * delta
        m2 = (1 - alpha) * (b[4] / (count - 2) + alpha * delta * delta) * (count - 1)
    b[2], b[3], b[4] = count, mean, max(m2, 0.0)
    profile = ms.season
    if type(profile) is not bytearray:  # a metric first seen in this step: b"" (copy() gives the rest their own)
        profile = ms.season = bytearray(profile)
    if not profile:
        ms.season_at = bucket
    at = _slot_at(ms, bucket, cfg)
    if at >= len(profile):  # past the packed range: grow it with never-learned slots
        profile.extend(bytes(at + SLOT.size - len(profile)))
    SLOT.pack_into(profile, at, *b)


def severity_of(surprise: float, cfg: BaselineConfig) -> Severity:
    """Severity from how improbable the value is under the learned model (-log10 of its tail probability)."""
    level = sum(surprise >= bound for bound in cfg.severity_surprise)
    return SEVERITIES[level]


def beyond_contention(metric: str, x: float, mean: float, cfg: BaselineConfig) -> bool:
    """Whether a value is past what starvation or a degraded upstream can do to an agent."""
    rule = cfg.critical_beyond.get(metric)
    if rule is None:
        return False
    kind, bound = rule
    return x >= bound * mean if kind == "ratio" else x >= mean + bound


def judged_severity(metric: str, x: float, surprise: float, mean: float, cfg: BaselineConfig) -> Severity:
    """Severity from the surprise, with critical only beyond the contention envelope (else high)."""
    sev = severity_of(surprise, cfg)
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
    # metric -> (x, None) in warm-up, else (x, (zl, zj, zs, deviates, level scale, jump scale))
    judged: dict[Metric, tuple[float, tuple[float, float, float | None, bool, float, float] | None]] = {}
    relearned: list[Metric] = []
    metrics, warmup, min_sd, min_rel = state.metrics, cfg.warmup, cfg.min_stddev, cfg.min_rel_stddev
    key = season_key(v, cfg)
    for metric in Vitals.METRICS:
        ms = metrics.get(metric)
        if ms is None:
            ms = metrics[metric] = MetricState()
        x = float(getattr(v, metric))
        count, mean, fast = ms.count, ms.mean, ms.fast
        if count < warmup:
            judged[metric] = (x, None)
            continue
        # scale() and jump_scale(), spelled out (the same arithmetic): they are most of the per-sample cost.
        sd = math.sqrt(ms.m2 / (count - 1)) if count > 1 else 0.0
        sd = max(sd, max(min_sd, min_rel * abs(mean)))
        jd = max(1.2533 * ms.rdev, max(min_sd, min_rel * abs(fast)))
        zl = (x - mean) / sd
        # A jump is a change from just now that also leaves the long baseline: coming back to normal
        # after a spike is not a new jump. (min(a, b, key=abs): b only when strictly smaller.)
        from_fast, from_mean = x - fast, x - mean
        zj = (from_mean if abs(from_mean) < abs(from_fast) else from_fast) / jd
        season = season_z(ms, x, key, cfg) if ms.season else None
        anomaly, relearn, deviates = _judge(ms, metric, x, zl, zj, season, v, state.held, state.samples, cfg)
        # The level and jump scales stay valid for the learning below: _judge touches streaks and tails only.
        judged[metric] = (x, (zl, zj, season[0] if season else None, deviates, sd, jd))
        if anomaly is not None:
            outputs.append(Output(ANOMALIES, anomaly))
        if relearn:
            relearned.append(metric)
    frozen_now = state.frozen
    for metric, (x, seen) in judged.items():
        ms = metrics[metric]
        if metric in relearned:
            # A lasting shift: the long baseline moves to the new level; how noisy the metric is (its
            # variance, its tails) is kept; the seasonal profile starts over around the new level.
            var = ms.stddev() ** 2
            ms.count = min(ms.count, cfg.warmup)
            ms.mean, ms.fast, ms.m2 = x, x, var * (ms.count - 1)
            ms.season, ms.season_at = b"", 0
            continue
        if key is not None and not state.held:
            # The time-of-day profile learns every sample of an agent not in quarantine (winsorised once
            # mature): it must see the cycle's every phase, including those the level channel finds odd.
            _learn_season(ms, x, key, cfg)
        if seen is None:
            _learn(ms, x, cfg.window)
            ms.fast = ms.mean
            ms.rdev = ms.stddev() * 0.8
            continue
        zl, zj, zs, deviates, sd, jd = seen
        calm = not was_frozen and not frozen_now
        if calm and not deviates and not state.held:
            # The tail learns from a calm agent's ordinary samples here, and from each deviation once it
            # is over (its peak, in _end_episode): a sustained deviation cannot talk itself into normal.
            _learn_tail(ms, zl, zj, zs, cfg)
        if calm:
            # The level learns only while nobody is anomalous (before, or because of, this sample), and a
            # deviating sample only winsorised to `clip` standard deviations (Huber's idea): a brewing spike
            # cannot drag the mean far, yet the variance does not collapse onto the quiet samples.
            ms.rdev += (min(abs(x - ms.fast), cfg.clip * jd) - ms.rdev) / min(ms.count, cfg.window)
            _learn(ms, min(max(x, ms.mean - cfg.clip * sd), ms.mean + cfg.clip * sd), cfg.window)
        # The short-memory level always follows: it is what "just now" means for the jump channel.
        ms.fast += cfg.fast_alpha * (x - ms.fast)
    state.samples += 1
    state.since_snapshot += 1
    changed = frozen_now != was_frozen or bool(outputs) or state.samples == cfg.warmup or bool(relearned)
    if changed or state.since_snapshot >= cfg.snapshot_every:
        outputs.append(Output(BASELINES, snapshot(v, state, tuple(relearned))))
        state.since_snapshot = 0
    return outputs


def _end_episode(ms: MetricState, held: bool, now: int, cfg: BaselineConfig) -> None:
    """A deviation is over. Unless the agent is quarantined, its peak is one observation of the tails and
    one remembered burst: a burst that keeps coming back becomes normal; an infection held in quarantine
    never does."""
    if not held:
        _learn_tail(ms, ms.peak_level, ms.peak_jump, ms.peak_season or None, cfg)
        ms.bursts = [*_recent(ms, now, cfg)[-(cfg.bursts - 1) :], [float(now), ms.peak_level, ms.peak_jump]]
    ms.anomalous, ms.severity, ms.normal, ms.deviating, ms.streak_ids = False, None, 0, 0, ()
    ms.peak_level = ms.peak_jump = ms.peak_season = 0.0


def _recent(ms: MetricState, now: int, cfg: BaselineConfig) -> list[list[float]]:
    """The remembered bursts that ended within the last `window` samples."""
    return [b for b in ms.bursts if now - b[0] < cfg.window]


def _seen_before(
    ms: MetricState, zl: float, zj: float, sl: float, sj: float, now: int, cfg: BaselineConfig
) -> tuple[float, float]:
    """Each channel's surprise, capped by how often a deviation at least this far ended in the last window."""
    recent = _recent(ms, now, cfg)
    seen_l = sum(b[1] >= abs(zl) for b in recent)
    seen_j = sum(b[2] >= abs(zj) for b in recent)
    if seen_l >= cfg.seen_before:
        sl = min(sl, -math.log10(seen_l / cfg.window))
    if seen_j >= cfg.seen_before:
        sj = min(sj, -math.log10(seen_j / cfg.window))
    return sl, sj


def _judge(
    ms: MetricState,
    metric: Metric,
    x: float,
    zl: float,
    zj: float,
    season: tuple[float, float] | None,
    v: Vitals,
    held: bool,
    now: int,
    cfg: BaselineConfig,
) -> tuple[Anomaly | None, bool, bool]:
    """Advance one metric's streaks in place: the Anomaly to publish (if any), whether to re-learn, and
    whether the sample deviates."""
    sl = tail_surprise(zl, ms.l_exceed, ms.l_excess, cfg)
    sj = tail_surprise(zj, ms.j_exceed, ms.j_excess, cfg)
    if ms.bursts and max(sl, sj) >= cfg.surprise:
        sl, sj = _seen_before(ms, zl, zj, sl, sj, now, cfg)
    ss, zs = 0.0, None
    if season is not None:
        zs, near = season
        ss = tail_surprise(zs, ms.s_exceed, ms.s_excess, cfg)
        ms.s_run = ms.s_run + 1 if ss >= cfg.surprise else 0
        if ms.s_run < cfg.season_sustain:
            ss = 0.0
        if abs(near) < cfg.season_normal:
            # What this time of day usually looks like: a daily peak or trough is not news, however far it
            # is from the long baseline or from just now.
            sl = sj = 0.0
    surprise = max(sl, sj, ss)
    z = zl if sl >= max(sj, ss) else (zj if sj >= ss else zs or 0.0)
    deviates = surprise >= cfg.surprise
    if deviates:
        ms.peak_level, ms.peak_jump = max(ms.peak_level, abs(zl)), max(ms.peak_jump, abs(zj))
        ms.peak_season = max(ms.peak_season, abs(zs or 0.0))
    ms.quiet = max(ms.quiet - 1, 0)
    if not ms.anomalous:
        if not deviates:
            if ms.deviating:
                # A noisy deviation dips back for a sample or two: it is over only after `gap` normal ones.
                ms.normal += 1
                if ms.normal > cfg.gap:
                    _end_episode(ms, held, now, cfg)
            return None, False, False
        ms.normal = 0
        ms.deviating += 1
        ms.streak_ids = (*ms.streak_ids, v.event_id)[-cfg.sustain :]
        # One sample of extreme improbability is news at once; a modest deviation must persist.
        if ms.deviating < cfg.sustain and surprise < cfg.spike:
            return None, False, True
        ms.anomalous, ms.severity, ms.normal = True, judged_severity(metric, x, surprise, ms.mean, cfg), 0
        if ms.quiet and SEVERITIES.index(ms.severity) <= SEVERITIES.index(ms.reported or "low"):
            return None, False, True  # the same burst again, just reported: an episode, not news
        return _report(ms, metric, x, z, v, ms.severity, surprise, cfg), False, True
    if not deviates:
        ms.normal += 1
        if ms.normal >= cfg.clear:
            _end_episode(ms, held, now, cfg)
        return None, False, False
    ms.normal = 0
    ms.deviating += 1
    ms.streak_ids = (*ms.streak_ids, v.event_id)[-cfg.sustain :]
    if ms.deviating >= cfg.relearn and not held:
        # Deviating this long without a quarantine is the metric's new normal: re-learn it.
        _end_episode(ms, True, now, cfg)
        return None, True, True
    sev = judged_severity(metric, x, surprise, ms.mean, cfg)
    if SEVERITIES.index(sev) > SEVERITIES.index(ms.severity or "low"):
        # An escalating infection is news; a steady one is not re-announced every tick.
        ms.severity = sev
        return _report(ms, metric, x, z, v, sev, surprise, cfg), False, True
    return None, False, True


def _report(
    ms: MetricState, metric: Metric, x: float, z: float, v: Vitals, sev: Severity, surprise: float, cfg: BaselineConfig
) -> Anomaly:
    ms.quiet, ms.reported = cfg.suppress, sev
    return _anomaly(ms, metric, x, z, v, sev, ms.deviating, surprise)


def _anomaly(
    ms: MetricState, metric: Metric, x: float, z: float, v: Vitals, sev: Severity, sustained: int, surprise: float
) -> Anomaly:
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
        surprise=_finite(surprise),
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
