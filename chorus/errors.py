"""Errors of the operator's command line. Each message says what to do about it."""

from __future__ import annotations

from schemas import ChorusError


class StackError(ChorusError):
    """The local stack cannot start, stop or be reached."""


class PipelineError(ChorusError):
    """A processor of the demo or evaluation pipeline failed to start or died."""


class ApiError(ChorusError):
    """The operator API could not start or serve."""


class BenchmarkError(ChorusError):
    """An external benchmark (NAB) cannot be found, set up or run."""


class RecordingError(ChorusError):
    """A recording cannot be written or read (not a recording, wrong format, unreadable)."""


class ReplayError(ChorusError):
    """A replay could not finish (a processor died, an input was never processed)."""
