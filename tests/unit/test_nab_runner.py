"""chorus.nab's driver of NAB's run.py: progress is streamed, a failure is a clear error (no NAB checkout needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from chorus import nab
from chorus.errors import BenchmarkError


def fake_nab(tmp_path: Path, body: str) -> Path:
    (tmp_path / "run.py").write_text(body)
    return tmp_path


def test_nab_progress_lines_are_passed_on_as_they_come_and_the_rest_kept(tmp_path: Path) -> None:
    checkout = fake_nab(tmp_path, "print('1: Beginning detection with null for a.csv')\nprint('noise')\n")
    seen: list[str] = []
    out = nab.run_nab(Path(sys.executable), checkout, tmp_path, ["--detect"], seen.append)
    assert seen == ["1: Beginning detection with null for a.csv"]
    assert "noise" in out


def test_a_failing_nab_run_is_a_benchmark_error_with_its_output(tmp_path: Path) -> None:
    checkout = fake_nab(tmp_path, "import sys\nprint('Running optimize step')\nsys.exit('boom: no scores')\n")
    with pytest.raises(BenchmarkError, match="boom: no scores"):
        nab.run_nab(Path(sys.executable), checkout, tmp_path, ["--optimize"])


def test_a_rows_nab_score_rises_with_the_published_anomalys_surprise_and_stays_below_one() -> None:
    from datetime import UTC, datetime

    from schemas import Anomaly

    def anomaly(surprise: float | None) -> Anomaly:
        return Anomaly(event_id="a", occurred_at=datetime(2026, 1, 1, tzinfo=UTC), producer="baseline",
                       agent_id="nab", metric="latency_ms", value=9.0, mean=1.0, stddev=1.0, zscore=8.0,
                       severity="high", sustained_samples=1, surprise=surprise)  # fmt: skip

    scores = [nab.row_score(anomaly(s)) for s in (3.0, 6.0, 20.0, 1e12)]
    assert scores == sorted(scores) and len(set(scores)) == 4 and scores[0] > 0 and scores[-1] <= 1.0
    assert nab.row_score(anomaly(None)) == nab.SEVERITY_SCORE["high"]  # a producer without a surprise
