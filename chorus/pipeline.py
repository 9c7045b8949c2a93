"""A scenario through the real pipeline, with the four processors as separate worker processes,
for the demo and evaluation.

Each demo run gets its own consumer groups (an app-id suffix) that start at the end
of their topics, so a run never wades through earlier runs' history; the simulator
starts only once every group is stable, so nothing it produces is skipped.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from processors.runtime import Settings
from processors.runtime.security import as_principal, client_config, principal_env
from simulator import FleetLink, Progress, RunSummary, Scenario, Simulation, run

from . import admin, stack
from .errors import PipelineError
from .observer import Observer, RunView

PROCESSORS = ("baseline", "trust", "conflict", "quarantine", "healing")
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
DRAIN_QUIET_S = 3.0
DRAIN_MAX_S = 30.0


class Workers:
    """`chorus worker NAME` for each processor, one process each, logs in `log_dir`."""

    def __init__(
        self, bootstrap: str, redis_url: str, run_id: str, log_dir: Path, names: tuple[str, ...] = PROCESSORS
    ) -> None:
        self.names = names
        self.bootstrap = bootstrap
        self.suffix = f"-{run_id}"
        self.log_dir = log_dir
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "REDIS_URL": redis_url,
            "CHORUS_RUN_ID": run_id,
            "CHORUS_APP_ID_SUFFIX": self.suffix,
            "CHORUS_CONSUMER_AUTO_OFFSET_RESET": "latest",
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self.settings = Settings()

    def start(self, metrics_ports: dict[str, int] | None = None) -> None:
        """Start every processor; with metrics_ports, each serves /metrics on its port."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name in self.names:
            port = (metrics_ports or {}).get(name, 0)
            with (self.log_dir / f"{name}.log").open("ab") as log:
                # On a secure broker (CHORUS_KAFKA_PRINCIPALS_DIR) each processor runs as its own principal.
                principal = principal_env(self.settings, name)
                self.procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "chorus.cli", "worker", name],
                    env={**self.env, **principal, "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                         "CHORUS_KAFKA_PRINCIPALS_DIR": "", "CHORUS_METRICS_PORT": str(port)},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # Ctrl-C reaches us once; we stop the workers in order
                )

    def wait_ready(self, say=print) -> None:
        """Block until every processor's consumer group is stable, or fail with its log."""
        admin = AdminClient(client_config(bootstrap=self.bootstrap))
        groups = [f"chorus-{name}{self.suffix}" for name in self.names]
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check()
            futures = admin.describe_consumer_groups(groups, request_timeout=10)
            stable = [g for g, f in futures.items() if _stable(f)]
            if len(stable) == len(groups):
                return
            time.sleep(0.5)
        waiting = ", ".join(sorted(set(groups) - set(stable)))
        raise PipelineError(f"processors not ready after {READY_TIMEOUT_S:.0f} s: {waiting}; logs in {self.log_dir}")

    def check(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise PipelineError(
                    f"processor {name} exited with code {proc.returncode}; last lines of its log:\n"
                    + _tail(self.log_dir / f"{name}.log")
                )

    def stop(self) -> None:
        if self.procs:
            print("stopping processors ...", file=sys.stderr)
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _stable(future) -> bool:
    try:
        description = future.result()
    except Exception:
        return False
    return description.state == ConsumerGroupState.STABLE and all(
        m.assignment.topic_partitions for m in description.members
    )


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


@dataclass
class PipelineRun:
    summary: RunSummary
    view: RunView


def run_scenario(
    scenario: Scenario,
    run_id: str,
    bootstrap: str,
    redis_url: str,
    *,
    speed: float | None,
    immune: bool = True,
    watch_admitted: bool = False,
    progress: Callable[[Progress, RunView], None] | None = None,
    say: Callable[[str], None] = print,
) -> PipelineRun:
    """Run a scenario through the real pipeline: the four processors as processes and the
    simulator gated by quarantine, on the given Kafka and Redis (topics are created).

    With immune=False the simulator runs alone, its resource manager reading raw
    intentions: the baseline that shows what Chorus prevents.
    """
    admin.create_topics(bootstrap)
    sim = Simulation(scenario, run_id, gate=immune)
    workers = Workers(bootstrap, redis_url, run_id, stack.home() / "runs" / run_id)
    workers.env["CHORUS_CONFLICT_CAPACITIES"] = json.dumps(
        dict(zip(sim.resource_names, sim.capacity.tolist(), strict=True))
    )
    # ExitStack: every clean-up runs (last registered first) even when another one fails,
    # so no worker process outlives the run.
    with contextlib.ExitStack() as cleanup:
        if immune:
            say("starting processors: " + ", ".join(PROCESSORS) + " ...")
            cleanup.callback(workers.stop)
            workers.start()
            workers.wait_ready(say)
        observer = Observer(bootstrap, run_id, admitted=watch_admitted)
        observer.start()
        cleanup.callback(observer.stop)
        link = FleetLink(bootstrap, run_id, gate=immune, client=client_config(as_principal(Settings(), "simulator")))
        link.check()

        def report(p: Progress) -> None:
            workers.check()
            if progress is not None:
                with observer.lock:
                    progress(p, observer.view)

        summary = run(sim, link, speed=speed, progress=report)
        if immune and not summary.interrupted:
            say("waiting for the last decisions ...")
            _drain(observer, workers)
        with observer.lock:
            return PipelineRun(summary, observer.view)


def _drain(observer: Observer, workers: Workers) -> None:
    """Give the processors time to finish the last events: until the decisions go quiet."""
    deadline = time.monotonic() + DRAIN_MAX_S
    seen, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        workers.check()
        with observer.lock:
            now_seen = len(observer.view.events) + len(observer.view.admitted)
        if now_seen != seen:
            seen, quiet_since = now_seen, time.monotonic()
        elif time.monotonic() - quiet_since >= DRAIN_QUIET_S:
            return
        time.sleep(0.5)
