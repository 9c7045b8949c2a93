"""The examples run as their README says and end as it shows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def test_the_fleet_example_ends_with_the_greedy_agent_quarantined_and_the_others_recovering(services) -> None:
    env = os.environ | {"KAFKA_BOOTSTRAP_SERVERS": services.kafka, "REDIS_URL": services.redis_url}
    done = subprocess.run(
        [sys.executable, "examples/fleet.py", "--calm", "8", "--max", "120"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "w3 QUARANTINED (conflict_aggressor)" in done.stdout
    assert "the SDK refuses its claim" in done.stdout
    quarantined = [line for line in done.stdout.splitlines() if "QUARANTINED" in line]
    assert all(line.split()[2] == "w3" for line in quarantined), quarantined  # no fair agent was held
    rows = {}
    for line in done.stdout.split("jobs per phase")[1].splitlines()[2:7]:
        agent, *cells = line.replace("/", " ").split()
        rows[agent] = [int(c) for c in cells[:6]]  # calm ok, failed; greedy ok, failed; after ok, failed
    assert set(rows) == {"w1", "w2", "w3", "w4", "w5"}
    for agent, (_, _, _, _, after_ok, after_failed) in rows.items():
        if agent == "w3":
            assert after_ok == after_failed == 0  # held: it runs no job after its quarantine
        else:
            assert after_ok >= 3 and after_failed * 4 <= after_ok, rows  # the others recovered
