"""A short fuzz drill (issue 10; `python -m tests.fuzz` runs the full one): hostile messages into every
input topic of the four real workers while a healthy stream flows."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from tests.fuzz import READERS, run_drill

pytestmark = pytest.mark.integration


def test_hostile_messages_are_all_dead_lettered_and_the_healthy_stream_is_processed_exactly_once(
    services, tmp_path
) -> None:
    report = run_drill(services, hostile=400, agents=8, seed=11, log_dir=tmp_path, timeout_s=120)  # under pytest-timeout, so a failure prints its report
    detail = json.dumps(asdict(report), indent=1)
    assert report.hostile_sent == 400 and set(report.hostile_by_topic) == set(READERS), detail
    assert report.oversized_sent >= 1 and {"from_2100", "classic_tab_run_id", "deep_nesting"} <= set(
        report.hostile_by_kind
    ), detail
    assert report.crashes_or_stalls == 0, detail
    assert report.dead_letters_found == report.dead_letters_expected > report.hostile_sent, detail
    assert report.good_events_dead_lettered == 0, detail
    assert report.admitted_exactly_once == report.good_intentions and report.admitted_doubled == 0, detail
    assert not report.baseline_agents_wrong and not report.trust_agents_wrong and report.claims_missing == 0, detail
    assert report.ok
