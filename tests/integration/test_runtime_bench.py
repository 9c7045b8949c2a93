"""`chorus bench` end to end on a small pre-fill: it measures and reports every number it promises."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from chorus.cli import main

pytestmark = pytest.mark.integration


def test_bench_reports_passthrough_bare_faust_and_processor_rates_with_their_ratio(services, tmp_path, monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", services.kafka)
    monkeypatch.setenv("REDIS_URL", services.redis_url)
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        main, ["bench", "--processors", "baseline", "--events", "12000", "--agents", "100", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    (row,) = json.loads(out.read_text())["results"]
    # Other producers may write to the shared vitals topic meanwhile: every message in the range is measured.
    assert row["processor"] == "baseline" and row["events"] >= 12000
    assert row["passthrough_events_per_s"] > 0 and row["faust_take_events_per_s"] > 0
    assert row["processor_events_per_s"] > 0
    assert row["passthrough_events_per_cpu_s"] > 0 and row["faust_take_events_per_cpu_s"] > 0
    assert row["processor_events_per_cpu_s"] > 0
    assert row["ratio"] == pytest.approx(row["processor_events_per_s"] / row["passthrough_events_per_s"], abs=1e-3)
    assert "baseline" in result.output and "ratio" in result.output
