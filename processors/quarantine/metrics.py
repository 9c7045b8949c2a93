"""The quarantine processor's own metrics (the runtime's cover events in and out)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

QUARANTINED = Gauge("chorus_quarantined_agents", "Agents held in quarantine now.")
PENDING = Gauge("chorus_quarantine_pending", "Policy quarantines waiting for an operator (past the fleet cap).")
ACTIVE = Gauge("chorus_quarantine_active_agents", "The active fleet the cap is a share of (recently seen or held).")
FLEET_CAP = Gauge("chorus_quarantine_fleet_cap_ratio", "Share of the active fleet policy may quarantine (configured).")
HELD_INTENTIONS = Counter("chorus_gate_held_intentions", "Intentions of quarantined agents held back by the gate.")
