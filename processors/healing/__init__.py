"""The healing processor: diagnosis, healing actions, verified recovery and immune memory.

`diagnosis` names the condition, `cases` follows one agent's case to a verified cure,
`memory` keeps what worked per condition and chooses actions, `policy` holds the knobs;
`app` is the Faust shell (`chorus worker healing`).
"""

from .errors import HealingError, HealingPolicyError
from .policy import HealingPolicy, load_policy

__all__ = ["HealingError", "HealingPolicy", "HealingPolicyError", "load_policy"]
