"""The recording format, the replay's rewriting of run ids, and `chorus diff`'s comparison (pure parts)."""

from __future__ import annotations

import json
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chorus import recording
from chorus.diff import compare
from chorus.errors import RecordingError
from chorus.recording import Record
from chorus.replay import rewrite_run_id, settings_env
from processors.runtime.runner import merge_key
from schemas import Intention, encode


def _intention(i: int, run: str = "r", at: str = "2026-01-01T00:00:01Z", agent: str = "a1") -> Intention:
    return Intention(
        event_id=f"i-{i}",
        occurred_at=at,
        run_id=run,
        producer="sim",
        agent_id=agent,
        resource="gpu",
        action="acquire",
        amount=1.0,
        priority=5,
        hold_s=1.0,
    )


def _rec(topic: str, event, partition: int = 0, offset: int = 0) -> Record:
    return Record(topic, partition, offset, b"a1", encode(event), 1_700_000_000_000, [("h", b"v")])


def test_a_recording_round_trips_and_reads_with_zstdcat(tmp_path) -> None:
    records = [_rec("agent.intentions", _intention(i), offset=i) for i in range(5)]
    records.append(Record("agent.intentions", 1, 9, None, b"\xff not json", None, []))
    path = tmp_path / "r.jsonl.zst"
    assert recording.write(path, recording.header("r", ["agent.intentions"], 0, capacities={"gpu": 3}), records) == 6
    head, back = recording.read(path)
    assert head["records"] == 6 and head["capacities"] == {"gpu": 3} and head["kind"] == recording.KIND
    back = list(back)
    assert [json.loads(r.value) for r in back[:5]] == [json.loads(r.value) for r in records[:5]]
    assert back[5].value == b"\xff not json" and back[5].key is None
    assert back[0].headers == [("h", b"v")]
    lines = subprocess.run(["zstdcat", str(path)], capture_output=True, check=True).stdout.splitlines()
    assert json.loads(lines[1])["value"]["event_id"] == "i-0"
    assert not list(tmp_path.glob(".r.jsonl.zst.*"))  # no temporary file left behind


def test_a_file_that_is_not_a_recording_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "bad.zst"
    bad.write_bytes(b"plain text")
    with pytest.raises(RecordingError):
        recording.read(bad)


def test_re_publishing_order_keeps_each_partition_exactly_and_interleaves_by_event_time() -> None:
    a = [_rec("t", _intention(i, at=f"2026-01-01T00:00:0{i}Z"), 0, i) for i in (3, 1, 5)]  # not time-sorted
    b = [_rec("t", _intention(10 + i, at=f"2026-01-01T00:00:0{i}Z"), 1, i) for i in (2, 4)]
    order = list(recording.in_time_order(b + a))
    assert [r.offset for r in order if r.partition == 0] == [1, 3, 5]  # offset order within a partition
    assert [r.offset for r in order if r.partition == 1] == [2, 4]


@given(st.text(alphabet="abcdef-0123456789", min_size=1, max_size=12))
def test_only_the_run_id_changes_when_a_replay_re_publishes(new: str) -> None:
    raw = encode(_intention(1, run="rec"))
    out = rewrite_run_id(raw, "rec", new)
    before, after = json.loads(raw), json.loads(out)
    assert after.pop("run_id") == new and before.pop("run_id") == "rec" and before == after


def test_recorded_settings_become_the_replays_environment() -> None:
    env = settings_env({"conflict_window_s": 5.0, "conflict_capacities": {}, "trust_policy": None}, {"gpu": 3.0})
    assert env == {"CHORUS_CONFLICT_WINDOW_S": "5.0", "CHORUS_CONFLICT_CAPACITIES": '{"gpu": 3.0}'}


def test_diff_normalises_run_ids_drops_duplicates_and_names_each_divergence() -> None:
    a = [_rec("immune.trust", _intention(i, run="A")) for i in range(4)]
    b = [_rec("immune.trust", _intention(i, run="B")) for i in range(4)] * 2  # a crash re-emitted everything
    assert compare(a, b).identical
    changed = _intention(3, run="B", agent="a2")
    b2 = [_rec("immune.trust", _intention(i, run="B")) for i in (0, 1, 4)] + [_rec("immune.trust", changed)]
    report = compare(a, b2)
    kinds = {(d.event_id, d.kind) for d in report.divergences}
    assert kinds == {("i-2", "missing"), ("i-4", "extra"), ("i-3", "different")}
    assert next(d for d in report.divergences if d.kind == "different").fields == ["agent_id"]
    counts = report.counts["immune.trust"]
    assert (counts.identical, counts.missing, counts.extra, counts.different) == (2, 1, 1, 1)


def test_the_ordering_rule_sorts_by_event_time_then_source_then_id() -> None:
    early, late = _intention(2, at="2026-01-01T00:00:01Z"), _intention(1, at="2026-01-01T00:00:02Z")
    assert sorted([late, early], key=lambda e: merge_key(e, 0)) == [early, late]
    same_a, same_b = _intention(1), _intention(2)
    assert merge_key(same_b, 0) < merge_key(same_a, 1)  # at equal time the source's rank decides
    assert merge_key(same_a, 0) < merge_key(same_b, 0)  # then the event id


def test_state_is_behind_only_where_a_mark_exists_and_the_commit_is_past_it() -> None:
    from processors.runtime.progress import behind

    committed = {("t", 0): 10, ("t", 1): 10, ("t", 2): 10, ("t", 3): -1001}
    marks = {("t", 0): 9, ("t", 1): 4, ("t", 3): 2}  # t:2 has no mark: never judged
    assert behind(committed, marks) == {("t", 1): 5}
