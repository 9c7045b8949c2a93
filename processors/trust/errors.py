"""Errors of the trust processor."""

from __future__ import annotations

from processors.runtime import RuntimeFailure


class TrustPolicyError(RuntimeFailure):
    """The configured TrustPolicy file or override is missing, unreadable or invalid."""
