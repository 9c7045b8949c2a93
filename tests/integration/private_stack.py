"""A Kafka broker and a Redis server of a test's own, which the test may stop and start again.

The shared services of the suite (from the environment, or the CI's local stack) are not
the test's to restart; this one is started from the same recipe as `chorus stack` (jars from
the Maven cache, Redis with AOF) on free ports under a temporary home, and stopped afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from chorus import stack


def _free_pair() -> int:
    """A port p with p + 1 free as well (the broker's controller listens on p + 1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


def _free() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PrivateStack:
    home: Path
    kafka: stack.Service
    redis: stack.Service

    def restart_redis(self) -> None:
        """SIGTERM (Redis writes its AOF on the way out), then start it again on the same data."""
        with self._home():
            stack._stop(self.redis)
            self.redis = stack._start_redis(self.redis.address, print)

    def restart_kafka(self) -> None:
        with self._home():
            stack._stop(self.kafka)
            self.kafka = stack._start_kafka(self.kafka.address, print)

    @contextlib.contextmanager
    def _home(self) -> Iterator[None]:
        before = os.environ.get("CHORUS_HOME")
        os.environ["CHORUS_HOME"] = str(self.home)
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("CHORUS_HOME", None)
            else:
                os.environ["CHORUS_HOME"] = before

    def stop(self) -> None:
        for svc in (self.kafka, self.redis):
            if svc.ours():
                stack._stop(svc)


@contextlib.contextmanager
def private_stack(home: Path) -> Iterator[PrivateStack]:
    # The broker's classpath is resolved once per recipe; reuse the shared home's copy when it has one.
    shared = stack.home() / "kafka"
    (home / "kafka").mkdir(parents=True, exist_ok=True)
    for cached in shared.glob("classpath-*.txt") if shared.exists() else ():
        shutil.copy(cached, home / "kafka" / cached.name)
    ps = PrivateStack(home, stack.Service("kafka", ""), stack.Service("redis", ""))
    try:
        with ps._home():
            ps.redis = stack._start_redis(f"redis://127.0.0.1:{_free()}/0", print)
            ps.kafka = stack._start_kafka(f"127.0.0.1:{_free_pair()}", print)
        yield ps
    finally:
        ps.stop()
