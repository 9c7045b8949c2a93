"""Signed operator commands: Ed25519 keys, the canonical bytes a signature covers, signing and the pure check.

An `OperatorCommand` is signed over its canonical bytes: a domain tag, then the JSON of every
field except `signature` (keys sorted, no spaces). `occurred_at` is the signing time and `nonce`
makes each command unique, so a copy of a command is recognisably a replay.

`check_command` is pure (no clock, no I/O): whether a command is signed by a trusted key and
fresh by the broker's timestamp of its message. Remembering nonces is the shell's part
(`processors.runtime.commands.CommandGuard`).

Key files: the private key is PKCS#8 PEM (mode 0600); a public key is one line
`ed25519 <base64 of the 32 raw bytes> [comment]`, and a file of trusted keys holds any number of
such lines. A key's id is the first 16 hex digits of the SHA-256 of its raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from schemas import OperatorCommand, derive_event_id

from .errors import KeyFileError

DOMAIN = b"chorus-operator-command-v1\n"
KEY_TYPE = "ed25519"


def key_id(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


def public_line(public: Ed25519PublicKey, comment: str = "") -> str:
    """The one-line text form of a public key (what `chorus keys generate` writes to NAME.pub)."""
    text = f"{KEY_TYPE} {base64.b64encode(_raw(public)).decode()}"
    return f"{text} {comment}".rstrip()


def generate_key_files(directory: Path, name: str) -> tuple[Path, Path, str]:
    """Write NAME.key (private, 0600) and NAME.pub into `directory`; refuses to overwrite. Returns both paths and the key id."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path} exists; remove it or choose another name")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    public = private.public_key()
    public_path.write_text(public_line(public, name) + "\n")
    return private_path, public_path, key_id(public)


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise KeyFileError(f"cannot read an operator private key from {path}: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} is not an Ed25519 private key")
    return key


def parse_public_keys(text: str, source: str = "<text>") -> dict[str, Ed25519PublicKey]:
    """Trusted keys by id from `ed25519 <base64> [comment]` lines (blank lines and # comments skipped)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        try:
            if fields[0] != KEY_TYPE or len(fields) < 2:
                raise ValueError(f"expected '{KEY_TYPE} <base64 key> [comment]'")
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(fields[1], validate=True))
        except (ValueError, binascii.Error) as exc:
            raise KeyFileError(f"{source}:{number}: not an operator public key: {exc}") from exc
        keys[key_id(public)] = public
    return keys


def load_public_keys(paths: str | None) -> dict[str, Ed25519PublicKey]:
    """The trusted keys of `Settings.operator_public_keys` (comma-separated files); none when unset."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in filter(None, (p.strip() for p in (paths or "").split(","))):
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise KeyFileError(f"cannot read trusted operator keys from {path}: {exc}") from exc
        keys.update(parse_public_keys(text, path))
    return keys


def canonical_bytes(command: OperatorCommand) -> bytes:
    """What the signature covers: every field but the signature, as sorted compact JSON."""
    fields = command.model_dump(mode="json", exclude={"signature"})
    return DOMAIN + json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign_command(
    private: Ed25519PrivateKey,
    *,
    agent_id: str,
    command: str,
    operator: str,
    at: datetime,
    reason: str = "",
    trust: float | None = None,
    run_id: str = "live",
    nonce: str | None = None,
) -> OperatorCommand:
    """A new command, signed. `at` is the signing time; the nonce is random unless given (tests)."""
    nonce = nonce or secrets.token_hex(16)
    unsigned = OperatorCommand(
        event_id=derive_event_id("operator", nonce),
        occurred_at=at,
        run_id=run_id,
        producer="chorus-cli",
        agent_id=agent_id,
        command=command,  # type: ignore[arg-type]
        trust=trust,
        operator=operator,
        note=reason,
        nonce=nonce,
        key_id=key_id(private.public_key()),
    )
    signature = base64.b64encode(private.sign(canonical_bytes(unsigned))).decode()
    return unsigned.model_copy(update={"signature": signature})


@dataclass(frozen=True)
class Verdict:
    """Why a command is refused (`code` None: accepted): a short code for metrics, the reason in words,
    and the key that signed it."""

    code: str | None
    reason: str | None = None
    key_id: str | None = None

    @property
    def accepted(self) -> bool:
        return self.code is None


def check_command(
    command: OperatorCommand,
    trusted: Mapping[str, Ed25519PublicKey],
    broker_time: float | None,
    *,
    max_age_s: float,
    max_ahead_s: float,
) -> Verdict:
    """Signed by a trusted key over exactly these fields, and fresh by the broker's time (pure)."""
    if not (command.signature and command.key_id and command.nonce):
        return Verdict("unsigned", "unsigned command")
    public = trusted.get(command.key_id)
    if public is None:
        return Verdict("untrusted", f"signer key {command.key_id} is not trusted", command.key_id)
    try:
        public.verify(base64.b64decode(command.signature, validate=True), canonical_bytes(command))
    except (InvalidSignature, ValueError, binascii.Error):
        return Verdict("forged", f"bad signature for key {command.key_id} (forged or altered)", command.key_id)
    if broker_time is None:
        return Verdict("no_timestamp", "no broker timestamp: cannot tell whether the command is fresh", command.key_id)
    age = broker_time - command.occurred_at.timestamp()
    if age > max_age_s:
        return Verdict(
            "expired", f"expired: signed {age:.0f}s before the broker received it (max {max_age_s:.0f}s)", command.key_id
        )
    if -age > max_ahead_s:
        return Verdict(
            "ahead", f"signed {-age:.0f}s after the broker received it (max {max_ahead_s:.0f}s ahead)", command.key_id
        )
    return Verdict(None, None, command.key_id)


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
