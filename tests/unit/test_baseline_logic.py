"""Baseline learning and detection, as properties of the pure logic."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.baseline import AgentBaseline, BaselineConfig, observe
from processors.baseline.logic import (
    SLOT,
    MetricState,
    judged_severity,
    learn,
    season_bucket,
    season_key,
    step,
)
from processors.baseline.logic import _learn_season as learn_season
from schemas import Anomaly, BaselineSnapshot, QuarantineDecision, Vitals

CFG = BaselineConfig()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def vitals(
    i: int,
    latency: float = 100.0,
    *,
    agent: str = "a1",
    jitter: float = 0.0,
    errors: float = 0.01,
    queue: float = 3.0,
    cpu: float = 0.4,
    rps: float = 20.0,
) -> Vitals:
    return Vitals(
        event_id=f"v-{agent}-{i}",
        occurred_at=T0 + timedelta(seconds=i),
        producer="sim",
        agent_id=agent,
        latency_ms=latency + jitter,
        error_rate=errors,
        queue_depth=queue,
        cpu=cpu,
        requests_per_s=rps,
    )


def feed(samples: list[Vitals], state: AgentBaseline | None = None) -> tuple[AgentBaseline, list]:
    state = state or AgentBaseline()
    outputs = []
    for v in samples:
        state, out = observe(state, v, CFG)
        outputs += [o.event for o in out]
    return state, outputs


def warmed(n: int = 30) -> AgentBaseline:
    return feed([vitals(i, 100.0, jitter=(i % 5) - 2.0) for i in range(n)])[0]


def anomalies(events: list) -> list[Anomaly]:
    return [e for e in events if isinstance(e, Anomaly)]


def test_no_anomaly_is_raised_during_warm_up_however_wild_the_samples() -> None:
    _, out = feed([vitals(i, 10.0 if i % 2 else 5000.0) for i in range(CFG.warmup)])
    assert anomalies(out) == []


def test_an_extreme_single_sample_is_reported_at_once() -> None:
    state = warmed()
    state, out = feed([vitals(100 + i, 1000.0) for i in range(6)], state)
    found = anomalies(out)
    assert len(found) == 1
    assert found[0].metric == "latency_ms" and found[0].severity == "critical"
    assert found[0].sustained_samples == 1 and found[0].causation_ids == ("v-a1-100",)
    assert state.frozen


def test_a_one_sample_spike_is_reported_and_then_clears() -> None:
    # exchange-4_cpc_results on NAB: one sample at |z| 110, then back to normal.
    state, out = feed([vitals(100, 400.0)] + [vitals(101 + i, 100.0) for i in range(CFG.clear)], warmed())
    assert [a.sustained_samples for a in anomalies(out)] == [1]
    assert not state.frozen


def test_a_burst_that_comes_back_soon_is_one_report_unless_it_is_worse() -> None:
    gap = [vitals(110 + i, 100.0) for i in range(CFG.clear + 2)]  # the first episode ends
    _, same = feed([vitals(100, 400.0), *gap, vitals(130, 400.0)], warmed())
    _, worse = feed([vitals(100, 160.0), vitals(101, 160.0), *gap, vitals(130, 1100.0)], warmed())
    late = [vitals(110 + i, 100.0) for i in range(CFG.suppress + 2)]
    _, again = feed([vitals(100, 400.0), *late, vitals(200, 400.0)], warmed())
    assert len(anomalies(same)) == 1
    assert [a.severity for a in anomalies(worse)] == ["high", "critical"]
    assert len(anomalies(again)) == 2  # past the suppression window the burst is news again


def test_a_modest_deviation_must_persist_to_be_an_anomaly() -> None:
    # 3.6 x the std floor (5 ms): past the envelope (3) but short of a spike (1.5 envelopes).
    state = warmed()
    _, once = feed([vitals(100, 118.0)] + [vitals(101 + i, 100.0) for i in range(10)], state)
    _, held = feed([vitals(100 + i, 118.0) for i in range(CFG.sustain)], state)
    assert anomalies(once) == []
    assert [a.sustained_samples for a in anomalies(held)] == [CFG.sustain]


def test_a_noisy_shift_that_dips_back_between_deviating_samples_is_still_a_deviation() -> None:
    # occupancy_6005 on NAB: a lasting shift whose samples alternate with ordinary ones.
    dipping = [vitals(100 + i, 118.0 if i % 2 == 0 else 100.0) for i in range(2 * CFG.sustain)]
    apart = [vitals(100 + i, 118.0 if i % (CFG.gap + 2) == 0 else 100.0) for i in range(4 * (CFG.gap + 2))]
    assert len(anomalies(feed(dipping, warmed())[1])) == 1
    assert anomalies(feed(apart, warmed())[1]) == []  # blips further apart than `gap` are separate blips


def test_a_burst_seen_before_within_the_window_is_not_news_but_a_larger_one_is() -> None:
    # Twitter_volume_UPS on NAB: spikes of ~80 sd every few hundred samples are how the series lives.
    state, reports = warmed(), []
    for k in range(CFG.seen_before + 2):
        calm = [vitals(101 + 40 * k + i, 100.0, jitter=(i % 5) - 2.0) for i in range(39)]
        state, out = feed([vitals(100 + 40 * k, 400.0 - 5 * k), *calm], state)  # each burst no larger than the last
        reports.append(len(anomalies(out)))
    _, larger = feed([vitals(300, 2000.0)], state)
    assert reports == [1] * CFG.seen_before + [0, 0]
    assert len(anomalies(larger)) == 1


def test_one_extreme_episode_is_one_observation_of_the_tail_weighted_tail_alpha() -> None:
    # The tail's mean excess averages ~2 / tail_alpha exceedances: a single burst moves it by tail_alpha of its
    # excess, no more, so the next extreme (once the burst is no longer remembered) is still news.
    before = warmed()
    tail = before.metrics["latency_ms"]
    state, out = feed([vitals(100, 400.0), *[vitals(101 + i, 100.0, jitter=(i % 5) - 2.0) for i in range(CFG.clear)]],
                      before)  # fmt: skip
    (burst,) = anomalies(out)
    after = state.metrics["latency_ms"]
    assert not after.anomalous
    peak = abs(burst.zscore)
    expected = tail.l_excess + CFG.tail_alpha * (peak - CFG.tail_u - tail.l_excess)
    assert math.isclose(after.l_excess, expected, rel_tol=1e-9)
    # A window later (the burst forgotten by the seen-before rule) the same extreme is reported again.
    calm = [vitals(200 + i, 100.0, jitter=(i % 5) - 2.0) for i in range(CFG.window)]
    state, _ = feed(calm, state)
    assert len(anomalies(feed([vitals(200 + CFG.window, 400.0)], state)[1])) == 1


def test_an_anomaly_carries_how_improbable_it_was_and_its_severity_is_banded_from_that() -> None:
    base = warmed()
    for spike in (122.5, 140.0, 160.0, 1100.0):
        (found,) = anomalies(feed([vitals(100 + i, spike) for i in range(4)], base)[1])
        assert found.surprise is not None and found.surprise >= CFG.surprise
        assert found.severity == judged_severity("latency_ms", found.value, found.surprise, found.mean, CFG)


def test_severity_grows_with_the_deviation() -> None:
    base = warmed()
    severities = []
    # The std floor here is 5% of the mean (5 ms) and the envelope 3, so these are 1.5, 2.7, 4 and 67
    # envelopes out (the last also 11x the mean: beyond what waiting on others does to latency).
    for spike in (122.5, 140.0, 160.0, 1100.0):
        _, out = feed([vitals(100 + i, spike) for i in range(4)], base)
        severities.append([a.severity for a in anomalies(out)])
    assert severities == [["low"], ["medium"], ["high"], ["critical"]]


def test_the_anomaly_ends_after_enough_normal_samples_and_learning_resumes() -> None:
    state, _ = feed([vitals(100 + i, 1000.0) for i in range(4)], warmed())
    state, out = feed([vitals(200 + i, 100.0) for i in range(CFG.clear)], state)
    assert not state.frozen
    snaps = [e for e in out if isinstance(e, BaselineSnapshot)]
    assert snaps and snaps[-1].frozen is False


def test_snapshots_go_out_on_state_changes_and_every_n_samples_not_every_sample() -> None:
    _, out = feed([vitals(i, 100.0, jitter=(i % 3)) for i in range(120)])
    snaps = [e for e in out if isinstance(e, BaselineSnapshot)]
    assert 2 <= len(snaps) <= 4  # warm-up complete, then every 50 samples


def test_anomaly_ids_are_deterministic_for_the_same_causes() -> None:
    base = warmed()
    first = anomalies(feed([vitals(100 + i, 1000.0) for i in range(4)], base)[1])
    again = anomalies(feed([vitals(100 + i, 1000.0) for i in range(4)], base)[1])
    assert [a.event_id for a in first] == [a.event_id for a in again]
    assert first[0].occurred_at == vitals(100).occurred_at


latencies = st.floats(min_value=0, max_value=1e6, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(latencies, min_size=1, max_size=40))
def test_the_baseline_does_not_move_while_the_agent_is_anomalous(values: list[float]) -> None:
    state, _ = feed([vitals(100 + i, 5000.0) for i in range(4)], warmed())
    assert state.frozen
    for i, x in enumerate(values):
        before = {k: (ms.count, ms.mean, ms.m2) for k, ms in state.metrics.items()}
        was_frozen = state.frozen
        state, _ = observe(state, vitals(200 + i, x), CFG)
        if was_frozen:
            assert {k: (ms.count, ms.mean, ms.m2) for k, ms in state.metrics.items()} == before


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=2, max_size=60))
def test_the_running_mean_stays_within_the_range_of_the_samples(values: list[float]) -> None:
    ms = MetricState()
    for x in values:
        ms = learn(ms, x, window=20)
    assert min(values) - 1e-6 <= ms.mean <= max(values) + 1e-6
    assert ms.stddev() >= 0


def noisy_baseline() -> AgentBaseline:
    """An agent learned with some noise on every metric, so z-scores are finite and honest."""
    return feed(
        [
            vitals(
                i,
                100.0,
                jitter=(i % 5) - 2.0,
                errors=0.01 + 0.001 * (i % 3),
                queue=3.0 + 0.3 * (i % 4),
                cpu=0.4 + 0.01 * (i % 3),
                rps=20.0 + 0.5 * (i % 3),
            )
            for i in range(40)
        ]
    )[0]


starvation = st.floats(min_value=0.0, max_value=1.0)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(starvation, st.floats(0, 60)), min_size=1, max_size=30))
def test_a_starved_agents_degraded_vitals_are_never_a_critical_anomaly(samples: list[tuple[float, float]]) -> None:
    # Degradation g in [0, 1] from being denied resources (or from degraded upstreams): latency up
    # to 5x, errors up to +0.25, any backlog, cpu up to +0.3, half the requests. Symptoms of a
    # victim, however extreme in z: at most high, never the critical that quarantines outright.
    state, out = feed(
        [
            vitals(
                100 + i,
                100.0 * (1 + 4 * g),
                errors=0.01 + 0.25 * g,
                queue=3.0 + 40 * g + backlog,
                cpu=0.4 + 0.3 * g,
                rps=20.0 * (1 - 0.5 * g),
            )
            for i, (g, backlog) in enumerate(samples)
        ],
        noisy_baseline(),
    )
    assert all(a.severity != "critical" for a in anomalies(out))


def test_a_starved_agent_is_still_reported_as_highly_anomalous() -> None:
    _, out = feed(
        [vitals(100 + i, 500.0, errors=0.26, queue=60.0, cpu=0.7, rps=10.0) for i in range(4)], noisy_baseline()
    )
    found = anomalies(out)
    assert {a.metric for a in found} >= {"latency_ms", "queue_depth"}
    assert {a.severity for a in found} <= {"low", "medium", "high"} and "high" in {a.severity for a in found}


def test_what_contention_cannot_explain_is_critical() -> None:
    base = noisy_baseline()
    flood = anomalies(feed([vitals(100 + i, rps=300.0) for i in range(3)], base)[1])
    slow = anomalies(feed([vitals(100 + i, 5000.0) for i in range(3)], base)[1])
    failing = anomalies(feed([vitals(100 + i, errors=0.7) for i in range(3)], base)[1])
    assert [(a.metric, a.severity) for a in flood] == [("requests_per_s", "critical")]
    assert [(a.metric, a.severity) for a in slow] == [("latency_ms", "critical")]
    assert [(a.metric, a.severity) for a in failing] == [("error_rate", "critical")]


# --- patterns learned as normal, lasting shifts re-learned, infections in quarantine never ----------------


DAY = 96  # samples per "day" of the cycle


def daily(i: int) -> float:
    """A daily cycle (busy by day, quiet by night) with a little deterministic noise."""
    return 100.0 + 60.0 * math.sin(2 * math.pi * i / DAY) + 3.0 * math.sin(i * 12.9898)


def test_a_learned_daily_cycle_is_not_an_anomaly() -> None:
    state, _ = feed([vitals(i, daily(i)) for i in range(3 * DAY)])
    _, out = feed([vitals(i, daily(i)) for i in range(3 * DAY, 10 * DAY)], state)
    assert anomalies(out) == []


def test_a_day_far_off_the_learned_cycle_is_an_anomaly() -> None:
    state, _ = feed([vitals(i, daily(i)) for i in range(5 * DAY)])
    _, out = feed([vitals(i, daily(i) + 400.0) for i in range(5 * DAY, 5 * DAY + 5)], state)
    assert anomalies(out)


# A real day: samples every 5 minutes of event time, so the time-of-day profile (seasonal channel) applies.
PER_DAY = 288


def at_5min(i: int, latency: float) -> Vitals:
    v = vitals(0, latency)
    return v.model_copy(update={"event_id": f"v-a1-{i}", "occurred_at": T0 + timedelta(minutes=5 * i)})


def square_day(i: int, high: float = 80.0, low: float = 20.0, start: int = 96, end: int = 192) -> float:
    """Busy from `start` to `end` (5-minute slots), quiet otherwise: a step up and a step down every day."""
    slot = i % PER_DAY
    return (high if start <= slot < end else low) + 0.5 * math.sin(i * 12.9898)


def test_daily_steps_are_reported_until_their_time_of_day_is_learned_and_then_never() -> None:
    days = CFG.season_days + 1
    _, first = feed([at_5min(i, square_day(i)) for i in range(days * PER_DAY)])
    state, _ = feed([at_5min(i, square_day(i)) for i in range((days + 1) * PER_DAY)])
    _, later = feed([at_5min(i, square_day(i)) for i in range((days + 1) * PER_DAY, (days + 8) * PER_DAY)], state)
    assert anomalies(first)  # the long baseline alone calls the daily step a jump
    assert anomalies(later) == []


@settings(max_examples=10, deadline=None)
@given(st.floats(5, 500), st.floats(0.5, 10), st.integers(0, PER_DAY // 2 - 1), st.integers(12, PER_DAY // 2))
def test_a_learned_daily_cycle_of_any_shape_is_not_reported(high: float, low: float, start: int, width: int) -> None:
    def value(i: int) -> float:
        return square_day(i, high=low + high, low=low, start=start, end=start + width)

    state, _ = feed([at_5min(i, value(i)) for i in range((CFG.season_days + 2) * PER_DAY)])
    n0 = (CFG.season_days + 2) * PER_DAY
    _, out = feed([at_5min(i, value(i)) for i in range(n0, n0 + 3 * PER_DAY)], state)
    assert anomalies(out) == []


LEARNED_DAYS = CFG.season_days + 1
LEARNED, _ = feed([at_5min(i, square_day(i)) for i in range(LEARNED_DAYS * PER_DAY)])


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=1e5, allow_nan=False), min_size=1, max_size=30))
def test_a_step_never_changes_the_state_it_is_given(values: list[float]) -> None:
    """Working copies share the state's season buckets and bursts, so nothing may change them in place."""
    before = copy.deepcopy(LEARNED)
    n0 = LEARNED_DAYS * PER_DAY
    step("a1", LEARNED, [at_5min(n0 + k, x) for k, x in enumerate(values)], CFG)
    assert before == LEARNED


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=6 * 86400), min_size=1, max_size=60))
def test_the_packed_profile_holds_every_bucket_learned_and_no_other(offsets: list[int]) -> None:
    """Samples at any times of day, in any order (the profile starts at the first one's bucket and wraps past
    midnight): each bucket counts its own samples and the days it was seen on (a change of day counts), and
    a bucket never seen reads as none."""
    ms = MetricState()
    seen: dict[int, tuple[int, int, int]] = {}  # bucket -> samples, days counted, last day
    for t in offsets:
        day, bucket = season_key(at_time(T0 + timedelta(seconds=t)), CFG)
        learn_season(ms, 100.0, (day, bucket), CFG)
        count, days, last = seen.get(bucket, (0, 0, -1))
        seen[bucket] = (count + 1, days + (day != last), day)
    buckets = 86400 // CFG.season_bucket_s
    assert len(ms.season) <= buckets * SLOT.size
    for bucket in range(buckets):
        b = season_bucket(ms, bucket, CFG)
        if bucket not in seen:
            assert b is None
        else:
            assert b is not None and (b[2], b[0], b[1]) == seen[bucket]


