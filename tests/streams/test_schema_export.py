"""The published JSON Schemas stay in sync with the Python definitions and agree with them."""

from __future__ import annotations

import json

import jsonschema
import orjson
import pytest

from streams.events import EventError, parse_hub_event
from streams.schema_export import SCHEMA_DIR, all_schemas, render
from tests.streams.helpers import COLLECTED, RETURN, SHIPMENT


def test_schema_files_match_definitions() -> None:
    """Regenerate with `python -m streams.schema_export` if this fails."""
    for filename, schema in all_schemas().items():
        path = SCHEMA_DIR / filename
        assert path.exists(), f"{path} missing"
        assert path.read_text(encoding="utf-8") == render(schema), f"{filename} is stale"


@pytest.mark.parametrize("example", [SHIPMENT, RETURN, COLLECTED])
def test_schemas_accept_contract_examples(example: dict) -> None:
    """A hub validating with the published schema accepts what packloop accepts."""
    schema = json.loads((SCHEMA_DIR / f"{example['type']}.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(example)


@pytest.mark.parametrize(
    "mutation",
    [
        {"weight_grams": -1},
        {"weight_grams": 2300.5},
        {"direction": "sideways"},
        {"hub_id": ""},
    ],
)
def test_schemas_refuse_what_packloop_refuses(mutation: dict) -> None:
    """Both validators reject the same bad shipment."""
    schema = json.loads((SCHEMA_DIR / "shipment.schema.json").read_text())
    bad = {**SHIPMENT, **mutation}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(bad)
    with pytest.raises(EventError):
        parse_hub_event(orjson.dumps(bad))


def test_network_schema_accepts_sample_county() -> None:
    """The bundled sample county is valid against the published network schema."""
    from streams.network import SAMPLE_NETWORK_PATH

    schema = json.loads((SCHEMA_DIR / "network.schema.json").read_text())
    jsonschema.Draft202012Validator(schema).validate(json.loads(SAMPLE_NETWORK_PATH.read_text()))
