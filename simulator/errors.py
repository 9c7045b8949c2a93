"""Errors of the simulator. Each message says what is wrong and what to do about it."""

from __future__ import annotations

from schemas import ChorusError


class SimulatorError(ChorusError):
    """Base of the simulator's errors."""


class ScenarioError(SimulatorError):
    """A scenario that cannot be found or is not valid; the message names the file and the field."""


class BrokerUnreachable(SimulatorError):
    """The Kafka broker did not answer, or a topic the simulator needs is missing."""
