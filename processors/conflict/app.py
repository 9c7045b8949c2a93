"""The conflict processor's Faust shell: `chorus worker conflict` (or `faust -A processors.conflict.app worker`).

Three handlers in one app (one consumer group, `chorus-conflict`, one consume loop of the runtime):
- repartition (a relay): agent.intentions -> the internal topic keyed by resource;
- windows (the runtime's batch pipeline): per-resource windows in Redis -> immune.conflicts;
- enrich (a relay, only with GEMINI_API_KEY): high-risk fast predictions -> Gemini -> a new prediction.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from functools import partial

import faust

from processors.runtime import (
    ALL_RUNS,
    OutMessage,
    Processor,
    Record,
    Relay,
    Sender,
    Settings,
    Step,
    build_app,
    ensure_topics,
)
from processors.runtime.app import event_time_rule
from processors.runtime.deadletter import dead_letter, run_id_of
from processors.runtime.delivery import deliver
from processors.runtime.errors import PermanentFailure
from processors.runtime.ingress import EventTimeGuard
from schemas import CONFLICTS, DEADLETTER, INTENTIONS, ConflictPrediction, DecodeError, Event, Intention, decode, encode

from . import metrics as m
from .gemini import Enrichments, GeminiAnalyst
from .predict import PRODUCER, ConflictParams
from .step import ConflictConfig, ResourceWindows, step
from .topics import CLAIMS, INTERNAL_TOPICS

log = logging.getLogger(__name__)


def config_from(settings: Settings) -> ConflictConfig:
    return ConflictConfig(
        window_s=settings.conflict_window_s,
        lateness_s=settings.conflict_lateness_s,
        default_capacity=settings.conflict_default_capacity,
        capacities=dict(settings.conflict_capacities),
        min_risk=settings.conflict_min_risk,
        early_risk=settings.conflict_early_risk,
        early_min_claims=settings.conflict_early_min_claims,
        params=ConflictParams(cost_scale=settings.conflict_cost_scale, aggressor_min=settings.conflict_aggressor_min),
    )


def make_processor(settings: Settings) -> Processor[ResourceWindows]:
    cfg = config_from(settings)

    def timed_step(resource: str, state: ResourceWindows | None, events: Sequence[Event]) -> Step[ResourceWindows]:
        started = time.perf_counter()
        result = step(resource, state, events, cfg)
        if result.history:  # one entry per closed window
            per_window = (time.perf_counter() - started) / len(result.history)
            for _ in result.history:
                m.WINDOW_SECONDS.observe(per_window)
        if result.state is not None and result.state.late > (state.late if state else 0):
            m.LATE_CLAIMS.inc(result.state.late - (state.late if state else 0))
        return result

    return Processor(
        name=PRODUCER,
        sources=(CLAIMS,),
        state_model=ResourceWindows,
        entities_of=lambda event: (event.resource,),  # type: ignore[attr-defined]
        step=timed_step,
    )


def build(settings: Settings) -> faust.App:
    guard = EventTimeGuard(PRODUCER, event_time_rule(settings))
    relays: dict[str, Relay] = {
        INTENTIONS.name: partial(_repartition, settings.run_id, guard, lambda: app.should_stop)
    }
    analyst = GeminiAnalyst.from_settings(settings)
    if analyst is not None:
        enrichments = Enrichments(
            analyst,
            min_risk=settings.gemini_min_risk,
            max_concurrency=settings.gemini_max_concurrency,
            max_pending=settings.gemini_max_pending,
        )
        relays[CONFLICTS.name] = partial(_enrich, settings.run_id, enrichments)
    app = build_app(make_processor(settings), settings, relays=relays)

    # The internal topic must exist before the consumer subscribes (the broker may not
    # auto-create, and would not give it 8 partitions): create it first thing at start-up.
    # The runtime's factory has no start hook, so this wraps the app's own first start.
    first_start = app.on_first_start

    async def create_internal_topic_then_start() -> None:
        await _ensure_topic_retrying(settings, lambda: app.should_stop)
        await first_start()

    app.on_first_start = create_internal_topic_then_start  # type: ignore[method-assign]
    return app


async def _repartition(
    run_id: str, guard: EventTimeGuard, stopping: Callable[[], bool], batch: Sequence[Record], send: Sender
) -> None:
    """agent.intentions -> the internal claims topic keyed by resource (the relay of the intentions topic).

    This is where the conflict processor decodes agent intentions, so the ingress rule on event
    time is applied here: a claim dated too far ahead never reaches (or moves) a window's watermark.
    """
    messages = [msg for record in batch if (msg := _claim_message(record, run_id, guard)) is not None]
    # A batch mixes the agents' partitions; forwarding it in event-time order keeps the
    # per-resource watermark from racing ahead of claims that are merely on a slower partition.
    messages.sort(key=lambda m: m.timestamp or 0.0)
    await _send_retrying(send, messages, stopping)


async def _enrich(run_id: str, enrichments: Enrichments, batch: Sequence[Record], send: Sender) -> None:
    """High-risk fast predictions -> Gemini -> a new prediction (in the background, shed when overloaded)."""

    async def publish(prediction: ConflictPrediction) -> None:
        await send(
            [
                OutMessage(
                    CONFLICTS.name, CONFLICTS.key_of(prediction), encode(prediction), prediction.occurred_at.timestamp()
                )
            ]
        )

    for record in batch:
        try:
            prediction = decode(ConflictPrediction, record.value, topic=CONFLICTS.name)
        except DecodeError:
            continue  # not ours to judge: trust and quarantine dead-letter it
        if run_id in (ALL_RUNS, prediction.run_id):
            enrichments.submit(prediction, publish)


def _claim_message(msg: Record, run_id: str, guard: EventTimeGuard) -> OutMessage | None:
    try:
        intention = decode(Intention, msg.value, topic=msg.topic)
    except DecodeError as exc:
        owner = run_id_of(msg.value)
        if owner is not None and run_id not in (ALL_RUNS, owner):
            return None  # another run's poison: its own worker dead-letters it
        return _dead(msg, exc.reason, owner or (run_id if run_id != ALL_RUNS else "live"))
    if run_id not in (ALL_RUNS, intention.run_id):
        return None
    if (late := guard.check(intention, msg.timestamp)) is not None:
        return _dead(msg, late, intention.run_id)
    # Forward the bytes as they came (the claim is the agent's event, not ours), stamped with its event time.
    return OutMessage(CLAIMS.name, CLAIMS.key_of(intention), msg.value, intention.occurred_at.timestamp())


def _dead(msg: Record, error: str, run_id: str) -> OutMessage:
    letter = dead_letter(
        PRODUCER,
        topic=msg.topic,
        partition=msg.partition,
        offset=msg.offset,
        value=msg.value,
        key=msg.key,
        error=error,
        timestamp=msg.timestamp,
        run_id=run_id,
    )
    return OutMessage(DEADLETTER.name, DEADLETTER.key_of(letter), encode(letter))


async def _ensure_topic_retrying(settings: Settings, stopping: Callable[[], bool]) -> None:
    delay = 0.5
    deadline = time.monotonic() + settings.startup_timeout_s if settings.startup_timeout_s else None
    while True:
        try:
            outcome = await asyncio.to_thread(
                ensure_topics, settings.kafka_bootstrap_servers, INTERNAL_TOPICS, timeout_s=10.0
            )
            log.info("internal topic ready", extra={"topic": CLAIMS.name, "outcome": outcome[CLAIMS.name]})
            return
        except Exception as exc:
            if stopping() or (deadline is not None and time.monotonic() > deadline):
                raise
            log.warning("internal topic not created yet; retrying", extra={"topic": CLAIMS.name, "error": repr(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


async def _send_retrying(send: Sender, messages: list[OutMessage], stopping) -> None:
    delay = 0.05
    while messages:
        try:
            await deliver(send, messages, PRODUCER)  # the runtime's rule for refused messages
            return
        except (asyncio.CancelledError, PermanentFailure):
            raise
        except Exception as exc:
            log.warning("repartition send failed; retrying", extra={"error": repr(exc), "retry_in_s": delay})
            if stopping():
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


settings = Settings()
app = build(settings)
