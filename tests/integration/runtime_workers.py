"""Helpers for integration tests of the processors: real workers as subprocesses, real topics read back."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from confluent_kafka import Consumer, Producer

from processors.runtime import start_group_at_end
from processors.runtime.kafka import end_offsets
from processors.runtime.security import client_config
from schemas import PARTITIONER, Event, TopicSpec, encode
from tests.services import Services


@contextlib.contextmanager
def running_worker(
    name: str,
    services: Services,
    run_id: str,
    sources: Sequence[TopicSpec],
    log_dir: Path,
    *,
    keep_group: bool = False,
    **env: str,
) -> Iterator[subprocess.Popen]:
    """`chorus worker NAME` for one run, in its own consumer group starting at the current end of its sources
    (or, with keep_group, where the group's last worker left it)."""
    suffix = f"-{run_id}"
    if not keep_group:
        start_group_at_end(services.kafka, f"chorus-{name}{suffix}", [s.name for s in sources])
    full_env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": services.kafka,
        "REDIS_URL": services.redis_url,
        "CHORUS_RUN_ID": run_id,
        "CHORUS_APP_ID_SUFFIX": suffix,
        "CHORUS_METRICS_PORT": "0",
        "CHORUS_BATCH_WITHIN_S": "0.02",
        **env,
    }
    log = (log_dir / f"{name}.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-c", "from chorus.cli import main; main()", "worker", name],
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def produce(services: Services, messages: Sequence[tuple[TopicSpec, Event] | tuple[str, bytes | None, bytes]]) -> None:
    """Produce events (keyed by their topic's key) or raw (topic, key, value) triples; waits for delivery."""
    producer = Producer({**client_config(bootstrap=services.kafka), "linger.ms": 5, "partitioner": PARTITIONER})
    for item in messages:
        if isinstance(item[0], TopicSpec):
            spec, event = item  # type: ignore[misc]
            producer.produce(spec.name, encode(event), spec.key_of(event))
        else:
            topic, key, value = item  # type: ignore[misc]
            producer.produce(topic, value, key)
    assert producer.flush(30) == 0


class TopicReader:
    """Reads the topics from their end at creation time; yields decoded JSON values of one run."""

    def __init__(self, services: Services, topics: Sequence[TopicSpec], run_id: str) -> None:
        self._run_id = run_id
        self._consumer = Consumer(
            {**client_config(bootstrap=services.kafka), "group.id": f"reader-{run_id}", "enable.auto.commit": False}
        )
        self._consumer.assign(end_offsets(services.kafka, [t.name for t in topics]))
        self.seen: list[tuple[str, dict]] = []

    def wait_for(
        self, done: Callable[[list[tuple[str, dict]]], bool], timeout_s: float = 60.0
    ) -> list[tuple[str, dict]]:
        deadline = time.monotonic() + timeout_s
        while not done(self.seen) and time.monotonic() < deadline:
            msg = self._consumer.poll(0.25)
            if msg is None or msg.error():
                continue
            try:
                value = json.loads(msg.value())
            except (ValueError, TypeError):  # not JSON, or a null value (the fuzz drill writes both)
                continue
            if isinstance(value, dict) and value.get("run_id") == self._run_id:
                self.seen.append((msg.topic(), value))
        return self.seen

    def drain(self, seconds: float) -> list[tuple[str, dict]]:
        return self.wait_for(lambda _seen: False, timeout_s=seconds)

    def close(self) -> None:
        self._consumer.close()


class TcpProxy:
    """A real TCP forwarder (its own thread and loop) that can be switched off and on: a service outage."""

    def __init__(self, target_host: str, target_port: int) -> None:
        import asyncio
        import socket
        import threading

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()

    def _call(self, coro):  # type: ignore[no-untyped-def]
        import asyncio

        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def up(self) -> None:
        import asyncio

        async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                writer.close()

        async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
            server_r, server_w = await asyncio.open_connection(*self._target)
            self._writers |= {client_w, server_w}
            await asyncio.gather(pipe(client_r, server_w), pipe(server_r, client_w), return_exceptions=True)

        async def start() -> None:
            self._server = await asyncio.start_server(handle, "127.0.0.1", self.port)

        self._call(start())

    def down(self) -> None:
        async def stop() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            for writer in self._writers:
                writer.close()
            self._writers.clear()

        self._call(stop())
