"""The trust processor: a TrustPolicy turns behaviour into 0-100 scores, every change a TrustChange."""

from .errors import TrustPolicyError
from .logic import TrustState, apply, entities_of, history_entry, level, step
from .policy import TrustPolicy, load_policy

__all__ = [
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