def at_time(t: datetime) -> Vitals:
    return vitals(0).model_copy(update={"occurred_at": t})


def test_a_missing_daily_peak_is_reported_by_the_seasonal_channel() -> None:
    n0 = (CFG.season_days + 3) * PER_DAY
    state, _ = feed([at_5min(i, square_day(i)) for i in range(n0)])
    # The next day stays quiet through its busy hours: every value is one the metric often has.
    _, out = feed([at_5min(i, 20.0 + 0.5 * math.sin(i * 12.9898)) for i in range(n0, n0 + PER_DAY)], state)
    found = anomalies(out)
    assert found
    first = min(int((a.occurred_at - T0).total_seconds() // 300) for a in found) % PER_DAY
    assert 96 <= first < 96 + 6 + CFG.season_sustain + 2  # early in the missing busy phase (give or take a bucket)


def test_a_lasting_shift_is_relearned_within_the_stated_bound() -> None:
    state, _ = feed([vitals(i, 100.0 + (i % 5) - 2.0) for i in range(60)])
    shifted = [vitals(60 + i, 300.0 + (i % 5) - 2.0) for i in range(CFG.relearn + CFG.warmup + 50)]
    state, out = feed(shifted, state)
    snaps = [e for e in out if isinstance(e, BaselineSnapshot)]
    relearned = [k for k, s in enumerate(snaps) if s.relearned == ("latency_ms",)]
    assert len(relearned) == 1
    at = next(i for i, e in enumerate(out) if isinstance(e, BaselineSnapshot) and e.relearned)
    assert out[at].occurred_at == shifted[CFG.relearn - 1].occurred_at  # the bound: `relearn` samples
    assert len(anomalies(out)) == 1  # the shift itself, once; the new normal is quiet
    assert state.metrics["latency_ms"].mean > 290 and not state.frozen


def decision(i: int, action: str) -> QuarantineDecision:
    return QuarantineDecision(
        event_id=f"q-{i}", occurred_at=T0 + timedelta(seconds=i), producer="quarantine", agent_id="a1",
        action=action, reason="critical_anomaly" if action == "quarantine" else "term_expired",
    )  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(min_value=130, max_value=1e5, allow_nan=False), min_size=1, max_size=40), st.integers(1, 3))
def test_an_infection_under_quarantine_is_never_learned(infected: list[float], repeat: int) -> None:
    base = warmed(60)
    learned = base.metrics["latency_ms"]
    values = infected * (repeat * CFG.relearn // len(infected) + 1)  # longer than the re-learning bound
    events = [decision(60, "quarantine")] + [vitals(61 + i, x) for i, x in enumerate(values)]
    result = step("a1", base, events, CFG)
    after = result.state.metrics["latency_ms"]
    assert not any(isinstance(o.event, BaselineSnapshot) and o.event.relearned for o in result.outputs)
    tails = ("mean", "m2", "l_exceed", "l_excess", "j_exceed", "j_excess", "s_exceed", "s_excess", "season", "bursts")
    assert [getattr(after, k) for k in tails] == [getattr(learned, k) for k in tails]
    # Released while still infected, the deviation is still news: the infection was not learned.
    released = step("a1", result.state, [decision(10**6, "release"), vitals(10**6 + 1, infected[0])], CFG)
    assert result.state.frozen or anomalies([o.event for o in released.outputs])
