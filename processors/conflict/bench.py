"""Cost of the fast path per window: `python -m processors.conflict.bench`.

Prints the min, median, mean and p99 time of `predict` for windows of several sizes (claims per
window, claimants per window), building the claims outside the timed part.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from datetime import UTC, datetime, timedelta

from schemas import Intention

from .predict import Window, predict

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _window(rng: random.Random, claims: int, agents: int) -> list[Intention]:
    return [
        Intention(
            event_id=f"b-{n}",
            occurred_at=T0 + timedelta(seconds=rng.uniform(0, 5)),
            producer="bench",
            agent_id=f"agent-{rng.randrange(agents)}",
            action="acquire",
            resource="gpu",
            amount=rng.uniform(1, 20),
            priority=rng.randint(1, 10),
            hold_s=rng.uniform(0.5, 10),
        )
        for n in range(claims)
    ]


def measure(claims: int, agents: int, repeats: int = 300, seed: int = 7) -> tuple[float, float, float, float]:
    rng = random.Random(seed)
    window = Window("bench", "gpu", T0, T0 + timedelta(seconds=5))
    inputs = [_window(rng, claims, agents) for _ in range(20)]
    times = []
    for i in range(repeats):
        batch = inputs[i % len(inputs)]
        start = time.perf_counter()
        predict(window, 100.0, batch)
        times.append(time.perf_counter() - start)
    times.sort()
    us = [t * 1e6 for t in times]
    return us[0], statistics.median(us), statistics.fmean(us), us[int(len(us) * 0.99) - 1]


def main() -> None:
    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus (a busy machine inflates mean and p99; min does not)"
    )
    print(f"{'claims':>7} {'agents':>7} {'min_us':>9} {'median_us':>9} {'mean_us':>9} {'p99_us':>9}")
    for claims, agents in ((5, 3), (20, 5), (50, 10), (200, 50), (1000, 200)):
        low, median, mean, p99 = measure(claims, agents)
        print(f"{claims:>7} {agents:>7} {low:>9.1f} {median:>9.1f} {mean:>9.1f} {p99:>9.1f}")


if __name__ == "__main__":
    main()
