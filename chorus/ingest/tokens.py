"""Per-agent bearer tokens: each token writes (and reads the verdicts of) exactly one agent id.

From `CHORUS_INGEST_TOKENS` (JSON {"agent-id": "token"}) and the JSON/YAML file
`CHORUS_INGEST_TOKENS_FILE`. Tokens are compared by SHA-256 digest, so a lookup costs the
same whichever prefix of a token a caller guesses right.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from processors.runtime.settings import Settings

from .errors import NoTokens


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Tokens:
    def __init__(self, by_agent: dict[str, str]) -> None:
        if not by_agent:
            raise NoTokens(
                'no ingest tokens: set CHORUS_INGEST_TOKENS=\'{"agent-id": "token"}\' or CHORUS_INGEST_TOKENS_FILE'
            )
        self._agents = {_digest(token): agent for agent, token in by_agent.items()}
        if len(self._agents) != len(by_agent):
            raise NoTokens("two agents share one ingest token: each agent needs its own")
        self.agent_ids = frozenset(by_agent)

    def agent_for(self, token: str | None) -> str | None:
        return self._agents.get(_digest(token)) if token else None

    @classmethod
    def from_settings(cls, settings: Settings) -> Tokens:
        by_agent = {agent: secret.get_secret_value() for agent, secret in settings.ingest_tokens.items()}
        if settings.ingest_tokens_file:
            text = Path(settings.ingest_tokens_file).read_text()
            loaded = json.loads(text) if settings.ingest_tokens_file.endswith(".json") else yaml.safe_load(text)
            if not isinstance(loaded, dict):
                raise NoTokens(f"{settings.ingest_tokens_file} must map agent ids to tokens")
            by_agent |= {str(agent): str(token) for agent, token in loaded.items()}
        return cls(by_agent)
