"""Errors of the processor runtime."""

from __future__ import annotations

from schemas import ChorusError


class RuntimeFailure(ChorusError):
    """Base of the runtime's own errors."""


class ServicesUnavailable(RuntimeFailure):
    """Kafka or Redis did not answer within the configured start-up timeout."""


class StaleFence(RuntimeFailure):
    """A state write carried an offset at or below the stored fence: a bug in the shell, never expected."""


class UnknownProcessor(RuntimeFailure):
    """`chorus worker NAME` named a processor module that does not exist."""


class StateUnavailable(RuntimeFailure):
    """Redis failed to answer a read or a write (connection, timeout, loading...): retried, never skipped."""


class BrokerUnavailable(RuntimeFailure):
    """Kafka did not confirm a produce: retried, never skipped."""


class TopicError(RuntimeFailure):
    """A topic could not be created, has too few partitions, or did not become usable in time."""
