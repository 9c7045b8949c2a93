"""What a processor is to the runtime: its sources, its per-entity state model, and a pure step."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from schemas import Event, TopicSpec

S = TypeVar("S")  # a pydantic model or a dataclass (statecodec.py: how each is stored)


@dataclass(frozen=True)
class Output:
    """An event to publish on a registry topic (keyed by the topic's key field)."""

    topic: TopicSpec
    event: Event


@dataclass(frozen=True)
class Step(Generic[S]):
    """What a pure step decided for one entity: its new state (None = unchanged), outputs, history entries."""

    state: S | None = None
    outputs: Sequence[Output] = ()
    history: Sequence[str] = ()
    parts: Mapping[str, str] = field(default_factory=dict)  # with Processor.parts_of: the parts it changed (JSON)


StepFn = Callable[[str, "S | None", Sequence[Event]], Step[S]]


@dataclass(frozen=True)
class Processor(Generic[S]):
    """A stateful processor, described for the runtime.

    - `sources`: the registry topics it consumes (decoded with each topic's model).
    - `entities_of(event)`: the entity ids (agent ids, resources...) whose state the event touches.
    - `step(entity, state, events)`: pure logic; the events are new to that entity's state, in order.
    - `on_applied(entity, state)`: optional shell hook (metrics) called after a new state is stored.
    - `verifies_commands`: it acts on operator commands, so the runtime lets only signed, trusted,
      fresh, never-seen commands reach `step` (`processors.runtime.commands.CommandGuard`).
    - `keyed_topics`: sources whose record key *is* the entity (a re-keyed internal topic carrying a
      copy of an event per entity): for their records `entities_of` is not asked.
    - `internal_topics`: topics the processor owns (re-keyed copies of its inputs), created at start.
    - `copies`: internal topic -> the topic it copies; a dead letter of a copy gives the copy's
      own coordinates (where its bytes are) and names the original topic in its error and metric.
    - `parts_of(event)`: for an entity whose state is a small header plus many parts (the quarantine
      book: a fleet header and one record per agent), the parts an event needs. The runtime then
      reads only the parts a batch's events name, calls `step(entity, header, events, parts)` with
      their stored JSON (absent = new), and writes the header, the parts in `Step.parts` and the
      outbox in one compare-and-set (the parts hash shares the entity's hash tag).
    - `fetch_wait_ms`: for a processor whose decisions take seconds anyway (healing), how long a fetch
      may wait for a megabyte to gather instead of returning at the first record: up to that much
      latency, for a fraction of the fetches (its own loop turns and the broker's requests).

    Events reach `step` in the ordering rule's order: by event time, then by the source's place in
    `sources`, then by event id (see `merge_key`).
    """

    name: str
    sources: tuple[TopicSpec, ...]
    state_model: type[S]
    entities_of: Callable[[Event], Iterable[str]]
    step: StepFn[S]
    on_applied: Callable[[str, S], None] | None = None
    verifies_commands: bool = False
    keyed_topics: frozenset[str] = frozenset()
    internal_topics: tuple[TopicSpec, ...] = ()
    copies: Mapping[str, str] = field(default_factory=dict)
    parts_of: Callable[[Event], Iterable[str]] | None = None
    fetch_wait_ms: int | None = None

    def apply(self, entity: str, state: S | None, events: Sequence[Event], parts: Mapping[str, bytes]) -> Step[S]:
        """Call `step`, with the entity's parts when it has them (`parts_of`)."""
        if self.parts_of is None:
            return self.step(entity, state, events)
        return self.step(entity, state, events, parts)  # type: ignore[call-arg]

    def source(self, topic: str) -> TopicSpec:
        for spec in self.sources:
            if spec.name == topic:
                return spec
        raise KeyError(f"{self.name} does not consume {topic!r}")
