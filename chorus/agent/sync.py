"""`SyncAgent`: the async `Agent` behind blocking calls, for threaded code and scripts.

It runs the agent on a private event loop in a daemon thread; every method blocks
until the coroutine on that loop is done. Callbacks (`on_decision`) run on that thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

from processors.runtime.settings import Settings
from schemas import Intention, QuarantineDecision, Vitals

from .agent import Agent
from .meter import Meter

T = TypeVar("T")


class SyncAgent:
    def __init__(self, agent_id: str, settings: Settings | None = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"chorus-agent-{agent_id}", daemon=True)
        self._thread.start()

        async def make() -> Agent:
            return await Agent(agent_id, settings, **options).start()

        try:
            self._agent = self._run(make())
        except BaseException:
            self._stop_loop()
            raise

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    @property
    def agent_id(self) -> str:
        return self._agent.agent_id

    @property
    def meter(self) -> Meter:
        return self._agent.meter

    @property
    def quarantined(self) -> bool:
        return self._agent.quarantined

    @property
    def decision(self) -> QuarantineDecision | None:
        return self._agent.decision

    def intend(self, resource: str, amount: float, hold_s: float | None = None, priority: int = 5) -> Intention:
        return self._run(self._agent.intend(resource, amount, hold_s, priority))

    def release(self, resource: str, amount: float | None = None) -> Intention | None:
        return self._run(self._agent.release(resource, amount))

    @contextlib.contextmanager
    def hold(self, resource: str, amount: float, hold_s: float | None = None, priority: int = 5) -> Iterator[Intention]:
        intention = self.intend(resource, amount, hold_s, priority)
        try:
            yield intention
        finally:
            self.release(resource, amount)

    def publish_vitals(self) -> Vitals:
        return self._run(self._agent.publish_vitals())

    def wait_quarantined(self, timeout: float | None = None) -> QuarantineDecision:
        return self._run(self._agent.wait_quarantined(timeout))

    def wait_released(self, timeout: float | None = None) -> None:
        self._run(self._agent.wait_released(timeout))

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._run(self._agent.close())
        finally:
            self._stop_loop()

    def __enter__(self) -> SyncAgent:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
