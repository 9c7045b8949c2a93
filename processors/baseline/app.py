"""The baseline processor's Faust shell: `chorus worker baseline` or `faust -A processors.baseline.app worker`."""

from __future__ import annotations

from collections.abc import Sequence

from processors.runtime import Processor, Settings, Step, build_app
from schemas import QUARANTINE, VITALS, Event

from .logic import PRODUCER, AgentBaseline, BaselineConfig, step


def config_from(settings: Settings) -> BaselineConfig:
    return BaselineConfig(
        warmup=settings.baseline_warmup_samples,
        window=settings.baseline_window,
        fast_alpha=settings.baseline_fast_alpha,
        tail_u=settings.baseline_tail_u,
        tail_alpha=settings.baseline_tail_alpha,
        clip=settings.baseline_clip,
        surprise=settings.baseline_surprise,
        spike=settings.baseline_spike_surprise,
        sustain=settings.baseline_sustain_samples,
        gap=settings.baseline_gap_samples,
        clear=settings.baseline_clear_samples,
        severity_surprise=settings.baseline_severity_surprise,
        relearn=settings.baseline_relearn_samples,
        min_stddev=settings.baseline_min_stddev,
        min_rel_stddev=settings.baseline_min_rel_stddev,
        snapshot_every=settings.baseline_snapshot_every,
        suppress=settings.baseline_suppress_samples,
        seen_before=settings.baseline_seen_before,
        bursts=settings.baseline_bursts,
        season_bucket_s=settings.baseline_season_bucket_s,
        season_days=settings.baseline_season_days,
        season_window=settings.baseline_season_window,
        season_sustain=settings.baseline_season_sustain,
        season_normal=settings.baseline_season_normal,
    )


def make_processor(settings: Settings) -> Processor[AgentBaseline]:
    cfg = config_from(settings)

    def baseline_step(agent_id: str, state: AgentBaseline | None, events: Sequence[Event]) -> Step[AgentBaseline]:
        return step(agent_id, state, events, cfg)

    return Processor(
        name=PRODUCER,
        sources=(VITALS, QUARANTINE),  # quarantine: what is held is never learned
        state_model=AgentBaseline,
        entities_of=lambda event: (event.agent_id,),  # type: ignore[attr-defined]
        step=baseline_step,
    )


settings = Settings()
app = build_app(make_processor(settings), settings)
