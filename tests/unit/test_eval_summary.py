"""`chorus eval --seeds N`: each figure summarised as min / median / max over the seeds."""

from __future__ import annotations

from chorus.eval_cmd import FIGURES, _summary


def _run(seed: int, *, false_quarantines: int, released_uncured: int | None) -> dict:
    return {
        "seed": seed,
        "recall": 1.0,
        "precision": 1.0,
        "false_quarantines": false_quarantines,
        "gate_leaks": 0,
        "leaked_intentions": 5,
        "pending_approval": {"healthy": 0, "infected": 0},
        "time_to_quarantine_s": {"p50": 1.0, "p95": 2.0, "max": 2.5},
        "wall_time_to_quarantine_s": {"p50": 0.02, "p95": 0.05, "max": 0.06},
        "degraded_healthy": {"immune_on": 3, "immune_off": None},
        "healing": None if released_uncured is None else {"released_uncured": released_uncured},
    }


def test_every_figure_is_summarised_over_the_seeds_including_healings_releases_of_infected_agents() -> None:
    runs = [_run(23, false_quarantines=0, released_uncured=0), _run(24, false_quarantines=1, released_uncured=3),
            _run(25, false_quarantines=0, released_uncured=0)]  # fmt: skip
    summary = _summary("mixed", runs)["summary"]
    assert set(summary) == set(FIGURES)
    assert summary["false_quarantines"] == {"min": 0, "median": 0.0, "max": 1}
    assert summary["released_uncured"] == {"min": 0, "median": 0.0, "max": 3}


def test_a_figure_that_does_not_apply_to_any_seed_is_not_applicable() -> None:
    summary = _summary("clean", [_run(1, false_quarantines=0, released_uncured=None)])["summary"]
    assert summary["released_uncured"] == {"min": None, "median": None, "max": None}
    assert summary["degraded_healthy_off"] == {"min": None, "median": None, "max": None}
