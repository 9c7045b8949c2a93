"""Looking at a running worker from outside: a free port for its /metrics, its metrics, its counters."""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def scrape(port: int, host: str = "127.0.0.1") -> list[Metric] | None:
    """The metric families a /metrics endpoint serves; None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    return list(text_string_to_metric_families(text))


def worker_counters(port: int) -> tuple[float | None, float]:
    """(events done, process CPU seconds) from a worker's /metrics; (None, 0.0) while it does not answer."""
    families = scrape(port)
    if families is None:
        return None, 0.0
    done, cpu = None, 0.0
    for family in families:
        if family.name == "chorus_events_done":
            done = sum(sample.value for sample in family.samples if sample.name.endswith("_total"))
        elif family.name == "process_cpu_seconds":
            cpu = sum(sample.value for sample in family.samples)
    return done, cpu
