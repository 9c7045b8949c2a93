"""Every metric the dashboards and alert rules query is one that Chorus really exports: scraped from
the five real workers and the lag exporter, running against the real broker and Redis."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
import yaml

from chorus.probe import free_port, scrape
from schemas import ANOMALIES, COMMANDS, CONFLICTS, INTENTIONS, QUARANTINE, TRUST, VITALS

from .runtime_workers import running_worker

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SOURCES = {
    "baseline": [VITALS],
    "trust": [ANOMALIES, CONFLICTS, INTENTIONS, COMMANDS],
    "conflict": [INTENTIONS],
    "quarantine": [TRUST, CONFLICTS, ANOMALIES, COMMANDS, INTENTIONS],
    "healing": [QUARANTINE, VITALS, ANOMALIES],
}
# Series Prometheus makes itself, not the processes it scrapes.
PROMETHEUS_OWN = {"up"}
KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created"), "gauge": ("",)}


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or strings."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings (label_replace arguments, matchers' values)
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)  # label lists
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        following = expr[match.end() :].lstrip()
        if following.startswith("(") or match.group(0) in KEYWORDS:
            continue
        if re.fullmatch(r"\d*[eE]?\d*", match.group(0)) or match.group(0) in ("inf", "nan"):
            continue
        names.add(match.group(0))
    return names


def queried() -> dict[str, set[str]]:
    """Metric name -> where it is queried."""
    where: dict[str, set[str]] = {}
    for board in (DEPLOY / "grafana" / "dashboards").glob("*.json"):
        for panel in json.loads(board.read_text())["panels"]:
            for target in panel["targets"]:
                for name in metric_names(target["expr"]):
                    where.setdefault(name, set()).add(f"{board.name}: {panel['title']}")
    for group in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            for name in metric_names(rule["expr"]):
                where.setdefault(name, set()).add(f"alerts.yml: {rule['alert']}")
    return where


def test_the_name_extraction_finds_metrics_and_only_metrics() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (processor, le) (rate(chorus_batch_seconds_bucket{op="read"}[5m])))'
        ' / on (processor) clamp_min(chorus_x, 1) > 0.8 * chorus_y and time() - up{job="a"} > 1e3'
        ' or label_replace(absent(chorus_z == 1), "processor", "baseline", "", "")'
    )
    assert metric_names(expr) == {"chorus_batch_seconds_bucket", "chorus_x", "chorus_y", "up", "chorus_z"}


def exported(families: list) -> set[str]:
    """The sample names a scrape can carry, declared even where no sample has been recorded yet."""
    names = set()
    for family in families:
        names |= {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
    return names


def test_every_metric_in_the_dashboards_and_alert_rules_is_exported_by_a_real_worker_or_the_lag_exporter(
    services, run_id, tmp_path
) -> None:
    ports = {name: free_port() for name in SOURCES}
    lag_port = free_port()
    found: dict[str, set[str]] = {}
    with ExitStack() as stack:
        for name, sources in SOURCES.items():
            stack.enter_context(
                running_worker(name, services, run_id, sources, tmp_path, CHORUS_METRICS_PORT=str(ports[name]))
            )
        env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": services.kafka,
            "CHORUS_APP_ID_SUFFIX": f"-{run_id}",
            "CHORUS_LAG_INTERVAL_S": "1",
        }
        exporter = subprocess.Popen(
            [sys.executable, "-c", "from chorus.cli import main; main()", "exporter", "--port", str(lag_port)],
            env=env,
            stdout=(tmp_path / "exporter.log").open("w"),
            stderr=subprocess.STDOUT,
        )
        stack.callback(exporter.wait, 30)
        stack.callback(exporter.terminate)
        deadline = time.monotonic() + 120
        waiting = {*ports, "exporter"}
        while waiting and time.monotonic() < deadline:
            for name in sorted(waiting):
                families = scrape(lag_port if name == "exporter" else ports[name])
                ready = families is not None and any(
                    f.name == ("chorus_lag_reads" if name == "exporter" else "chorus_worker_ready") and f.samples
                    for f in families
                )
                if ready:
                    if name == "exporter":  # the exporter's own metrics only (its CLI imports the processors)
                        families = [f for f in families if f.name.startswith(("chorus_consumer_lag", "chorus_lag_"))]
                    found[name] = exported(families)
                    waiting.discard(name)
            time.sleep(0.5)
        assert not waiting, f"never answered /metrics: {waiting}; see {tmp_path}"
    everything = set().union(*found.values())
    missing = {name: where for name, where in queried().items() if name not in everything | PROMETHEUS_OWN}
    assert not missing, f"queried but not exported: {missing}"
    # The per-processor metrics come from the processor that owns them, not from a stray import.
    assert "chorus_gemini_breaker_open" in found["conflict"]
    assert "chorus_quarantine_fleet_cap_ratio" in found["quarantine"]
    assert "chorus_trust_score_bucket" in found["trust"]
    assert "chorus_consumer_lag" in found["exporter"]
