"""The alert path end to end with the real programs: Prometheus evaluates deploy/prometheus/alerts.yml
over a real worker's metrics, fires ChorusProcessorDown when the worker stops, Alertmanager (run with
deploy/alertmanager/alertmanager.yml, only its webhook address changed) sends it to the receiver of
`chorus alerts tail`, which prints it with its runbook line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from chorus.alerts_cmd import receiver
from chorus.probe import free_port
from schemas import VITALS

from .runtime_workers import running_worker

pytestmark = pytest.mark.integration

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def program(*names: str) -> str:
    for name in names:
        if path := shutil.which(name):
            return path
    message = f"none of {names} installed (deploy/install-deps.sh installs them)"
    if os.environ.get("CHORUS_REQUIRE_SERVICES") == "1" or os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def about_baseline(line: str, status: str) -> bool:
    return status in line and "ChorusProcessorDown" in line and "baseline:" in line


def up_since(prom_port: int) -> bool:
    """Prometheus has scraped the worker successfully (its `up` is 1)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/api/v1/query?query=up", timeout=3) as resp:
            result = json.loads(resp.read())["data"]["result"]
    except OSError:
        return False
    return any(r["value"][1] == "1" for r in result)


def wait_for(check, timeout_s: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not check() and time.monotonic() < deadline:
        time.sleep(0.5)


def start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=log.open("w"), stderr=subprocess.STDOUT)


def test_a_stopped_worker_fires_processor_down_through_prometheus_and_alertmanager_to_the_receiver(
    services, run_id, tmp_path
) -> None:
    prometheus = program("prometheus")
    alertmanager = program("prometheus-alertmanager", "alertmanager")
    lines: list[str] = []
    hook_port, am_port, am_cluster, prom_port, worker_port = (free_port() for _ in range(5))
    server = receiver(hook_port, lines.append, host="127.0.0.1")
    threading.Thread(target=server.serve_forever, daemon=True).start()

    am_config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    am_config["receivers"][0]["webhook_configs"][0]["url"] = f"http://127.0.0.1:{hook_port}/"
    am_config["route"].update(group_wait="1s", group_interval="1s")
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(am_config))
    # The shipped rules, with their `for` shortened so the test takes seconds, not minutes.
    rules = (DEPLOY / "prometheus" / "alerts.yml").read_text().replace("for: 1m", "for: 5s")
    (tmp_path / "alerts.yml").write_text(rules)
    prom_config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["alerts.yml"],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
        "scrape_configs": [
            {
                "job_name": "chorus",
                "honor_labels": True,
                "static_configs": [
                    {"targets": [f"127.0.0.1:{worker_port}"], "labels": {"processor": name}}
                    for name in ("baseline",)
                ],
            }
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(prom_config))

    procs = [
        start(
            [alertmanager, f"--config.file={tmp_path / 'alertmanager.yml'}", f"--storage.path={tmp_path / 'am'}",
             f"--web.listen-address=127.0.0.1:{am_port}", f"--cluster.listen-address=127.0.0.1:{am_cluster}"],
            tmp_path / "alertmanager.log",
        ),
        start(
            [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            tmp_path / "prometheus.log",
        ),
    ]
    try:
        with running_worker("baseline", services, run_id, [VITALS], tmp_path, CHORUS_METRICS_PORT=str(worker_port)):
            # Until the worker answers it is down indeed (start-up); once it answers, the alert resolves.
            wait_for(lambda: any(about_baseline(line, "RESOLVED") for line in lines) or up_since(prom_port), 180)
            time.sleep(3)  # a firing notification already on its way arrives
            seen = len(lines)
            time.sleep(10)  # scraped up past the rule's `for`: nothing new fires meanwhile
            assert not any(about_baseline(line, "FIRING") for line in lines[seen:]), lines[seen:]
            seen = len(lines)
        wait_for(lambda: any(about_baseline(line, "FIRING") for line in lines[seen:]), 120)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(30)
        server.shutdown()
    fired = [line for line in lines[seen:] if about_baseline(line, "FIRING")]
    assert fired, f"no alert reached the receiver: {lines}; see {tmp_path}"
    assert "[critical] baseline: No baseline worker answers its metrics port." in fired[0]
    assert "runbook: Check the worker's container or pod" in fired[0]
