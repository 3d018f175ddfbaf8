"""Publish the event contract as JSON Schema files, generated from ``streams.events``.

Hub systems are written in many languages; the files under ``streams/schemas/``
are what they validate against. ``python -m streams.schema_export`` rewrites them
and a test fails when they drift from the Python definitions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from streams.events import EVENT_TYPES
from streams.network import NetworkFile

SCHEMA_DIR = Path(__file__).parent / "schemas"
_BASE_URI = "https://packloop.dev/schemas/"

_KEYING_NOTE = (
    "Produce to the hub-events topic keyed by village_id (UTF-8) with Kafka's default "
    "murmur2 partitioner, so each village's events stay in order on one partition. "
    "librdkafka-based clients must set partitioner=murmur2_random. Quantities are integer "
    "grams; occurred_at is RFC 3339 with an offset."
)


def event_schema(name: str) -> dict[str, Any]:
    model = EVENT_TYPES[name]
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{_BASE_URI}{name}.schema.json"
    schema["title"] = name
    schema["description"] = _KEYING_NOTE
    # The type tag is required on the wire even though Python fills it in.
    required = set(schema.get("required", []))
    required.add("type")
    schema["required"] = sorted(required)
    return schema


def network_schema() -> dict[str, Any]:
    schema = NetworkFile.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"{_BASE_URI}network.schema.json"
    schema["title"] = "network reference data"
    return schema


def all_schemas() -> dict[str, dict[str, Any]]:
    schemas = {f"{name}.schema.json": event_schema(name) for name in EVENT_TYPES}
    schemas["network.schema.json"] = network_schema()
    return schemas


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_all(directory: Path = SCHEMA_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, schema in all_schemas().items():
        path = directory / filename
        path.write_text(render(schema), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_all():
        print(path)
