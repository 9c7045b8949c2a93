"""Score the baseline detector on the Numenta Anomaly Benchmark with NAB's own code.

Each NAB series is fed to the pure detector (processors.baseline.logic.step, default
settings) as one agent's `latency_ms`, the other vitals constant. A row's anomaly score
is the surprise of the Anomaly the detector emitted at that row, s / (s + 10) (0 where it
emitted none), so NAB's threshold optimiser chooses how improbable a published anomaly
must be to count: the detections are exactly what the processor publishes.
NAB's scorer, its windowed-Gaussian reference detector and its null detector run from
the checkout, in their own Python (NAB needs pandas < 2), never copied into Chorus.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import venv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from processors.baseline.logic import BaselineConfig, step
from schemas import Anomaly, Vitals

from .errors import BenchmarkError

DETECTOR = "chorus"
REFERENCE = "windowedGaussian"
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
HELD_OUT = ("realAWSCloudwatch", "realKnownCause")
SEVERITY_SCORE = {"low": 0.25, "medium": 0.5, "high": 0.75, "critical": 1.0}
# What NAB's scorer needs (its requirements.txt pins pandas 0.23; its code runs on 1.x, not 2.x).
NAB_REQUIREMENTS = ("pandas>=1.3,<2", "numpy<2", "simplejson", "python-dateutil")


@dataclass(frozen=True)
class Series:
    category: str
    name: str  # file name, e.g. art_daily_jumpsup.csv
    path: Path

    @property
    def relative(self) -> str:
        return f"{self.category}/{self.name}"


def checkout(nab: Path) -> Path:
    """The NAB checkout, validated: data/, labels/combined_windows.json and run.py must be there."""
    for part in ("data", "labels/combined_windows.json", "run.py", "nab/scorer.py"):
        if not (nab / part).exists():
            raise BenchmarkError(f"{nab} is not a NAB checkout: {part} is missing (git clone https://github.com/numenta/NAB)")
    return nab


def corpus(nab: Path) -> list[Series]:
    return [
        Series(d.name, f.name, f)
        for d in sorted((nab / "data").iterdir())
        if d.is_dir()
        for f in sorted(d.glob("*.csv"))
    ]


def read_series(path: Path) -> tuple[list[str], list[float]]:
    stamps, values = [], []
    with path.open(newline="") as fh:
        for row in csv.DictReader(fh):
            stamps.append(row["timestamp"])
            values.append(float(row["value"]))
    return stamps, values


def detect(stamps: list[str], values: list[float], cfg: BaselineConfig) -> list[float]:
    """The detector's anomaly score per row: the severity of the Anomaly it published there, else 0."""
    times = [datetime.fromisoformat(s).replace(tzinfo=UTC) for s in stamps]
    # model_construct: NAB values are not vitals (one artificial series is negative), the detector
    # only needs a number; everything else about the event is as the simulator would send it.
    events = [
        Vitals.model_construct(
            event_id=f"nab-{i}", event_type="vitals", schema_version=1, occurred_at=t, run_id="nab",
            causation_ids=(), producer="nab", agent_id="nab", latency_ms=x, error_rate=0.0, queue_depth=0.0,
            cpu=0.0, requests_per_s=0.0,
        )
        for i, (t, x) in enumerate(zip(times, values, strict=True))
    ]  # fmt: skip
    result = step("nab", None, events, cfg)
    row = {e.event_id: i for i, e in enumerate(events)}
    scores = [0.0] * len(values)
    for out in result.outputs:
        if isinstance(out.event, Anomaly):
            i = row[out.event.causation_ids[-1]]
            scores[i] = max(scores[i], row_score(out.event))
    return scores


def row_score(anomaly: Anomaly) -> float:
    """The Anomaly's surprise mapped monotonically into NAB's [0, 1] (s / (s + 10)), so that NAB's threshold
    optimiser chooses how improbable a published anomaly must be to count; its severity if it has none."""
    if anomaly.surprise is None:
        return SEVERITY_SCORE[anomaly.severity]
    return anomaly.surprise / (anomaly.surprise + 10.0)


def windows(nab: Path) -> dict[str, list[tuple[str, str]]]:
    return json.loads((nab / "labels" / "combined_windows.json").read_text())


def write_results(nab: Path, results: Path, cfg: BaselineConfig, series: list[Series],
                  progress: Callable[[str], None] = lambda _: None) -> None:  # fmt: skip
    """NAB-format result files for the detector: results/chorus/<category>/chorus_<file>."""
    labelled = windows(nab)
    for s in series:
        progress(s.relative)
        stamps, values = read_series(s.path)
        scores = detect(stamps, values, cfg)
        spans = [(_parse(a), _parse(b)) for a, b in labelled.get(s.relative, [])]
        out = results / DETECTOR / s.category / f"{DETECTOR}_{s.name}"
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["timestamp", "value", "anomaly_score", "label"])
            for ts, x, sc in zip(stamps, values, scores, strict=True):
                t = _parse(ts)
                w.writerow([ts, repr(x) if not x.is_integer() else int(x), sc, int(any(a <= t <= b for a, b in spans))])


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.split(".")[0])


