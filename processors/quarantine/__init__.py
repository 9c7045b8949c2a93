"""The quarantine processor: quarantine and release decisions, and the admission gate.

`book` holds the pure decision logic (QuarantineBook), `policy` its knobs; `app` is
the Faust shell (`chorus worker quarantine`).
"""

from .book import AgentState, QuarantineBook, Verdict
from .errors import QuarantineError
from .policy import QuarantinePolicy
from .topics import INTERNAL_TOPICS, SEQUENCED

__all__ = [
    "INTERNAL_TOPICS",
    "SEQUENCED",
    "AgentState",
    "QuarantineBook",
    "QuarantineError",
    "QuarantinePolicy",
    "Verdict",
]
