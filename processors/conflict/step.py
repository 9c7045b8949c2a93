"""The conflict processor's per-resource step: buffer claims in event-time windows,
predict each window the watermark closes. Pure (no I/O, no clock); the runtime
stores `ResourceWindows` in Redis behind offset fences."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel

from processors.runtime import Output, Step
from schemas import CONFLICTS, ConflictPrediction, Event, Intention

from .predict import ConflictParams, predict
from .windows import WindowBuffer


class ResourceWindows(BaseModel):
    """One resource's open windows (by window index), those already predicted early, and its watermark."""

    watermark: datetime | None = None
    open: dict[int, list[Intention]] = {}
    predicted: list[int] = []
    late: int = 0


@dataclass(frozen=True)
class ConflictConfig:
    window_s: float = 5.0
    lateness_s: float = 2.0
    default_capacity: float = 100.0
    capacities: Mapping[str, float] = field(default_factory=dict)
    min_risk: float = 0.3
    # A window whose running risk reaches this (with at least early_min_claims claims) is
    # predicted at once instead of at its close: a hoarder is named seconds sooner.
    early_risk: float = 0.8
    early_min_claims: int = 5
    params: ConflictParams = ConflictParams()

    def capacity(self, resource: str) -> float:
        return self.capacities.get(resource, self.default_capacity)


def step(
    resource: str, state: ResourceWindows | None, events: Sequence[Event], cfg: ConflictConfig
) -> Step[ResourceWindows]:
    state = state or ResourceWindows()
    claims = [e for e in events if isinstance(e, Intention)]
    if not claims:
        return Step()
    run_id = claims[0].run_id
    buf = WindowBuffer(cfg.window_s, cfg.lateness_s, watermark=state.watermark)
    for index, held in state.open.items():
        buf.pending[(run_id, resource, index)] = list(held)
    late = state.late
    predicted = set(state.predicted)
    outputs: list[Output] = []
    history: list[str] = []
    for claim in claims:
        if claim.action != "acquire":
            buf.observe(claim.occurred_at)
        elif not buf.add(claim):
            late += 1
        else:
            early = _early(buf, run_id, resource, buf.index_of(claim.occurred_at), predicted, cfg)
            if early is not None:
                history.append(_entry("early", early))
                outputs.append(Output(CONFLICTS, early))
    for window, held in buf.close_due():
        index = buf.index_of(window.start)
        prediction = predict(window, cfg.capacity(resource), held, cfg.params)
        if prediction is None:
            continue
        history.append(_entry("closed", prediction))
        if index in predicted:
            predicted.discard(index)  # already published early: one prediction per window
        elif prediction.risk >= cfg.min_risk:
            outputs.append(Output(CONFLICTS, prediction))
    remaining = {key[2]: held for key, held in buf.pending.items()}
    return Step(
        state=ResourceWindows(watermark=buf.watermark, open=remaining, predicted=sorted(predicted), late=late),
        outputs=outputs,
        history=history,
    )


def _early(
    buf: WindowBuffer, run_id: str, resource: str, index: int, predicted: set[int], cfg: ConflictConfig
) -> ConflictPrediction | None:
    """Predict an open window early when its running risk is already high.

    Checked when the window's claim count reaches min_claims, 2x, 4x... of it: a fixed
    point in the resource's claim order, so replays decide the same whatever the
    batching, and a window of n claims costs O(log n) extra predictions.
    """
    if index in predicted or cfg.early_risk >= 1.0:
        return None
    held = buf.pending[(run_id, resource, index)]
    count, checkpoint = len(held), cfg.early_min_claims
    while checkpoint < count:
        checkpoint *= 2
    if count != checkpoint:
        return None
    prediction = predict(buf.window_at(run_id, resource, index), cfg.capacity(resource), held, cfg.params)
    if prediction is None or prediction.risk < cfg.early_risk:
        return None
    predicted.add(index)
    return prediction


def _entry(when: str, p: ConflictPrediction) -> str:
    return (
        f"{p.window_start.isoformat()} {when} demand={p.demand:.1f}/{p.capacity:.1f} "
        f"risk={p.risk:.2f} mode={p.failure_mode} aggressor={p.most_aggressive}"
    )
