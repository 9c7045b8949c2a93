"""The chaos schedule: which agents each scenario entry infects, and when it starts and ends.

Pure: agent choice is seeded by the scenario seed and the entry's position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from schemas import InfectionMode

from .scenario import ChaosSpec, Scenario

MODES: tuple[InfectionMode, ...] = ("hoarder", "flood", "latency", "errors", "deceptive", "defiant")
MODE_CODE: dict[str, int] = {mode: i + 1 for i, mode in enumerate(MODES)}  # 0 means healthy
CLAIM_MODES = frozenset({"hoarder", "deceptive", "defiant"})


@dataclass(frozen=True)
class Outbreak:
    """One chaos entry, with the ticks at which it starts and ends (end None: outlasts the run)."""

    index: int
    spec: ChaosSpec
    start_tick: int
    end_tick: int | None

    @property
    def start_s(self) -> float:
        return self.spec.at

    @property
    def end_s(self) -> float | None:
        return None if self.spec.duration is None else self.spec.at + self.spec.duration


def plan(scenario: Scenario) -> list[Outbreak]:
    """Each chaos entry becomes active on the first tick starting at or after `at`."""
    ticks = total_ticks(scenario)
    outbreaks = []
    for i, spec in enumerate(scenario.chaos):
        start = math.ceil(spec.at / scenario.tick - 1e-9)
        if start >= ticks:
            continue
        end = None
        if spec.duration is not None:
            end = math.ceil((spec.at + spec.duration) / scenario.tick - 1e-9)
            if end >= ticks:
                end = None
        outbreaks.append(Outbreak(i, spec, start, end))
    return outbreaks


def total_ticks(scenario: Scenario) -> int:
    return max(1, math.ceil(scenario.duration / scenario.tick - 1e-9))


def choose_agents(scenario: Scenario, outbreak: Outbreak, healthy: np.ndarray) -> np.ndarray:
    """Agent indices the outbreak infects; `healthy` marks agents free to pick for a count."""
    spec = outbreak.spec
    if spec.agents is not None:
        return np.array(sorted(int(a.partition("-")[2]) for a in spec.agents), dtype=np.int64)
    candidates = np.flatnonzero(healthy)
    if len(candidates) < spec.count:
        candidates = np.arange(len(healthy))
    rng = np.random.default_rng([scenario.seed, 7919, outbreak.index])
    return np.sort(rng.choice(candidates, size=spec.count, replace=False))
