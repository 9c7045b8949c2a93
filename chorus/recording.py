"""The recording format: one run's records as zstd-compressed JSON Lines (`zstdcat FILE | jq`).

Line 1 is the header (`"kind": "chorus-recording"`): format version, Chorus version, the
run id, which topics, the event-time range, the settings that affect decisions, the
scenario's resource capacities and the record count. Every further line is one Kafka
record: topic, partition, offset, key, timestamp (ms), headers and value (the event's JSON
object; `value_b64` instead when the bytes are not JSON).

Files are written atomically: to a temporary file beside the target, renamed at the end.
"""

from __future__ import annotations

import base64
import heapq
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import zstandard

from schemas import (
    ADMITTED,
    ANOMALIES,
    BASELINES,
    COMMANDS,
    CONFLICTS,
    INTENTIONS,
    QUARANTINE,
    RECOVERY,
    TRUST,
    TRUTH,
    VITALS,
)

from .errors import RecordingError

KIND = "chorus-recording"
FORMAT = 1
# What a replay re-publishes: what the agents, the operators and the simulator wrote, and healing's verdicts.
# Healing is not replayed (it reads quarantine decisions and quarantine reads its cures: a cycle no stage
# order settles), so its verified cures are inputs of a replay, as an operator's release is.
INPUT_TOPICS = (INTENTIONS.name, VITALS.name, COMMANDS.name, TRUTH.name, RECOVERY.name)
# What the processors decided: what `chorus diff` compares.
DECISION_TOPICS = (ANOMALIES.name, BASELINES.name, CONFLICTS.name, TRUST.name, QUARANTINE.name, ADMITTED.name)
# Settings that change decisions: a replay runs with the recorded values.
DECISION_SETTINGS = ("conflict_", "quarantine_", "baseline_", "trust_policy")


@dataclass
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        line: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": _text(self.key),
            "timestamp": self.timestamp_ms,
            "headers": [[k, _text(v)] for k, v in self.headers],
        }
        try:
            line["value"] = json.loads(self.value) if self.value is not None else None
        except ValueError:
            line["value_b64"] = base64.b64encode(self.value or b"").decode()
        return line

    @classmethod
    def from_json(cls, line: dict[str, Any]) -> Record:
        if "value_b64" in line:
            value: bytes | None = base64.b64decode(line["value_b64"])
        elif line.get("value") is None:
            value = None
        else:
            value = json.dumps(line["value"], separators=(",", ":"), ensure_ascii=False).encode()
        return cls(
            topic=line["topic"],
            partition=int(line["partition"]),
            offset=int(line["offset"]),
            key=_bytes(line.get("key")),
            value=value,
            timestamp_ms=line.get("timestamp"),
            headers=[(k, _bytes(v) or b"") for k, v in line.get("headers") or []],
        )

    def event(self) -> dict[str, Any] | None:
        """The value as a JSON object, None when it is not one."""
        try:
            value = json.loads(self.value or b"")
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


def _text(raw: bytes | None) -> str | None:
    if raw is None:
        return None
    try:
        return raw.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(raw).decode()


def _bytes(text: str | None) -> bytes | None:
    if text is None:
        return None
    if text.startswith("base64:"):
        return base64.b64decode(text[7:])
    return text.encode()


def chorus_version() -> str:
    try:
        return metadata.version("chorus")
    except metadata.PackageNotFoundError:
        return "unknown"


def header(run_id: str, topics: Iterable[str], count: int, **extra: Any) -> dict[str, Any]:
    return {
        "kind": KIND,
        "format": FORMAT,
        "chorus_version": chorus_version(),
        "run_id": run_id,
        "topics": list(topics),
        "records": count,
        **extra,
    }


def write(path: Path, head: dict[str, Any], records: Iterable[Record]) -> int:
    """Write header + records atomically; returns the record count (also set in the header)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Records go to an uncompressed spool first: the header, which comes first, needs their count.
    with tempfile.TemporaryFile("w+b") as spool:
        count = 0
        for rec in records:
            spool.write(json.dumps(rec.to_json(), separators=(",", ":"), ensure_ascii=False).encode() + b"\n")
            count += 1
        spool.seek(0)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as raw, zstandard.ZstdCompressor(level=6).stream_writer(raw) as out:
                out.write(json.dumps({**head, "records": count}, separators=(",", ":")).encode() + b"\n")
                while chunk := spool.read(1 << 20):
                    out.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return count


def read(path: Path) -> tuple[dict[str, Any], Iterator[Record]]:
    """The header and a lazy iterator over the records (a RecordingError if it is not a recording)."""
    lines = _lines(Path(path))
    try:
        head = json.loads(next(lines))
    except (StopIteration, ValueError, zstandard.ZstdError) as exc:
        raise RecordingError(f"{path} is not a Chorus recording: {exc}") from exc
    if not isinstance(head, dict) or head.get("kind") != KIND:
        raise RecordingError(f"{path} is not a Chorus recording (no {KIND} header)")
    if head.get("format") != FORMAT:
        raise RecordingError(f"{path} has recording format {head.get('format')}, this Chorus reads {FORMAT}")

    def records() -> Iterator[Record]:
        for n, line in enumerate(lines, start=2):
            try:
                yield Record.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                raise RecordingError(f"{path}: line {n} is not a record: {exc}") from exc

    return head, records()


def _lines(path: Path) -> Iterator[bytes]:
    try:
        raw = path.open("rb")
    except OSError as exc:
        raise RecordingError(f"cannot open {path}: {exc.strerror}") from exc
    with raw, zstandard.ZstdDecompressor().stream_reader(raw) as stream:
        buffered = b""
        while chunk := stream.read(1 << 20):
            buffered += chunk
            *complete, buffered = buffered.split(b"\n")
            yield from (line for line in complete if line)
        if buffered.strip():
            yield buffered


def occurred_at(rec: Record) -> datetime | None:
    event = rec.event()
    if event is None or not isinstance(event.get("occurred_at"), str):
        return None
    try:
        return datetime.fromisoformat(event["occurred_at"].replace("Z", "+00:00"))
    except ValueError:
        return None


def in_time_order(records: Iterable[Record]) -> Iterator[Record]:
    """Every partition's records in their recorded order, partitions interleaved by event time: the
    order to re-publish in (each partition keeps its exact contents, pacing follows event time)."""
    streams: dict[tuple[str, int], list[tuple[float, int, Record]]] = {}
    for rec in records:
        at = occurred_at(rec)
        streams.setdefault((rec.topic, rec.partition), []).append(
            (at.timestamp() if at else float("-inf"), rec.offset, rec)
        )
    ordered = [sorted(s, key=lambda item: item[1]) for s in streams.values()]  # offset order within a partition
    for _, _, rec in heapq.merge(*ordered, key=lambda item: item[0]):
        yield rec
