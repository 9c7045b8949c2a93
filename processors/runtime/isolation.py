"""Per-event isolation of a step: one bad event costs only itself, never its neighbours' batch.

The runner steps an entity's new events in one call. When that call raises, this replays
them one at a time from the stored state, so only the events whose own step raises are
dead-lettered and the rest apply as they would have. It relies on the rule every step
already keeps for determinism: stepping events in one call or one at a time decides the same.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from schemas import Event

from .processor import Output, Processor, Step


def step_each(
    processor: Processor[Any],
    entity: str,
    state: BaseModel | None,
    events: Sequence[Event],
    parts: Mapping[str, bytes] | None = None,
) -> tuple[Step[Any], list[tuple[int, Exception]]]:
    """The step of `events` applied one by one; the indexes (and errors) of those whose step raised.

    Each event starts from a deep copy of the state so far: a step that mutated its input and
    then raised leaves nothing of its half-done work behind.
    """
    outputs: list[Output] = []
    history: list[str] = []
    failed: list[tuple[int, Exception]] = []
    changed = False
    now = dict(parts or {})  # the parts as the events so far left them (stored JSON bytes)
    written: dict[str, str] = {}
    for i, event in enumerate(events):
        try:
            result = processor.apply(entity, state.model_copy(deep=True) if state is not None else None, [event], now)
        except Exception as exc:  # this event's own failure: it alone is dead-lettered
            failed.append((i, exc))
            continue
        if result.state is not None:
            state, changed = result.state, True
        outputs += result.outputs
        history += result.history
        written.update(result.parts)
        now.update((name, value.encode()) for name, value in result.parts.items())
    return Step(state if changed else None, outputs, history, written), failed
