"""`Agent`: one agent id's client (async). `SyncAgent` in sync.py wraps it for threaded code."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

from processors.runtime.settings import Settings
from schemas import INTENTIONS, VITALS, Intention, IntentionHeld, QuarantineDecision, Vitals

from .connection import Connection
from .errors import AgentError, GateTimeout, Quarantined
from .follow import AgentStatus
from .meter import CallStats, Cpu, Meter

log = logging.getLogger("chorus.agent")

DecisionCallback = Callable[["Agent", QuarantineDecision], Any]


class Agent:
    """Report intentions and vitals for one agent id and obey the quarantine.

        async with Agent("worker-7") as agent:           # settings from the environment
            async with agent.hold("gpu-pool", 2, hold_s=30):
                ...                                          # admitted by the gate; released on exit

            @agent.meter                                     # vitals from the measured calls
            async def call_api(): ...

    Gated (default): `intend` returns once the quarantine gate admitted the intention and raises
    `Quarantined` when it held it, or at once while the agent is known to be held; `GateTimeout`
    when no verdict arrives within `agent_gate_timeout_s`. Ungated: `intend` returns once Kafka
    acknowledged the intention (for agents whose resources do not read the admitted topic).
    """

    def __init__(
        self,
        agent_id: str,
        settings: Settings | None = None,
        *,
        gated: bool = True,
        connection: Connection | None = None,
        on_decision: DecisionCallback | None = None,
        vitals: bool = True,
        cpu: bool = False,
        tick_s: float | None = None,
        producer: str | None = None,
    ) -> None:
        if connection is not None and agent_id not in connection.agent_ids:
            raise ValueError(f"agent {agent_id} is not one of the connection's agent ids")
        self.agent_id = agent_id
        self._owns_connection = connection is None
        self.connection = connection or Connection([agent_id], settings, gated=gated)
        self.settings = self.connection.settings
        self.gated = self.connection.gated
        self.producer = producer or f"agent:{agent_id}"
        self._on_decision = on_decision
        self._vitals_on = vitals
        self._cpu = Cpu() if cpu else None
        self.tick_s = tick_s or self.settings.agent_vitals_tick_s
        self.stats = CallStats()
        self.meter = Meter(self.stats)
        self._holding: dict[str, float] = {}
        self._changed = asyncio.Condition()
        self._vitals_task: asyncio.Task[None] | None = None
        self.vitals_failures = 0
        self._started = False

    # --- life cycle ------------------------------------------------------------------

    async def start(self) -> Agent:
        if self._started:
            return self
        if self._owns_connection:
            await self.connection.start()
        self.connection.on_status(self.agent_id, self._status_changed)
        if self._vitals_on:
            self._vitals_task = asyncio.create_task(self._publish_vitals_forever(), name=f"vitals-{self.agent_id}")
        self._started = True
        return self

    async def close(self) -> None:
        """Stop the vitals task (publishing the last tick), then close the connection if it is the agent's own."""
        if self._vitals_task is not None:
            self._vitals_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._vitals_task
            self._vitals_task = None
            if not self.connection.closed:
                with contextlib.suppress(AgentError):
                    await self.publish_vitals()
        if self._owns_connection:
            await self.connection.close()

    async def __aenter__(self) -> Agent:
        return await self.start()

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    # --- quarantine ------------------------------------------------------------------

    @property
    def status(self) -> AgentStatus:
        return self.connection.status(self.agent_id)

    @property
    def quarantined(self) -> bool:
        return self.status.quarantined

    @property
    def decision(self) -> QuarantineDecision | None:
        """The latest quarantine or release decision about this agent, if any."""
        return self.status.decision

    async def wait_quarantined(self, timeout: float | None = None) -> QuarantineDecision:
        await self._wait_for(lambda: self.quarantined, timeout)
        assert self.decision is not None
        return self.decision

    async def wait_released(self, timeout: float | None = None) -> None:
        await self._wait_for(lambda: not self.quarantined, timeout)

    # --- intentions ------------------------------------------------------------------

    async def intend(
        self,
        resource: str,
        amount: float,
        hold_s: float | None = None,
        priority: int = 5,
        *,
        timeout: float | None = None,
    ) -> Intention:
        """Announce an acquisition; gated, return once admitted (see the class doc)."""
        if self.quarantined:
            raise Quarantined(self.agent_id, self.decision)
        intention = self._intention("acquire", resource, amount, hold_s, priority)
        await self._send(intention, timeout)
        self._holding[resource] = self._holding.get(resource, 0.0) + amount
        return intention

    async def release(self, resource: str, amount: float | None = None) -> Intention | None:
        """Announce a release (of everything this client acquired on `resource` unless `amount` says).

        Returns None without sending anything while the agent is held: the gate would hold the release
        and the resource's manager takes back a quarantined agent's leases itself.
        """
        amount = amount if amount is not None else self._holding.get(resource, 0.0)
        if amount <= 0:
            raise ValueError(f"agent {self.agent_id} holds nothing of {resource} to release; pass amount=")
        left = self._holding.get(resource, 0.0) - amount
        if left > 1e-9:
            self._holding[resource] = left
        else:
            self._holding.pop(resource, None)
        if self.quarantined:
            return None
        intention = self._intention("release", resource, amount, None, 5)
        await self.connection.publish(INTENTIONS, intention)
        return intention

    @contextlib.asynccontextmanager
    async def hold(
        self, resource: str, amount: float, hold_s: float | None = None, priority: int = 5
    ) -> AsyncIterator[Intention]:
        """Intend on enter (raising like `intend`), release on exit."""
        intention = await self.intend(resource, amount, hold_s, priority)
        try:
            yield intention
        finally:
            await self.release(resource, amount)

    # --- vitals ----------------------------------------------------------------------

    async def publish_vitals(self) -> Vitals:
        """Publish the current tick's aggregate now and start a new tick."""
        sample = self.stats.take()
        vitals = Vitals(
            event_id=uuid.uuid4().hex,
            occurred_at=datetime.now(UTC),
            run_id=self.settings.run_id,
            producer=self.producer,
            agent_id=self.agent_id,
            latency_ms=sample.latency_ms,
            error_rate=sample.error_rate,
            queue_depth=float(sample.queue_depth),
            cpu=self._cpu.read() if self._cpu else 0.0,
            requests_per_s=sample.requests_per_s,
        )
        await self.connection.publish(VITALS, vitals)
        return vitals

    async def _publish_vitals_forever(self) -> None:
        next_at = time.monotonic() + self.tick_s
        while True:
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            next_at += self.tick_s
            try:
                await self.publish_vitals()
            except AgentError as exc:  # counted and logged; the next tick carries on
                self.vitals_failures += 1
                log.error("agent %s: vitals not published: %s", self.agent_id, exc)

    # --- internals -------------------------------------------------------------------

    def _intention(self, action: str, resource: str, amount: float, hold_s: float | None, priority: int) -> Intention:
        return Intention(
            event_id=uuid.uuid4().hex,
            occurred_at=datetime.now(UTC),
            run_id=self.settings.run_id,
            producer=self.producer,
            agent_id=self.agent_id,
            action=action,  # type: ignore[arg-type]
            resource=resource,
            amount=amount,
            priority=priority,
            hold_s=hold_s,
        )

    async def _send(self, intention: Intention, timeout: float | None) -> None:
        if not self.gated:
            await self.connection.publish(INTENTIONS, intention)
            return
        timeout = timeout if timeout is not None else self.settings.agent_gate_timeout_s
        verdict = self.connection.expect(intention)
        deadline = time.monotonic() + timeout
        try:
            await asyncio.wait_for(self.connection.publish(INTENTIONS, intention), timeout)
            outcome = await asyncio.wait_for(verdict, max(deadline - time.monotonic(), 0.0))
        except TimeoutError:
            raise GateTimeout(
                f"no verdict from the quarantine gate on intention {intention.event_id} of agent {self.agent_id} "
                f"within {timeout:.1f}s: is `chorus worker quarantine` running with CHORUS_RUN_ID="
                f"{self.settings.run_id}?"
            ) from None
        finally:
            self.connection.forget(intention.event_id)
        if isinstance(outcome, IntentionHeld):
            raise Quarantined(self.agent_id, self.decision if self.quarantined else None, outcome)

    def _status_changed(self, status: AgentStatus) -> Any:
        if status.quarantined:
            self._holding.clear()  # the resource's manager takes back a quarantined agent's leases
        asyncio.ensure_future(self._notify())
        latest = status.pending or status.decision
        if self._on_decision is not None and latest is not None:
            result = self._on_decision(self, latest)
            if inspect.isawaitable(result):
                return result
        return None

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _wait_for(self, done: Callable[[], bool], timeout: float | None) -> None:
        async def wait() -> None:
            async with self._changed:
                await self._changed.wait_for(done)

        await asyncio.wait_for(wait(), timeout)
