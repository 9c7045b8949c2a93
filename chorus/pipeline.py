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
from .record_cmd import write_manifest

PROCESSORS = ("baseline", "trust", "conflict", "quarantine", "healing")
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
DRAIN_QUIET_S = 3.0
DRAIN_MAX_S = 30.0
# A member that exits is restarted, as a supervisor would (static membership gives it its partitions back;
# fences and compare-and-set make what it re-reads harmless), this many times before the run fails.
MAX_RESTARTS = 3


class Workers:
    """`chorus worker NAME` for each processor, `replicas` processes each, logs in `log_dir`."""

    def __init__(
        self,
        bootstrap: str,
        redis_url: str,
        run_id: str,
        log_dir: Path,
        names: tuple[str, ...] = PROCESSORS,
        *,
        replicas: int = 1,
    ) -> None:
        self.names = names
        self.bootstrap = bootstrap
        self.suffix = f"-{run_id}"
        self.log_dir = log_dir
        self.replicas = replicas
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
            "REDIS_URL": redis_url,
            "CHORUS_RUN_ID": run_id,
            "CHORUS_APP_ID_SUFFIX": self.suffix,
            "CHORUS_CONSUMER_AUTO_OFFSET_RESET": "latest",
        }
        self.procs: dict[str, subprocess.Popen] = {}
        self.restarts: dict[str, int] = {}
        self.settings = Settings()
        self.processor_env: dict[str, dict[str, str]] = {}  # extra environment per processor name
        self._ports: dict[str, int] = {}

    def group(self, name: str) -> str:
        return f"chorus-{name}{self.suffix}"

    def start(self, metrics_ports: dict[str, int] | None = None) -> None:
        """Start every processor; with metrics_ports, each serves /metrics on its port."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._ports = dict(metrics_ports or {})
        for name in self.names:
            for i in range(self.replicas):
                self.spawn(name if self.replicas == 1 else f"{name}#{i}")

    def spawn(self, member: str) -> None:
        """(Re)start one member: `NAME` or `NAME#i`. A restarted member keeps its static group
        membership id, so it gets its partitions back without a rebalance."""
        name, _, index = member.partition("#")
        port = self._ports.get(name, 0) if self.replicas == 1 else 0
        with (self.log_dir / f"{member.replace('#', '-')}.log").open("ab") as log:
            self.procs[member] = subprocess.Popen(
                [sys.executable, "-m", "chorus.cli", "worker", name],
                # On a secure broker (CHORUS_KAFKA_PRINCIPALS_DIR) each processor runs as its own principal.
                env={
                    **self.env,
                    **principal_env(self.settings, name),
                    "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
                    "CHORUS_KAFKA_PRINCIPALS_DIR": "",
                    **self.processor_env.get(name, {}),
                    "CHORUS_METRICS_PORT": str(port),
                    "CHORUS_GROUP_INSTANCE_ID": f"{self.group(name)}-{index or 0}",
                },
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us once; we stop the workers in order
            )

    def kill(self, member: str) -> None:
        """SIGKILL one member (a fault drill) and reap it."""
        proc = self.procs[member]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()

    def wait_ready(self, say=print) -> None:
        """Block until every processor's consumer group is stable, or fail with its log."""
        admin = AdminClient(client_config(bootstrap=self.bootstrap))
        groups = [self.group(name) for name in self.names]
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            self.check()
            futures = admin.describe_consumer_groups(groups, request_timeout=10)
            stable = [g for g, f in futures.items() if _stable(f, self.replicas)]
            if len(stable) == len(groups):
                return
            time.sleep(0.5)
        waiting = ", ".join(sorted(set(groups) - set(stable)))
        raise PipelineError(f"processors not ready after {READY_TIMEOUT_S:.0f} s: {waiting}; logs in {self.log_dir}")

    def check(self) -> None:
        """Restart a member that exited; fail the run, with its log, once one has exited too often."""
        for name, proc in list(self.procs.items()):
            if proc.poll() is None:
                continue
            exited = f"processor {name} exited with code {proc.returncode}; last lines of its log:\n" + _tail(
                self.log_dir / f"{name.replace('#', '-')}.log"
            )
            if self.restarts.get(name, 0) >= MAX_RESTARTS:
                raise PipelineError(f"{exited}\n(restarted {MAX_RESTARTS} times already)")
            self.restarts[name] = self.restarts.get(name, 0) + 1
            print(f"{exited}\nrestarting it ({self.restarts[name]} of {MAX_RESTARTS})", file=sys.stderr)
            self.spawn(name)

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


def _stable(future, members: int = 1) -> bool:
    try:
        description = future.result()
    except Exception:
        return False
    return description.state == ConsumerGroupState.STABLE and len(description.members) >= members and all(
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
    capacities = dict(zip(sim.resource_names, sim.capacity.tolist(), strict=True))
    workers.env["CHORUS_CONFLICT_CAPACITIES"] = json.dumps(capacities)
    write_manifest(run_id, scenario=scenario.name, seed=scenario.seed, agents=sim.n, capacities=capacities)
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
