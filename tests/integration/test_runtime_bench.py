"""`chorus bench` end to end on a small pre-fill: it measures and reports every number it promises."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from chorus.cli import main

pytestmark = pytest.mark.integration


def test_bench_reports_each_processor_against_the_passthrough_and_the_pipeline_at_offered_loads(
    services, tmp_path, monkeypatch
):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", services.kafka)
    monkeypatch.setenv("REDIS_URL", services.redis_url)
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        main,
        ["bench", "--processors", "baseline", "--events", "12000", "--agents", "100", "--replicas", "2",
         "--loads", "500,1000", "--step-s", "2", "--warmup-s", "2", "--json", str(out)],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["passthrough_eps"] > 0
    assert set(report["processors"]) == {"baseline"}
    assert report["processors"]["baseline"]["eps"] > 0
    (row,) = report["details"]["processors"]
    # Other producers may write to the shared vitals topic meanwhile: every message in the range is measured.
    assert row["processor"] == "baseline" and row["events"] >= 12000
    assert row["passthrough_events_per_s"] > 0 and row["faust_take_events_per_s"] > 0
    assert row["processor_events_per_cpu_s"] > 0
    assert report["processors"]["baseline"]["ratio"] == pytest.approx(
        row["processor_events_per_s"] / row["passthrough_events_per_s"], abs=1e-3
    )
    # Redis memory of the run: one state hash per agent at least, measured in bytes.
    assert row["agents"] == 100 and row["redis_keys"] >= 100 and row["redis_bytes"] > 100 * 100
    # Two workers of one group: the group split the partitions, so each did part of the work.
    scale = row["scale_out"]
    assert scale["workers"] == 2 and len(scale["per_worker_events"]) == 2
    assert all(n > 0 for n in scale["per_worker_events"]) and all(e > 0 for e in scale["per_worker_events_per_cpu_s"])
    assert [load["offered_eps"] for load in report["pipeline"]] == pytest.approx([500, 1000], rel=0.1)
    for load in report["pipeline"]:
        assert set(load) == {"offered_eps", "achieved_eps", "p50_ms", "p95_ms", "p99_ms", "hops", "events_per_cpu_s",
                             "loadavg"}  # fmt: skip
        assert load["achieved_eps"] > 0 and load["p50_ms"] <= load["p95_ms"] <= load["p99_ms"]
        assert load["events_per_cpu_s"] > 0 and len(load["loadavg"]) == 2
        admitted = load["hops"]["agent.intentions.admitted"]
        assert admitted["n"] > 0 and admitted["to_produce_p50_ms"] is not None
    for load in report["details"]["pipeline"]:  # every worker's batches over the load, from its own metrics
        assert set(load["workers"]) == {"baseline", "trust", "conflict", "quarantine", "healing"}
        assert load["workers"]["quarantine"]["batches"] > 0 and load["workers"]["baseline"]["cpu_s"] > 0
    assert "ratio" in result.output and "p99 ms" in result.output and "per CPU-s" in result.output
