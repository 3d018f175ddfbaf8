"""Scenario format: published schema, validation errors with paths, YAML/JSON loading."""

from __future__ import annotations

import json

import jsonschema
import pytest
import yaml

from optimizer import ScenarioError, load_scenario, scenario_json_schema
from tests.optimizer.helpers import ROOT, TINY, tiny_raw

SCHEMA = ROOT / "optimizer" / "schemas" / "scenario.schema.json"
EXAMPLES = sorted((ROOT / "examples" / "scenarios").glob("*.yaml")) + sorted(
    (ROOT / "examples" / "scenarios").glob("*.json"))


def test_published_schema_is_current():
    """The schema file in the repo is the one generated from the models (no drift)."""
    assert json.loads(SCHEMA.read_text()) == json.loads(json.dumps(scenario_json_schema()))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_validate_against_published_schema(path):
    """Every shipped example passes the published JSON Schema and the reference checks."""
    raw = yaml.safe_load(path.read_text()) if path.suffix == ".yaml" else json.loads(
        path.read_text())
    jsonschema.validate(raw, json.loads(SCHEMA.read_text()))
    load_scenario(path)


def test_schema_error_names_path():
    """A wrong type deep inside the document is reported with its path."""
    raw = tiny_raw()
    raw["villages"][2]["lat"] = "north"
    with pytest.raises(ScenarioError) as e:
        load_scenario(raw)
    assert any(p == "villages[2].lat" for p, _ in e.value.problems)
    assert "villages[2].lat" in str(e.value)


def test_reference_errors_name_path_and_problem():
    """Unknown ids and days outside the horizon are reported, all at once, with paths."""
    raw = tiny_raw()
    raw["villages"][1]["hub_id"] = "H99"
    raw["demand"][3]["day"] = 5
    raw["demand"][0]["class_id"] = "frozen"
    with pytest.raises(ScenarioError) as e:
        load_scenario(raw)
    problems = dict(e.value.problems)
    assert "unknown hub 'H99'" in problems["villages[1].hub_id"]
    assert "outside horizon" in problems["demand[3].day"]
    assert "unknown class 'frozen'" in problems["demand[0].class_id"]


def test_missing_field_and_extra_field():
    """Missing required fields and unknown keys (typos) are both errors with paths."""
    raw = tiny_raw()
    del raw["horizon_days"]
    raw["vehicle_types"][0]["fixed_cost"] = 3
    with pytest.raises(ScenarioError) as e:
        load_scenario(raw)
    paths = [p for p, _ in e.value.problems]
    assert "horizon_days" in paths
    assert "vehicle_types[0].fixed_cost" in paths


def test_json_and_yaml_load_the_same(tmp_path):
    """The same scenario as JSON and as YAML loads to equal objects."""
    raw = tiny_raw()
    p = tmp_path / "s.json"
    p.write_text(json.dumps(raw))
    assert load_scenario(p) == load_scenario(TINY)
