"""What all four processors share: settings, app factory, Redis state store, metrics, dead letters.

Writing a processor with it (see processors/baseline for a full one)::

    # processors/example/logic.py -- pure: no I/O, no clock
    class AgentState(pydantic.BaseModel):  # stored as its JSON; a dataclass is stored as MessagePack (statecodec)
        seen: int = 0

    def step(agent_id: str, state: AgentState | None, events: Sequence[Event]) -> Step[AgentState]:
        state = state or AgentState()
        outputs = [Output(ANOMALIES, Anomaly(event_id=derive_event_id("example", e.event_id), ...)) for e in ...]
        return Step(state=AgentState(seen=state.seen + len(events)), outputs=outputs, history=["..."])

    # processors/example/app.py -- the shell; `faust -A processors.example.app worker --without-web` runs it
    PROCESSOR = Processor(name="example", sources=(VITALS,), state_model=AgentState,
                          entities_of=lambda e: (e.agent_id,), step=step)
    app = build_app(PROCESSOR, Settings())

`chorus worker example` imports `processors.example.app` and runs its `app`.

What the runtime does around `step`, per batch (`take_events`): decode each message with
its topic's model (failures -> immune.deadletter), keep the events of `Settings.run_id`
("*" = every run), group them by entity (`entities_of` may name several, e.g. the agents
of a conflict), read every entity's state, version and offset fences in one Redis
pipeline, call `step` with only the events newer than the entity's fence for their
(topic, partition) and not among its recent event ids (duplicates re-emitted upstream),
write state + fences + history + the outputs (the entity's outbox) with one Lua script per
entity (compare-and-set on a version; a lost race publishes nothing and is recomputed), then
publish the winners' outboxes, await delivery and trim them (an outbox left behind by a crash
is published by the next worker that reads the entity). An entity made of a header and many
parts (`Processor.parts_of`, the quarantine book) reads and writes only the parts its batch's
events name, in the same compare-and-set. Redelivered
events change nothing. Transient Redis/Kafka errors are retried with backoff forever; a
produce error retrying cannot fix dead-letters the message (poison) or stops the worker
(forbidden); an event dated beyond the ingress rule on event time is dead-lettered; when
`step` raises, the events are stepped one by one and only those that raise are dead-lettered. `Processor.on_applied(entity,
state)` is an optional shell hook (metrics) called after a state is stored.
The hot path's consumer is `Settings.consumer_engine`: "confluent" (default; a librdkafka
batch consumer in a Faust task, offsets committed by hand after the state write) or
"faust" (`stream.take_events`). Extra topics with stateless batch handlers (`relays`, the
conflict processor's repartition) run in the same loop and group.
Outputs must be deterministic: ids from `derive_event_id(name, *cause_ids)` and
`occurred_at` from the causes, never the wall clock.
"""

# Imported on first use (PEP 562): Faust (~1 s of CPU) only for what needs it (a worker), not for the
# operator's commands and the API; and `processors.runtime.settings` alone pulls in neither Faust nor
# Redis, because the agent SDK (chorus.agent) reads the one settings model and may depend on nothing
# but Kafka and the schemas.
_EXPORTS = {
    "ALL_RUNS": "runner",
    "BatchRunner": "runner",
    "BrokerUnavailable": "errors",
    "ConfluentSender": "kafka",
    "EntityRef": "store",
    "FaustSender": "kafka",
    "OutMessage": "kafka",
    "Output": "processor",
    "Processor": "processor",
    "ProcessorApp": "app",
    "Record": "runner",
    "Relay": "app",
    "RuntimeFailure": "errors",
    "Sender": "kafka",
    "ServicesUnavailable": "errors",
    "Settings": "settings",
    "Snapshot": "store",
    "StaleFence": "errors",
    "StateStore": "store",
    "StateUnavailable": "errors",
    "Step": "processor",
    "TopicError": "errors",
    "UnknownProcessor": "errors",
    "app_id": "app",
    "build_app": "app",
    "configure_logging": "logs",
    "ensure_topics": "topics",
    "entity_key": "keys",
    "fence_field": "keys",
    "history_key": "keys",
    "load_app": "worker",
    "run_worker": "worker",
    "start_group_at_end": "kafka",
}


__all__ = [
    "ALL_RUNS",
    "BatchRunner",
    "BrokerUnavailable",
    "ConfluentSender",
    "EntityRef",
    "FaustSender",
    "OutMessage",
    "Output",
    "Processor",
    "ProcessorApp",
    "Record",
    "Relay",
    "RuntimeFailure",
    "Sender",
    "ServicesUnavailable",
    "Settings",
    "Snapshot",
    "StaleFence",
    "TopicError",
    "StateUnavailable",
    "StateStore",
    "Step",
    "UnknownProcessor",
    "app_id",
    "build_app",
    "configure_logging",
    "ensure_topics",
    "entity_key",
    "fence_field",
    "history_key",
    "load_app",
    "run_worker",
    "start_group_at_end",
]


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
