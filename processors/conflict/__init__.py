"""The conflict processor: per-resource event-time windows -> ConflictPrediction, plus
optional Gemini enrichment of high-risk predictions.

`predict` and `game` hold the pure fast path, `windows` the event-time windowing,
`gemini` the enrichment (off the hot path); `app` is the Faust shell
(`chorus worker conflict`).
"""

from .breaker import CircuitBreaker
from .errors import ConflictError, GeminiUnavailable
from .game import HawkDove, hawk_dove
from .gemini import ConflictAnalysis, Enrichments, GeminiAnalyst, enriched, situation
from .predict import ConflictParams, Window, predict
from .topics import CLAIMS, INTERNAL_TOPICS
from .windows import WindowBuffer

__all__ = [
    "CLAIMS",
    "INTERNAL_TOPICS",
    "CircuitBreaker",
    "ConflictAnalysis",
    "ConflictError",
    "ConflictParams",
    "Enrichments",
    "GeminiAnalyst",
    "GeminiUnavailable",
    "HawkDove",
    "Window",
    "WindowBuffer",
    "enriched",
    "hawk_dove",
    "predict",
    "situation",
]
