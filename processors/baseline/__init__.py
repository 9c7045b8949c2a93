"""The baseline processor: per-agent, per-metric learned normal; sustained deviations become Anomalies."""

from .logic import AgentBaseline, BaselineConfig, MetricState, observe, step

__all__ = ["AgentBaseline", "BaselineConfig", "MetricState", "observe", "step"]
