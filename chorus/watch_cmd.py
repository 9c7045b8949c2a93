"""`chorus watch`: a live terminal dashboard (rich), `q` quits. Plain terminal I/O, so it works over SSH."""

from __future__ import annotations

import contextlib
import select
import sys
import termios
import time
import tty
from collections.abc import Iterator

import click
from rich.console import Group
from rich.layout import Layout
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from processors.runtime.settings import Settings

from . import views
from .fleet import Fleet

REFRESH_S = 1.0
GROUPS_EVERY_S = 5.0
RECENT_ROWS = 14
COLOURS = {"quarantine_decision": "red", "anomaly": "yellow", "conflict_prediction": "magenta",
           "operator_command": "cyan", "trust_change": "white", "dead_letter": "bright_red"}


@click.command()
@click.option("--run-id", default=None, help="The run to watch (default: CHORUS_RUN_ID, else 'live').")
def watch(run_id: str | None) -> None:
    """Live: fleet summary, quarantined and pending agents, recent decisions, trust histogram,
    decision throughput and consumer lag. Press q (or Ctrl-C) to quit."""
    settings = Settings()
    fleet = Fleet.follow(settings, run_id or settings.run_id)
    try:
        with _keys() as pressed, Live(Text("reading the decision topics ..."), refresh_per_second=4,
                                      screen=sys.stdout.isatty()) as live:
            status, groups_at, rate = None, 0.0, _Rate()
            while True:
                now = time.monotonic()
                with_groups = now - groups_at >= GROUPS_EVERY_S
                fresh = fleet.status(with_groups=with_groups)
                if with_groups or status is None:
                    groups_at = now
                else:
                    fresh = fresh.model_copy(update={"processors": status.processors})
                status = fresh
                live.update(render(status, fleet.ledger.since(max(0, fleet.ledger.last_seq - 200)),
                                   rate.update(fleet.ledger.last_seq), fleet.ledger.caught_up))
                if fleet.error is not None:
                    raise click.ClickException(f"lost the decision topics: {fleet.error}")
                deadline = time.monotonic() + REFRESH_S
                while time.monotonic() < deadline:
                    if pressed(0.1) in ("q", "Q"):
                        return
    except KeyboardInterrupt:
        pass
    finally:
        fleet.close()


class _Rate:
    def __init__(self) -> None:
        self.last: tuple[float, int] | None = None
        self.value = 0.0

    def update(self, seq: int) -> float:
        now = time.monotonic()
        if self.last is not None and now > self.last[0]:
            self.value = (seq - self.last[1]) / (now - self.last[0])
        self.last = (now, seq)
        return self.value


@contextlib.contextmanager
def _keys() -> Iterator:
    """A key reader: `pressed(timeout)` returns a typed character or None. Without a terminal, never a key."""
    if not sys.stdin.isatty():
        yield lambda timeout: time.sleep(timeout)
        return
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        def pressed(timeout: float) -> str | None:
            ready, _, _ = select.select([sys.stdin], [], [], timeout)
            return sys.stdin.read(1) if ready else None

        yield pressed
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def render(s: views.Status, recent: list, rate: float, caught_up: bool) -> Layout:
    head = Text.assemble(
        ("chorus watch ", "bold"), f"run {s.run_id}   as of {s.as_of:%H:%M:%S}   " if s.as_of else f"run {s.run_id}   ",
        f"agents {s.agents_seen}   ", (f"quarantined {len(s.quarantined)}   ", "red"),
        (f"pending {len(s.pending)}   ", "yellow"), f"warning {s.warning}   ",
        f"decision events {rate:,.0f}/s   ", f"last minute: {s.anomalies_last_minute} anomalies, "
        f"{s.conflicts_last_minute} conflicts", ("" if caught_up else "   (catching up ...)", "dim"),
        ("   q quits", "dim"))
    held = Table(expand=True, box=None)
    for col in ("agent", "status", "reason", "since", "until"):
        held.add_column(col)
    for h in s.quarantined:
        held.add_row(h.agent_id, Text("quarantined", "red"), h.reason, f"{h.since:%H:%M:%S}",
                     f"{h.until:%H:%M:%S}" if h.until else "released by operator")
    for h in s.pending:
        held.add_row(h.agent_id, Text("pending", "yellow"), h.reason, f"{h.since:%H:%M:%S}", "-")
    hist = Table(expand=True, box=None, show_header=False)
    peak = max(s.trust_buckets.values(), default=0) or 1
    for bucket, n in reversed(list(s.trust_buckets.items())):
        colour = "red" if bucket.startswith(("0-", "10-", "20-")) else "yellow" if bucket[:2] in ("30", "40", "50") else "green"
        hist.add_row(bucket, Text("█" * round(25 * n / peak), colour), str(n))
    feed = Table(expand=True, box=None)
    feed.add_column("time")
    feed.add_column("event")
    feed.add_column("agent")
    feed.add_column("what", ratio=1)
    interesting = [r for r in recent if r.event.event_type != "trust_change"][-RECENT_ROWS:]
    for r in reversed(interesting):
        agent = getattr(r.event, "agent_id", None) or getattr(r.event, "resource", "")
        feed.add_row(f"{r.event.occurred_at:%H:%M:%S}", Text(r.event.event_type, COLOURS.get(r.event.event_type, "")),
                     agent, views.describe(r.event))
    procs = Table(expand=True, box=None)
    for col in ("processor", "replicas", "state", "last output", "dead letters", "lag"):
        procs.add_column(col)
    for p in s.processors:
        procs.add_row(p.name, str(p.replicas), p.state, f"{p.last_output:%H:%M:%S}" if p.last_output else "-",
                      str(p.dead_letters), ", ".join(f"{t} {n}" for t, n in sorted(p.lag.items())) or "-")
    layout = Layout()
    layout.split_column(Layout(Panel(head), size=3), Layout(name="mid", ratio=2),
                        Layout(Panel(feed, title="recent decisions"), ratio=2), Layout(Panel(procs, title="processors"), size=8))
    layout["mid"].split_row(Layout(Panel(Group(held), title="quarantined and pending"), ratio=3),
                            Layout(Panel(hist, title="trust"), ratio=2))
    return layout
