"""Errors of the conflict processor."""

from __future__ import annotations

from schemas import ChorusError


class ConflictError(ChorusError):
    """Base of the conflict processor's errors."""


class GeminiUnavailable(ConflictError):
    """An analysis could not be had from Gemini; `reason` is the metric label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        super().__init__(f"gemini analysis failed ({reason}){': ' + detail if detail else ''}")
