"""Errors of the healing processor."""

from __future__ import annotations

from schemas import ChorusError


class HealingError(ChorusError):
    """Base of the healing processor's errors."""


class HealingPolicyError(HealingError):
    """The healing policy given in the environment is not valid."""
