"""The workers of `chorus demo`, `eval`, `bench` and `replay` are supervised: one that exits is restarted."""

from __future__ import annotations

import time

import pytest

from chorus.errors import PipelineError
from chorus.pipeline import MAX_RESTARTS, Workers
from chorus.pipeline_bench import _spent


def test_a_worker_that_keeps_exiting_is_restarted_then_fails_the_run_with_its_log(tmp_path) -> None:
    workers = Workers("127.0.0.1:1", "redis://127.0.0.1:1/0", "run", tmp_path, names=("nosuch",))
    workers.start()
    try:
        deadline = time.monotonic() + 120
        with pytest.raises(PipelineError) as failed:
            while time.monotonic() < deadline:
                workers.check()
                time.sleep(0.1)
    finally:
        workers.stop()
    assert workers.restarts == {"nosuch": MAX_RESTARTS}
    assert "no processor 'nosuch'" in str(failed.value)
    assert f"restarted {MAX_RESTARTS} times" in str(failed.value)


def test_the_bench_says_when_a_workers_figures_are_only_since_a_restart_during_the_load() -> None:
    before = {"healing": {"cpu_s": 40.0, "batches": 900.0, "batch_s": 9.0, "events": 9000.0, "holds": 0.0,
                          "hold_s": 0.0, "forced": 0.0}}  # fmt: skip
    steady = {"healing": {**before["healing"], "cpu_s": 44.0, "batches": 1000.0}}
    # Restarted early in a long load, the new process can already have spent more than the old one had.
    restarted = {"healing": {**before["healing"], "cpu_s": 41.5, "batches": 30.0}}
    steady_spent = _spent(before, steady, restarted=set())["healing"]
    restarted_spent = _spent(before, restarted, restarted={"healing"})["healing"]
    assert (steady_spent["cpu_s"], steady_spent["batches"], steady_spent["restarted"]) == (4.0, 100.0, False)
    assert (restarted_spent["cpu_s"], restarted_spent["batches"], restarted_spent["restarted"]) == (41.5, 30.0, True)
