"""Baseline learning and detection, as properties of the pure logic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from processors.baseline import AgentBaseline, BaselineConfig, observe
from processors.baseline.logic import MetricState, learn
from schemas import Anomaly, BaselineSnapshot, Vitals

CFG = BaselineConfig(warmup=15, zscore=4.0, sustain=3, clear=5, snapshot_every=50)
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


def test_a_sustained_latency_spike_becomes_one_anomaly_with_a_severity() -> None:
    state = warmed()
    state, out = feed([vitals(100 + i, 1000.0) for i in range(6)], state)
    found = anomalies(out)
    assert len(found) == 1
    assert found[0].metric == "latency_ms" and found[0].severity == "critical"
    assert found[0].sustained_samples == CFG.sustain
    assert len(found[0].causation_ids) == CFG.sustain
    assert state.frozen


def test_a_single_noisy_sample_is_not_an_anomaly() -> None:
    state = warmed()
    _, out = feed([vitals(100, 1000.0)] + [vitals(101 + i, 100.0) for i in range(10)], state)
    assert anomalies(out) == []


def test_severity_grows_with_the_deviation() -> None:
    base = warmed()
    severities = []
    # The std floor here is 5% of the mean (5 ms), so these are z of about 4.5, 8, 12 and 200\n    # (the last also 11x the mean: beyond what waiting on others does to latency).
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
    assert first[0].occurred_at == vitals(102).occurred_at


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
