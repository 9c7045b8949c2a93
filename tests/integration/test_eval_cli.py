"""`chorus eval` end to end on a short scenario: it scores against ground truth and writes what it promises."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from chorus.cli import main

pytestmark = pytest.mark.integration


def test_eval_scores_a_hoarder_run_against_the_truth_with_and_without_the_immune_system(
    services, tmp_path, monkeypatch
):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", services.kafka)
    monkeypatch.setenv("REDIS_URL", services.redis_url)
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(
        main,
        ["eval", "--scenario", "hoarder", "--agents", "100", "--duration", "30", "--speed", "4", "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert {"scenario", "run_id", "recall", "precision", "false_quarantines", "gate_leaks", "time_to_quarantine_s",
            "degraded_healthy"} <= set(report)  # fmt: skip
    assert report["scenario"] == "hoarder" and report["run_id"].startswith("eval-")
    assert len(report["infected"]) == 1
    assert set(report["time_to_quarantine_s"]) == {"p50", "p95", "max"}
    assert report["degraded_healthy"]["immune_off"] >= 0 and report["degraded_healthy"]["immune_on"] is not None
    assert "recall" in result.output and "gate leaks" in result.output


def test_eval_of_a_scenario_file_of_ones_own_works_the_same_way(services, tmp_path, monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", services.kafka)
    monkeypatch.setenv("REDIS_URL", services.redis_url)
    scenario = tmp_path / "mine.yaml"
    scenario.write_text(
        "name: mine\nseed: 2\nduration: 20\nagents: {count: 30}\n"
        "resources: [{name: gpu-pool, capacity_per_agent: 3.0}]\nchaos: []\n"
    )
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(
        main, ["eval", "--scenario", str(scenario), "--immune", "off", "--speed", "5", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["scenario"] == "mine" and report["immune"] is False
    assert report["infected"] == [] and report["quarantined"] == []
    assert report["degraded_healthy"]["immune_on"] is None
