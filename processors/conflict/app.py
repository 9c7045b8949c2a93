"""The conflict processor's Faust shell: `chorus worker conflict` (or `faust -A processors.conflict.app worker`).

Three handlers in one app (one consumer group, `chorus-conflict`, one consume loop of the runtime):
- repartition (a relay): agent.intentions -> the internal topic keyed by resource;
- windows (the runtime's batch pipeline): per-resource windows in Redis -> immune.conflicts;
- enrich (a relay, only with GEMINI_API_KEY): high-risk fast predictions -> Gemini -> a new prediction.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
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
)
from processors.runtime.app import event_time_rule
from processors.runtime.ingress import EventTimeGuard
from processors.runtime.rekey import rekey
from schemas import CONFLICTS, INTENTIONS, ConflictPrediction, DecodeError, Event, decode, encode

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
        internal_topics=INTERNAL_TOPICS,
        copies={CLAIMS.name: INTENTIONS.name},
    )


def build(settings: Settings) -> faust.App:
    # Claims meet per resource: intentions are copied onto the internal topic keyed by resource. The
    # copies of several intention partitions interleave there by arrival; the ordering rule (event
    # time, source rank, event id) puts them back in one order for every run of the same input.
    # This is where the conflict processor decodes agent intentions, so the ingress rule on event
    # time is applied in the relay: a claim dated too far ahead never reaches a window's watermark.
    relays: dict[str, Relay] = {
        INTENTIONS.name: rekey(
            INTENTIONS,
            CLAIMS,
            lambda event: (event.resource,),  # type: ignore[attr-defined]
            processor=PRODUCER,
            run_id=settings.run_id,
            stopping=lambda: app.should_stop,
            guard=EventTimeGuard(PRODUCER, event_time_rule(settings)),
        )
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
    return app


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


settings = Settings()
app = build(settings)
