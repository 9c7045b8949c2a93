"""JSON Schema export: one versioned file per topic, for subscribers in any language."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .topics import REGISTRY, TopicSpec


def json_schema(spec: TopicSpec) -> dict[str, Any]:
    version = spec.model.model_fields["schema_version"].default
    schema = spec.model.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:chorus:topic:{spec.name}:v{version}",
        "title": f"{spec.name} value ({spec.model.__name__} v{version})",
        "description": spec.description,
        "x-kafka-topic": spec.name,
        "x-kafka-key": spec.key_field,
        "x-cleanup-policy": spec.cleanup_policy,
        **{k: v for k, v in schema.items() if k not in ("title", "description")},
    }


def export_schemas(directory: Path) -> list[Path]:
    """Write `<topic>.v<version>.schema.json` for every registered topic."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in REGISTRY:
        schema = json_schema(spec)
        version = spec.model.model_fields["schema_version"].default
        path = directory / f"{spec.name}.v{version}.schema.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written
