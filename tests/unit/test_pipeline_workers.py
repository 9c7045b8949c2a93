"""The workers of `chorus demo`, `eval`, `bench` and `replay` are supervised: one that exits is restarted."""

from __future__ import annotations

import time

import pytest

from chorus.errors import PipelineError
from chorus.pipeline import MAX_RESTARTS, Workers


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