# --- NAB's own code, in its own interpreter -------------------------------------------------------------------


def nab_python(venv_dir: Path, say: Callable[[str], None]) -> Path:
    """A Python that can run NAB's scorer: venv_dir's, created (with NAB_REQUIREMENTS) if missing."""
    python = venv_dir / "bin" / "python"
    probe = [str(python), "-c", "import pandas, simplejson, dateutil; assert pandas.__version__ < '2'"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    say(f"creating NAB's Python environment in {venv_dir} ({', '.join(NAB_REQUIREMENTS)})")
    venv.EnvBuilder(with_pip=True, clear=python.exists()).create(venv_dir)
    pip = [str(python), "-m", "pip", "install", "--quiet", *NAB_REQUIREMENTS]
    done = subprocess.run(pip, capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchmarkError(f"cannot install NAB's requirements into {venv_dir}: {done.stderr.strip()[-800:]}")
    return python


def run_nab(python: Path, nab: Path, results: Path, args: list[str],
            progress: Callable[[str], None] = lambda _: None) -> str:  # fmt: skip
    """run.py of the checkout, from the checkout (NAB resolves its config relative to it).

    NAB's own progress lines (a file begun, a threshold found, a score file written) are passed to
    `progress` as they come: the windowed Gaussian alone takes minutes of CPU, and a silent run under
    load looks like a hung one.
    """
    cmd = [str(python), "-u", "run.py", "--skipConfirmation", "-n", "1", "--resultsDir", str(results),
           "--thresholdsFile", str(results / "thresholds.json"), *args]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(nab)}
    lines: list[str] = []
    with subprocess.Popen(cmd, cwd=nab, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if line.strip() and any(word in line for word in _PROGRESS_WORDS):
                progress(line.strip())
    if proc.returncode != 0:
        raise BenchmarkError(f"NAB's run.py {' '.join(args)} failed: {''.join(lines).strip()[-1500:]}")
    return "".join(lines)


_PROGRESS_WORDS = ("Beginning detection", "Optimizer found", "scores written", "Running", "Final score")


def score(python: Path, nab: Path, results: Path, progress: Callable[[str], None] = lambda _: None) -> None:
    """NAB's detect (reference + null), optimize, score: the same steps as NAB's README, in `results`.

    Only the windowed Gaussian and the null detector are run by NAB (Chorus's results are written
    before); NAB's optimiser sweeps every distinct score once per detector and profile.
    """
    run_nab(python, nab, results, ["--detect", "-d", REFERENCE, "null"], progress)
    (results / "thresholds.json").write_text("{}")
    run_nab(python, nab, results, ["--optimize", "--score", "--normalize", "-d", DETECTOR, REFERENCE, "null"],
            progress)  # fmt: skip


def read_scores(nab: Path, results: Path, detector: str) -> dict[str, dict[str, float]]:
    """Normalised scores per profile, for the corpus ("all") and each category, from NAB's score files.

    NAB normalises the corpus total as 100 x (score - null) / (perfect - null); the same formula
    over one category's files gives its score (the null detector misses every window).
    """
    profiles = json.loads((nab / "config" / "profiles.json").read_text())
    labelled = windows(nab)
    out: dict[str, dict[str, float]] = {}
    for profile in PROFILES:
        tp_w, fn_w = (profiles[profile]["CostMatrix"][k] for k in ("tpWeight", "fnWeight"))
        sums: dict[str, list[float]] = {}
        with (results / detector / f"{detector}_{profile}_scores.csv").open() as fh:
            for row in csv.DictReader(fh):
                if row["File"] in ("", "Totals") or not row["File"]:
                    continue
                category = row["File"].split("/")[0]
                n = len(labelled.get(row["File"], []))
                for key in (category, "all", "held_out" if category in HELD_OUT else "development"):
                    acc = sums.setdefault(key, [0.0, 0.0])
                    acc[0] += float(row["Score"])
                    acc[1] += n
        for key, (total, n) in sums.items():
            if n:
                null, perfect = -fn_w * n, tp_w * n
                out.setdefault(key, {})[profile] = 100.0 * (total - null) / (perfect - null)
    return out


def final_results(results: Path) -> dict[str, dict[str, float]]:
    """NAB's own normalised totals (final_results.json), to check read_scores against."""
    return json.loads((results / "final_results.json").read_text())


GROUPS = ("all", "development", "held_out")


def categories(scores: dict[str, dict[str, float]]) -> Iterator[str]:
    yield from sorted(k for k in scores if k not in GROUPS)


if __name__ == "__main__":  # pragma: no cover - a developer's shortcut: write results only
    write_results(Path(sys.argv[1]), Path(sys.argv[2]), BaselineConfig(), corpus(Path(sys.argv[1])), print)
