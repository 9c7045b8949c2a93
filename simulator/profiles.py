"""Behaviour profiles: how an agent of each kind claims resources and how healthy it looks."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """Means for one kind of agent; each agent draws its own values around them."""

    intent_rate: float  # acquisitions per simulated second, outside bursts
    amount: float  # mean units per acquisition
    hold_s: float  # mean hold time of an acquisition
    priority: int
    latency_ms: float
    error_rate: float
    cpu: float
    queue_depth: float
    requests_per_s: float
    burst_on: float = 0.0  # per-tick chance to enter a burst
    burst_off: float = 1.0  # per-tick chance to leave a burst
    burst_factor: float = 1.0  # intention rate multiplier while bursting


PROFILES: dict[str, Profile] = {
    "steady": Profile(0.3, 3.0, 4.0, 5, 80.0, 0.01, 0.35, 2.0, 20.0),
    "bursty": Profile(0.2, 2.0, 3.0, 4, 120.0, 0.02, 0.30, 4.0, 15.0, burst_on=0.05, burst_off=0.3, burst_factor=6.0),
    # Greedy but fair: claims more and holds longer, yet within its share and at ordinary priority.
    "greedy": Profile(0.4, 6.0, 6.0, 6, 60.0, 0.01, 0.50, 3.0, 30.0),
    "quiet": Profile(0.05, 1.0, 2.0, 3, 150.0, 0.005, 0.10, 1.0, 5.0),
}
