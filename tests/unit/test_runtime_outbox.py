"""The outbox record format: what the state write stores is exactly what is published later."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.runtime import outbox
from processors.runtime.kafka import OutMessage

messages = st.lists(
    st.builds(
        OutMessage,
        topic=st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=30),
        key=st.none() | st.binary(max_size=40),
        value=st.binary(max_size=200),
    ),
    max_size=20,
)


@given(messages)
def test_decoding_an_encoded_outbox_gives_back_the_same_messages_byte_for_byte(msgs: list[OutMessage]) -> None:
    assert outbox.decode(outbox.encode(msgs)) == msgs


def test_no_messages_is_the_empty_value_the_lua_script_reads_as_no_outbox() -> None:
    assert outbox.encode([]) == b""
    assert outbox.decode(b"") == []


def test_a_key_that_is_empty_is_not_confused_with_no_key() -> None:
    msgs = [OutMessage("t", b"", b"{}"), OutMessage("t", None, b"{}")]
    assert outbox.decode(outbox.encode(msgs)) == msgs


@pytest.mark.parametrize("raw", [b"x", b"3:abc", b"3:abc,1:n,", b"3:abc,1:x,2:{},", b"9:abc,", b"1:t,1:n,2:{}"])
def test_bytes_not_in_the_format_are_refused_clearly(raw: bytes) -> None:
    with pytest.raises(outbox.OutboxCorrupt):
        outbox.decode(raw)


@given(messages, st.integers(min_value=1, max_value=50))
def test_a_truncated_outbox_is_refused_never_misread(msgs: list[OutMessage], cut: int) -> None:
    raw = outbox.encode(msgs)
    if cut >= len(raw):
        return
    try:
        decoded = outbox.decode(raw[: len(raw) - cut])
    except outbox.OutboxCorrupt:
        return
    assert decoded == msgs[: len(decoded)]  # a cut exactly between messages reads as a prefix
