"""Errors of the quarantine processor."""

from __future__ import annotations

from schemas import ChorusError


class QuarantineError(ChorusError):
    """Base of the quarantine processor's errors."""
