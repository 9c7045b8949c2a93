"""One run as the operator sees it: a ledger of its decisions plus the state readers, for the CLI,
`chorus watch` and the API.

`Fleet.once(...)` reads the decision topics up to their end (a finished run, or a live one as
of now); `Fleet.follow(...)` keeps a background thread reading, for the live surfaces.
"""

from __future__ import annotations

import threading
import time

from processors.runtime.settings import Settings
from schemas import Event

from . import readers, views
from .ledger import Ledger, find_inputs, read_decisions

AGENTS_MAX_AGE_S = 10.0


class Fleet:
    def __init__(self, settings: Settings, run_id: str, ledger: Ledger | None = None) -> None:
        self.settings = settings
        self.run_id = run_id
        self.ledger = ledger or Ledger(run_id)
        self.state = readers.StateReader(settings.redis_url)
        self._halt = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self._groups: tuple[float, list[readers.GroupView] | None] = (0.0, None)
        self._agents: tuple[float, list[str] | None] = (0.0, None)

    @classmethod
    def once(cls, settings: Settings, run_id: str, *, agent: str | None = None) -> Fleet:
        fleet = cls(settings, run_id)
        read_decisions(settings.kafka_bootstrap_servers, fleet.ledger, agent=agent)
        return fleet

    @classmethod
    def follow(cls, settings: Settings, run_id: str) -> Fleet:
        fleet = cls(settings, run_id)
        fleet._thread = threading.Thread(target=fleet._follow, name="chorus-ledger", daemon=True)
        fleet._thread.start()
        return fleet

    def _follow(self) -> None:
        try:
            read_decisions(self.settings.kafka_bootstrap_servers, self.ledger, follow=lambda: not self._halt.is_set())
        except BaseException as exc:  # noqa: BLE001 - surfaced by /ready and `chorus watch`
            self.error = exc
            raise

    @property
    def following(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        self._halt.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.state.close()

    # --- views --------------------------------------------------------------------------

    def status(self, *, with_groups: bool = True, groups_max_age_s: float = 0.0) -> views.Status:
        """With `groups_max_age_s`, consumer groups read less than that long ago are reused (the
        dashboard polls; describing groups and their offsets costs several broker round trips)."""
        groups: list[readers.GroupView] = []
        if with_groups:
            at, cached = self._groups
            if cached is None or time.monotonic() - at >= groups_max_age_s:
                cached = readers.processor_groups(
                    self.settings.kafka_bootstrap_servers, self.run_id, self.settings.app_id_suffix
                )
                self._groups = (time.monotonic(), cached)
            groups = cached
        return views.status(self.run_id, self.ledger.snapshot(), self.scores(), self.ledger.decision_state(), groups)

    def scores(self) -> dict[str, float]:
        """Every agent's score now. Finding the agents SCANs the whole Redis keyspace, so the list is
        reused for AGENTS_MAX_AGE_S (plus any agent a decision named since); the scores are read fresh."""
        at, agents = self._agents
        if agents is None or time.monotonic() - at >= AGENTS_MAX_AGE_S:
            agents = self.state.trust_agents(self.run_id)
            self._agents = (time.monotonic(), agents)
        return self.state.trust_scores(self.run_id, sorted(self.ledger.agents().union(agents)))

    def agents(self) -> list[views.AgentRow]:
        return views.agent_rows(self.scores(), self.ledger.decision_state())

    def held(self) -> tuple[list[views.Held], list[views.Held]]:
        return views.held_lists(self.ledger.decision_state())

    def conflicts(self) -> list[views.ResourceConflicts]:
        return views.conflicts_by_resource(self.ledger.snapshot())

    def knows(self, agent: str) -> bool:
        return agent in self.ledger.agents() or agent in self.state.trust_scores(self.run_id, [agent])

    def explain(self, agent: str, *, inputs: bool = True) -> views.Explanation:
        """The agent's story; with `inputs`, the input events at the bottom of its cause chains are
        looked up on the agent's partitions of the input topics."""
        records = self.ledger.of_agent(agent)
        history = self.state.trust_history(self.run_id, agent)
        known: dict[str, Event] = {c.event_id: c for c in history}

        def lookup(event_id: str) -> Event | None:
            record = self.ledger.by_id.get(event_id)
            return record.event if record is not None else known.get(event_id)

        if inputs and records:
            decisions = [r.event for r in records if r.event.event_type == "quarantine_decision"]
            missing = views.missing_causes(decisions, lookup)
            if missing:
                times = [r.broker_ms for r in records if r.broker_ms > 0]
                known.update(find_inputs(self.settings.kafka_bootstrap_servers, agent, missing, (min(times), max(times))))
        scores = self.state.trust_scores(self.run_id, [agent])
        return views.explain(self.run_id, agent, records, history, lookup, scores.get(agent), self.ledger.memory())

    def pending_agent(self, decision_id: str) -> str | None:
        """The agent a pending decision holds, if that decision is still the agent's latest."""
        record = self.ledger.by_id.get(decision_id)
        if record is None or record.event.event_type != "quarantine_decision":
            return None
        agent = record.event.agent_id  # type: ignore[attr-defined]
        latest = self.ledger.decision_state().get(agent)
        return agent if latest is not None and latest.event_id == decision_id and latest.action == "pending_approval" else None

