"""The one way the API writes `immune.commands`: every write endpoint calls `publish_command`, which
signs with the API's operator key (`CHORUS_OPERATOR_KEY`) through the runtime's `issue_command`, the
same path as `chorus command`. The command names the token's subject as its `operator`.
"""

from __future__ import annotations

from typing import Literal

from processors.runtime.commands import issue_command
from processors.runtime.settings import Settings
from schemas import OperatorCommand

Command = Literal["quarantine", "release", "approve", "reject", "set_trust"]


class CommandPublisher:
    """Signs and publishes operator commands; returns once the broker has them."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def can_sign(self) -> bool:
        return bool(self._settings.operator_key)

    def publish_command(
        self,
        *,
        run_id: str,
        agent_id: str,
        command: Command,
        operator: str,
        note: str = "",
        trust: float | None = None,
    ) -> OperatorCommand:
        """Raises KeyFileError (no or bad key) or BrokerUnavailable (not acknowledged in time)."""
        return issue_command(
            self._settings,
            agent_id=agent_id,
            command=command,
            reason=note or f"via the API by {operator}",
            operator=operator,
            trust=trust,
            run_id=run_id,
        )
