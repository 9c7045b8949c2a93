"""The local broker's cluster id is one Kafka's storage tool accepts."""

from __future__ import annotations

import base64
import uuid

from chorus import stack


def test_a_cluster_id_never_starts_with_a_dash_the_storage_tool_would_read_as_an_option(monkeypatch) -> None:
    # The first UUID encodes to an id starting with '-' (0xf8 -> '-' in URL-safe base64); the next does not.
    dashed, plain = uuid.UUID(bytes=b"\xf8" + bytes(15)), uuid.UUID(int=1)
    assert base64.urlsafe_b64encode(dashed.bytes).decode().startswith("-")
    drawn = iter([dashed, plain])
    monkeypatch.setattr(stack.uuid, "uuid4", lambda: next(drawn))
    cluster_id = stack._cluster_id()
    assert cluster_id == base64.urlsafe_b64encode(plain.bytes).decode()[:22]
    assert len(cluster_id) == 22 and not cluster_id.startswith("-")
