"""Plain-text rendering of the operator's views, shared by `chorus status`, `chorus explain` and the demo."""

from __future__ import annotations

from datetime import datetime

from . import views


def _t(at: datetime | None) -> str:
    return f"{at:%H:%M:%S}" if at else "-"


def status_lines(s: views.Status) -> list[str]:
    lines = [
        f"run {s.run_id}   as of {_t(s.as_of)} (event time)   agents seen {s.agents_seen}   "
        f"decisions {s.decisions}   dead letters {s.dead_letters}",
        f"quarantined ({len(s.quarantined)}):",
    ]
    for h in s.quarantined:
        term = f"until {_t(h.until)}" if h.until else "until released"
        trust = f"trust {h.trust:.0f}" if h.trust is not None else ""
        lines.append(f"  {h.agent_id:16} {h.reason:18} since {_t(h.since)}  {term:16} {trust}  {h.detail}".rstrip())
    lines.append(f"pending approval ({len(s.pending)}):")
    for h in s.pending:
        lines.append(f"  {h.agent_id:16} {h.reason:18} since {_t(h.since)}  decision {h.decision_id}  {h.detail}")
    peak = max(s.trust_buckets.values(), default=0) or 1
    lines.append(f"trust ({s.warning} in warning, below 60):")
    for bucket, n in reversed(list(s.trust_buckets.items())):
        lines.append(f"  {bucket:>7} {'#' * max(1 if n else 0, round(30 * n / peak)):30} {n}")
    lines.append(f"last minute: {s.anomalies_last_minute} anomalies, {s.conflicts_last_minute} conflicts")
    lines.append("processors:")
    lines.append(f"  {'name':11} {'replicas':>8} {'state':12} {'last output':11} {'dead':>5}  lag per topic")
    for p in s.processors:
        lag = ", ".join(f"{t} {n}" for t, n in sorted(p.lag.items())) or "-"
        lines.append(f"  {p.name:11} {p.replicas:>8} {p.state:12} {_t(p.last_output):11} {p.dead_letters:>5}  {lag}")
    return lines


def chain_lines(node: views.CauseNode, indent: int = 2) -> list[str]:
    lines = []
    for cause in node.causes:
        lines.append(f"{' ' * indent}<- [{_t(cause.occurred_at)}] {cause.summary}  ({cause.event_id})")
        lines.extend(chain_lines(cause, indent + 3))
    if node.more_causes:
        lines.append(f"{' ' * indent}   (+{node.more_causes} more causes)")
    return lines


def explain_lines(e: views.Explanation, limit: int = 0) -> list[str]:
    trust = f"trust {e.trust:.0f} ({e.level})" if e.trust is not None else "no trust state"
    lines = [f"{e.agent_id} in run {e.run_id}: {trust}, {e.status}"]
    shown = e.trust_history[-limit:] if limit else e.trust_history
    lines.append(f"trust history ({len(e.trust_history)} changes{f', last {len(shown)} shown' if len(shown) < len(e.trust_history) else ''}):")
    for c in shown:
        cause = f"  cause {c.causes[0]}" if c.causes else ""
        lines.append(f"  {_t(c.occurred_at)}  {c.before:5.1f} -> {c.after:5.1f}  {c.reason}"
                     f"{': ' + c.detail if c.detail else ''}{cause}")
    lines.append(f"anomalies ({len(e.anomalies)}):")
    lines.extend(f"  {_t(a.occurred_at)}  {a.summary}" for a in (e.anomalies[-limit:] if limit else e.anomalies))
    lines.append(f"conflicts naming it ({len(e.conflicts)}):")
    for c in e.conflicts[-limit:] if limit else e.conflicts:
        mine = f", its aggressiveness {c.aggressiveness:.2f}, share {c.share:.0%}" if c.aggressiveness is not None else ""
        lines.append(f"  {_t(c.occurred_at)}  {c.resource}: risk {c.risk:.2f}, {c.failure_mode}, "
                     f"most aggressive {c.most_aggressive}{mine} [{c.source}]")
    if e.commands:
        lines.append(f"operator commands ({len(e.commands)}):")
        lines.extend(f"  {c}" for c in e.commands)
    if e.healing:
        lines.append(f"healing ({len(e.healing)}):")
        lines.extend(f"  {h}" for h in e.healing)
    for condition, records in e.memory.items():
        known = ", ".join(f"{r.action} cured {r.cured}/{r.tried}" for r in records)
        lines.append(f"immune memory of {condition}: {known}")
    lines.append(f"quarantine decisions ({len(e.decisions)}):")
    for d in e.decisions:
        term = f" until {_t(d.until)}" if d.until else ""
        lines.append(f"  {_t(d.occurred_at)}  {d.action} ({d.reason}){term}{'  ' + d.detail if d.detail else ''}  ({d.event_id})")
        lines.extend(chain_lines(d.chain, 4))
    return lines
