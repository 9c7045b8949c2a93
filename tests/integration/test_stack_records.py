"""`chorus stack` keeps track of exactly the processes it started."""

from __future__ import annotations

import subprocess
import sys

import pytest

from chorus import stack
from tests.services import Services

pytestmark = pytest.mark.integration


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CHORUS_HOME", str(tmp_path))
    return tmp_path


def _started_here(name: str, home) -> stack.Service:
    # A stand-in for a broker `up` started: a real process, recorded the way `up` records one.
    return stack._spawn(name, "127.0.0.1:1", [sys.executable, "-c", "import time; time.sleep(60)"], home / f"{name}.log")


def test_using_external_services_never_hides_a_local_process_from_down(services: Services, home, monkeypatch) -> None:
    local = _started_here("kafka", home)
    stack._save({"kafka": local})
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", services.kafka)
    monkeypatch.setenv("REDIS_URL", services.redis_url)

    used = stack.up(lambda _: None)
    assert used["kafka"].address == services.kafka and used["kafka"].pid is None

    stack.down(lambda _: None)
    assert not local.ours(), "the local process outlived `down`"


def test_down_leaves_alone_a_process_that_merely_reuses_a_recorded_pid(home) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = stack.Service("redis", "redis://127.0.0.1:1/0", pid=other.pid, started=1)  # another start time
        stack._save({"redis": stale})
        stack.down(lambda _: None)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
