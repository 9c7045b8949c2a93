"""Operator keys for tests: a real Ed25519 key pair on disk and signed commands."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from processors.runtime.signing import generate_key_files, load_private_key, sign_command
from schemas import OperatorCommand


@dataclass(frozen=True)
class OperatorKey:
    private: Ed25519PrivateKey
    private_path: Path
    public_path: Path
    key_id: str

    def sign(self, agent_id: str, command: str, *, run_id: str, at: datetime | None = None, **fields) -> OperatorCommand:
        return sign_command(
            self.private,
            agent_id=agent_id,
            command=command,
            operator=fields.pop("operator", "alice"),
            at=at or datetime.now(UTC),
            run_id=run_id,
            **fields,
        )


def make_key(directory: Path, name: str = "operator") -> OperatorKey:
    private_path, public_path, key_id = generate_key_files(directory, name)
    return OperatorKey(load_private_key(private_path), private_path, public_path, key_id)
