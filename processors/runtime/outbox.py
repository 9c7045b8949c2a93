"""The transactional outbox's record format: an entity's pending messages as one Redis value.

The Lua script that compare-and-sets an entity's state also stores the messages that state
change produced (field `o` of the entity's hash), so state and outputs are written together or
not at all. Only after the script succeeded does the runner publish them and then trim the
field. A worker that reads an entity whose outbox is not empty (a crash between write and
publish, or another worker still publishing) publishes it first: the messages keep their
deterministic event ids, so a second publication is a duplicate downstream drops by id.

Format (pure, byte-exact, no JSON escaping of the already-serialised values): per message three
netstrings `<len>:<bytes>,` for topic, key and value; the key netstring starts with `k` (a key)
or is `n` (no key).
"""

from __future__ import annotations

from collections.abc import Sequence

from .kafka import OutMessage


class OutboxCorrupt(ValueError):
    """Stored outbox bytes that this format cannot read (a bug or a foreign writer)."""


def encode(messages: Sequence[OutMessage]) -> bytes:
    """The messages as one value; b'' for none."""
    parts: list[bytes] = []
    for msg in messages:
        key = b"n" if msg.key is None else b"k" + msg.key
        for field in (msg.topic.encode(), key, msg.value):
            parts += [str(len(field)).encode(), b":", field, b","]
    return b"".join(parts)


def decode(raw: bytes) -> list[OutMessage]:
    """The messages `encode` stored, in order; OutboxCorrupt if `raw` is not in the format."""
    fields: list[bytes] = []
    pos = 0
    while pos < len(raw):
        colon = raw.find(b":", pos)
        if colon < 0 or not raw[pos:colon].isdigit():
            raise OutboxCorrupt(f"no length at byte {pos}")
        end = colon + 1 + int(raw[pos:colon])
        if end >= len(raw) or raw[end : end + 1] != b",":
            raise OutboxCorrupt(f"field at byte {pos} overruns the value")
        fields.append(raw[colon + 1 : end])
        pos = end + 1
    if len(fields) % 3:
        raise OutboxCorrupt(f"{len(fields)} fields is not whole messages")
    messages = []
    for i in range(0, len(fields), 3):
        topic, key, value = fields[i : i + 3]
        if key != b"n" and not key.startswith(b"k"):
            raise OutboxCorrupt(f"key field {key[:10]!r} is neither k<key> nor n")
        messages.append(OutMessage(topic.decode(), None if key == b"n" else key[1:], value))
    return messages
