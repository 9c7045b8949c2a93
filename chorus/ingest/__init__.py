"""The HTTP ingest (`chorus ingest`): intentions and vitals over HTTP, the gate's verdicts back."""

from .app import create_app
from .errors import IngestError, InvalidBody, NoTokens
from .tokens import Tokens

__all__ = ["IngestError", "InvalidBody", "NoTokens", "Tokens", "create_app"]
