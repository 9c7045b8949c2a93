"""Runtime building blocks that need no services: key layout, dead letters, processor loading."""

from __future__ import annotations

import base64

import pytest
from redis.crc import key_slot

from processors.runtime import UnknownProcessor, load_app
from processors.runtime.deadletter import dead_letter
from processors.runtime.deadletter import run_id_of as _guess_run_id
from processors.runtime.keys import entity_key, fence_field, history_key


def test_an_agents_state_and_history_share_one_cluster_slot_and_runs_are_separate() -> None:
    for agent in ("a1", "agent-42", "x{y}z"):
        assert key_slot(entity_key("trust", "run-1", agent).encode()) == key_slot(
            history_key("trust", "run-1", agent).encode()
        )
    assert entity_key("trust", "run-1", "a1") != entity_key("trust", "run-2", "a1")
    assert entity_key("trust", "run-1", "a1") != entity_key("baseline", "run-1", "a1")
    assert fence_field("agent.vitals", 3) == "f:agent.vitals:3"


def test_a_dead_letter_keeps_the_raw_bytes_and_where_they_came_from_with_a_stable_id() -> None:
    raw = b"\x00\xff{not json"
    args = dict(
        topic="agent.vitals", partition=2, offset=41, value=raw, key=b"a1", error="bad", timestamp=1.7e9, run_id="r1"
    )
    first, again = dead_letter("baseline", **args), dead_letter("baseline", **args)
    assert base64.b64decode(first.raw_value_b64) == raw and base64.b64decode(first.raw_key_b64 or "") == b"a1"
    assert (first.source_topic, first.partition, first.offset, first.error) == ("agent.vitals", 2, 41, "bad")
    assert first.event_id == again.event_id and first.occurred_at.timestamp() == 1.7e9


def test_a_null_value_is_dead_lettered_as_empty_bytes() -> None:
    letter = dead_letter(
        "trust",
        topic="t",
        partition=0,
        offset=0,
        value=None,
        key=None,
        error="null message value",
        timestamp=None,
        run_id="live",
    )
    assert letter.raw_value_b64 == "" and letter.raw_key_b64 is None


def test_the_run_of_a_poison_message_is_taken_from_it_when_it_is_json_with_a_run_id() -> None:
    assert _guess_run_id(b'{"run_id": "r7", "latency_ms": "oops"}') == "r7"
    assert _guess_run_id(b"\xff garbage") is None
    assert _guess_run_id(b'["a list"]') is None


@pytest.mark.parametrize("name", ["nope", "../etc", "Baseline"])
def test_an_unknown_processor_name_is_a_clear_error(name: str) -> None:
    with pytest.raises(UnknownProcessor):
        load_app(name)


def test_chorus_worker_with_an_unknown_processor_exits_with_a_clear_message() -> None:
    from click.testing import CliRunner

    from chorus.cli import main

    result = CliRunner().invoke(main, ["worker", "nosuchprocessor"])
    assert result.exit_code != 0 and "no processor 'nosuchprocessor'" in result.output


def test_chorus_worker_with_an_invalid_trust_policy_exits_with_a_clear_message(tmp_path, monkeypatch) -> None:
    import sys

    from click.testing import CliRunner

    from chorus.cli import main

    monkeypatch.setenv("CHORUS_TRUST_POLICY", '{"recovery_step": -5}')
    monkeypatch.delitem(sys.modules, "processors.trust.app", raising=False)
    result = CliRunner().invoke(main, ["worker", "trust"])
    assert result.exit_code != 0 and "invalid trust policy" in result.output
