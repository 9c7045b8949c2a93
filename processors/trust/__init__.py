"""The trust processor: a TrustPolicy turns behaviour into 0-100 scores, every change a TrustChange."""

from .errors import TrustPolicyError
from .logic import TrustState, apply, entities_of, history_entry, level, step
from .policy import TrustPolicy, load_policy
from .topics import CONFLICTS_BY_AGENT, INTERNAL_TOPICS

__all__ = [
    "CONFLICTS_BY_AGENT",
    "INTERNAL_TOPICS",
    "TrustPolicy",
    "TrustPolicyError",
    "TrustState",
    "apply",
    "entities_of",
    "history_entry",
    "level",
    "load_policy",
    "step",
]
