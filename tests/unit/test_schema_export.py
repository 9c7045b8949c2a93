"""`chorus schemas export DIR`: one JSON Schema per topic, valid for the events we emit."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from chorus.cli import main
from schemas import REGISTRY


def test_export_writes_one_versioned_schema_per_topic(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["schemas", "export", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert files == sorted(f"{spec.name}.v1.schema.json" for spec in REGISTRY)


def test_each_schema_names_its_topic_key_and_forbids_unknown_fields(tmp_path: Path) -> None:
    CliRunner().invoke(main, ["schemas", "export", str(tmp_path)])
    for spec in REGISTRY:
        schema = json.loads((tmp_path / f"{spec.name}.v1.schema.json").read_text())
        assert schema["x-kafka-topic"] == spec.name
        assert schema["x-kafka-key"] == spec.key_field
        assert schema["additionalProperties"] is False
        assert {"event_id", "occurred_at", "run_id", "causation_ids", "producer"} <= set(schema["required"]) | set(
            schema["properties"]
        )
        assert schema["properties"]["event_type"]["const"] == spec.model.model_fields["event_type"].default
