"""Runs a simulation against Kafka: paces simulated time, feeds quarantine and gate decisions
back into the fleet, reports progress, and always flushes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .engine import Simulation
from .kafka_io import FleetLink

PROGRESS_EVERY_S = 0.5


@dataclass
class Progress:
    sim_time_s: float
    duration_s: float
    events: int
    wall_s: float
    events_per_s: float  # over the last progress interval
    quarantined: int
    suffering_healthy: int
    healthy: int
    granted: int
    denied: int


@dataclass
class RunSummary:
    run_id: str
    scenario: str
    agents: int
    sim_time_s: float
    wall_s: float
    produced: dict[str, int]
    granted: int
    denied: int
    admitted_received: int
    quarantine_decisions: int
    delivery_errors: dict[str, int]
    undelivered: int
    skipped_inputs: int
    interrupted: bool
    peak_suffering_share: float
    degraded_healthy: int  # never-infected agents that suffered contention for DEGRADED_MIN_TICKS or more
    healing_received: int = 0  # healing actions the fleet received
    cured: int = 0  # infections a healing action cured

    @property
    def events(self) -> int:
        return sum(self.produced.values())

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def ok(self) -> bool:
        return not self.delivery_errors and self.undelivered == 0


def run(
    sim: Simulation,
    link: FleetLink,
    *,
    speed: float | None,
    progress: Callable[[Progress], None] | None = None,
) -> RunSummary:
    """Run to the end of the scenario (or Ctrl-C). `speed` None runs as fast as possible."""
    tick_s = sim.scenario.tick
    started = last_report = time.monotonic()
    events_at_report = events = granted = denied = admitted_n = decisions_n = cured = 0
    peak = 0.0
    interrupted = False
    batch = None
    try:
        while not sim.done:
            quarantine, admitted = link.feedback()
            admitted_n += len(admitted)
            decisions_n += len(quarantine)
            batch = sim.step(quarantine, admitted, link.healing())
            link.send(batch)
            events += batch.events
            granted += batch.granted
            denied += batch.denied
            cured += batch.cured
            peak = max(peak, batch.suffering_healthy / max(1, batch.healthy))
            if speed:
                _pace(link, started + (sim.tick * tick_s) / speed)
            now = time.monotonic()
            if progress is not None and (now - last_report >= PROGRESS_EVERY_S or sim.done):
                rate = (events - events_at_report) / max(now - last_report, 1e-9)
                progress(Progress(
                    batch.sim_time_s, sim.scenario.duration, events, now - started, rate, int(sim.quarantined.sum()),
                    batch.suffering_healthy, batch.healthy, granted, denied,
                ))
                last_report, events_at_report = now, events
    except KeyboardInterrupt:
        interrupted = True
    finally:
        link.close()
    return RunSummary(
        run_id=sim.run_id,
        scenario=sim.scenario.name,
        agents=sim.n,
        sim_time_s=sim.sim_time_s,
        wall_s=time.monotonic() - started,
        produced=dict(link.produced),
        granted=granted,
        denied=denied,
        admitted_received=admitted_n,
        quarantine_decisions=decisions_n,
        delivery_errors=dict(link.delivery_errors),
        undelivered=link.undelivered,
        skipped_inputs=link.skipped_inputs + sim.ignored_inputs,
        interrupted=interrupted,
        peak_suffering_share=peak,
        degraded_healthy=sim.degraded_healthy,
        healing_received=sim.healing_received,
        cured=cured,
    )


def _pace(link: FleetLink, until: float) -> None:
    while (left := until - time.monotonic()) > 0:
        link.wait(min(left, 0.05))
