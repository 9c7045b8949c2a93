"""Errors of the HTTP ingest; each becomes a 4xx answer that says what is wrong."""

from __future__ import annotations

from schemas import ChorusError


class IngestError(ChorusError):
    """Base of the ingest's errors."""


class InvalidBody(IngestError):
    """The body is not an event or a list of events of the endpoint's type; `problems` name the fields."""

    def __init__(self, problems: list[dict[str, object]]) -> None:
        self.problems = problems
        fields = ", ".join(f"{p['field']}: {p['msg']}" for p in problems[:5])
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"invalid body: {fields}{more}")


class NoTokens(IngestError):
    """The ingest has no per-agent tokens configured, so no agent could write."""
