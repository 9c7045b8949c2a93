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


class PermanentFailure(RuntimeFailure):
    """Retrying cannot fix it (e.g. the broker forbids our writes): the retry helper re-raises it and
    the worker stops loudly instead of retrying forever or skipping silently."""


class ProduceRefused(PermanentFailure):
    """The broker (or the client before it) refused some messages for a permanent reason.

    `refused` maps the index of each refused message in the batch sent to (kind, error), where
    kind is "poison" (this message can never be written: too large, invalid record, bad
    timestamp) or "forbidden" (no message can be written: authorization, authentication, a
    fatal producer). The rule that applies it is `processors.runtime.delivery.deliver`.
    """

    def __init__(self, refused: dict[int, tuple[str, str]]) -> None:
        self.refused = refused
        kinds = sorted({kind for kind, _ in refused.values()})
        first = next(iter(refused.values()), ("", ""))[1]
        super().__init__(f"{len(refused)} message(s) refused ({', '.join(kinds)}): {first}")

    @property
    def forbidden(self) -> bool:
        return any(kind == "forbidden" for kind, _ in self.refused.values())


class KeyFileError(RuntimeFailure):
    """An operator key file is missing, unreadable or not an Ed25519 key in the expected format."""


class SecurityConfigError(RuntimeFailure):
    """The Kafka security settings are incomplete or contradictory (e.g. SASL without a user)."""
