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


@pytest.mark.slow
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


def _problems(raw) -> dict[str, str]:
    with pytest.raises(ScenarioError) as e:
        load_scenario(raw)
    return dict(e.value.problems)


@pytest.mark.parametrize("where", ["depot", "village"])
def test_a_node_id_used_twice_is_an_error(where):
    """Depot, hubs and villages share one distance oracle: a depot named like a hub gave
    trunk legs of 0 km, a village named like its hub moved the hub, both without a word."""
    raw = tiny_raw()
    hub = raw["hubs"][0]["hub_id"]
    if where == "depot":
        raw["depot"]["id"] = hub
        assert "already depot.id" in _problems(raw)["hubs[0].hub_id"]
    else:
        old = raw["villages"][0]["village_id"]
        raw["villages"][0]["village_id"] = hub
        for g in raw["demand"]:
            if g["village_id"] == old:
                g["village_id"] = hub
        assert "already hubs[0].hub_id" in _problems(raw)["villages[0].village_id"]


@pytest.mark.parametrize("listing, field", [
    ("classes", "class_id"), ("vehicle_types", "vehicle_type"),
    ("packaging.single_use", "option_id"), ("packaging.reusable", "container_type")])
def test_a_duplicate_id_in_a_list_is_an_error(listing, field):
    """A second entry with the same id silently replaced the first (a second 'ambient'
    class with 99 L a parcel changed the plan's cost)."""
    raw = tiny_raw()
    holder = raw
    *parents, last = listing.split(".")
    for p in parents:
        holder = holder[p]
    entries = holder[last]
    entries.append(dict(entries[0]))
    problems = _problems(raw)
    path = f"{listing}[{len(entries) - 1}].{field}"
    assert "duplicate" in problems[path] and repr(entries[0][field]) in problems[path]


def test_a_duplicate_pool_and_an_option_named_like_a_container_are_errors():
    raw = tiny_raw()
    raw["container_pools"].append(dict(raw["container_pools"][0], count=1000))
    raw["packaging"]["single_use"][0]["option_id"] = (
        raw["packaging"]["reusable"][0]["container_type"])
    problems = _problems(raw)
    assert "duplicate" in problems[f"container_pools[{len(raw['container_pools']) - 1}]"]
    assert "duplicate" in problems["packaging.reusable[0].container_type"]


def test_a_second_waste_row_for_a_village_and_a_county_fleet_by_hub_are_errors():
    """A second outstanding-waste row for a village silently replaced the first (30 kg
    planned as 5 kg), and `count_by_hub` on a county vehicle type was silently ignored
    (the trunk kept running with 0 trucks given for the hub)."""
    raw = tiny_raw()
    vid = raw["outstanding_waste"][0]["village_id"]
    raw["outstanding_waste"].append({"village_id": vid, "grams": 5000})
    trunk = next(vt for vt in raw["vehicle_types"] if vt["base"] == "county")
    trunk["count_by_hub"] = {raw["hubs"][0]["hub_id"]: 0}
    problems = _problems(raw)
    row = f"outstanding_waste[{len(raw['outstanding_waste']) - 1}].village_id"
    assert "duplicate" in problems[row] and repr(vid) in problems[row]
    k = raw["vehicle_types"].index(trunk)
    assert "based at the county" in problems[f"vehicle_types[{k}].count_by_hub"]


def test_capacities_counts_and_parcels_must_be_sensible():
    """Negative or zero compartments and negative counts by hub were taken as 'no such
    vehicle'; an infinite parcel count reached the model (OverflowError); fractional
    parcels with whole_parcels packing made the plan 'infeasible' by 0.5 of a parcel."""
    raw = tiny_raw()
    van = raw["vehicle_types"][0]
    comp = next(iter(van["compartments_litres"]))
    van["compartments_litres"][comp] = 0
    van["count_by_hub"] = {raw["hubs"][0]["hub_id"]: -2}
    raw["demand"][0]["parcels"] = float("inf")
    raw["demand"][1]["parcels"] = 40.5
    raw["packaging"]["whole_parcels"] = True
    problems = _problems(raw)
    assert "greater than 0" in problems[f"vehicle_types[0].compartments_litres.{comp}"]
    hub = raw["hubs"][0]["hub_id"]
    assert "greater than or equal to 0" in problems[f"vehicle_types[0].count_by_hub.{hub}"]
    assert "finite" in problems["demand[0].parcels"]
    raw["demand"][0]["parcels"] = 3
    raw["vehicle_types"][0] = dict(van, compartments_litres={comp: 100}, count_by_hub={})
    assert "not a whole number" in _problems(raw)["demand[1].parcels"]


def test_numbers_beyond_any_county_are_refused_by_name():
    """1e308 parcels passed validation and overflowed in the capacity covers (a traceback);
    a van of 1e15 litres made HiGHS fail, reported as 'infeasible'; 10,000 days overran
    the time limit building the model."""
    raw = tiny_raw()
    raw["demand"][0]["parcels"] = 1e308
    comp = next(iter(raw["vehicle_types"][0]["compartments_litres"]))
    raw["vehicle_types"][0]["compartments_litres"][comp] = 1e15
    raw["outstanding_waste"][0]["grams"] = 2e9
    raw["horizon_days"] = 10_000
    problems = _problems(raw)
    assert "at most 1e+09" in problems["demand[0].parcels"]
    assert "less than or equal to 1000000000" in problems[
        f"vehicle_types[0].compartments_litres.{comp}"]
    assert "at most 1e+09" in problems["outstanding_waste[0].grams"]
    assert "less than or equal to 366" in problems["horizon_days"]
    raw = tiny_raw()
    raw["demand"][0]["parcels"] = 1e9  # the largest allowed still loads
    load_scenario(raw)


def test_a_volume_on_a_down_group_is_refused_by_its_path():
    """`volume_litres` on a down group was silently ignored (the schema says 'up' only:
    a delivery's volume is parcels x the class's litres); an up group keeps its volume."""
    raw = tiny_raw()
    down = next(k for k, g in enumerate(raw["demand"]) if g["direction"] == "down")
    raw["demand"][down]["volume_litres"] = 300
    problems = _problems(raw)
    assert list(problems) == [f"demand[{down}].volume_litres"]
    assert "'up' only" in problems[f"demand[{down}].volume_litres"]
    raw["demand"][down]["volume_litres"] = None  # stated as absent: the same as leaving it out
    s = load_scenario(raw)
    assert [g.volume_litres for g in s.demand if g.direction == "up"] == [200, 100]


def test_single_visit_needs_a_cvrp_shaped_scenario():
    """`routing.single_visit` is solved as a CVRP (one hub, one day, one class, one van
    type); on the tiny county it crashed reading village ids as CVRPLIB numbers."""
    raw = tiny_raw()
    raw["routing"] = {**(raw.get("routing") or {}), "single_visit": True}
    problems = _problems(raw)
    assert "needs exactly one" in problems["classes"]
    assert "needs exactly one" in problems["horizon_days"]


def test_a_file_that_is_not_utf8_or_not_json_says_so(tmp_path):
    """Bytes that are not UTF-8 gave a UnicodeDecodeError traceback; YAML in a file whose
    name does not end in .yaml gave a bare JSON error."""
    bad = tmp_path / "s.yaml"
    bad.write_bytes(b"name: x\n\xff\xfe garbage\n")
    with pytest.raises(ScenarioError) as e:
        load_scenario(bad)
    assert "line 2, column 1" in str(e.value.problems) and "not UTF-8" in str(e.value)
    txt = tmp_path / "s.txt"
    txt.write_text(TINY.read_text())
    with pytest.raises(ScenarioError) as e:
        load_scenario(txt)
    assert ".yaml or .yml" in str(e.value)


def test_a_yaml_key_given_twice_is_an_error_with_its_place(tmp_path):
    """PyYAML keeps the last of two equal keys without a word; a scenario is a contract."""
    p = tmp_path / "s.yaml"
    p.write_text(TINY.read_text() + "horizon_days: 9\n")
    with pytest.raises(ScenarioError) as e:
        load_scenario(p)
    assert "'horizon_days' given twice" in str(e.value)
    assert load_scenario(TINY).horizon_days != 9  # the file itself loads


def test_true_is_not_a_number():
    """YAML's `count: true` was read as one vehicle, `parcels: true` as one parcel."""
    raw = tiny_raw()
    raw["vehicle_types"][0]["count"] = True
    raw["demand"][0]["parcels"] = True
    problems = _problems(raw)
    assert "not true or false" in problems["vehicle_types[0].count"]
    assert "not true or false" in problems["demand[0].parcels"]
    raw = tiny_raw()
    raw["vehicle_types"][0]["refrigerated"] = True  # a bool field still takes a bool
    load_scenario(raw)


def test_yaml_merge_keys_still_load_and_json_keys_twice_are_errors(tmp_path):
    """The duplicate-key check must not refuse YAML's `<<: *anchor` (a shared vehicle's
    settings, overridden by explicit keys); a JSON object with a key twice is refused as a
    YAML mapping is."""
    raw = tiny_raw()
    text = yaml.safe_dump(raw, sort_keys=False)
    van = raw["vehicle_types"][0]
    shared = "x-van: &van\n" + "".join(
        f"  {k}: {json.dumps(v)}\n" for k, v in van.items() if k != "vehicle_type")
    body = text.replace(f"- vehicle_type: {van['vehicle_type']}\n",
                        f"- <<: *van\n  vehicle_type: {van['vehicle_type']}\n", 1)
    p = tmp_path / "s.yaml"
    p.write_text(shared + body)
    from optimizer.scenario import parse_document
    doc = parse_document(p)
    doc.pop("x-van")
    assert load_scenario(doc) == load_scenario(raw)
    j = tmp_path / "s.json"
    j.write_text('{"name": "a", "name": "b"}')
    with pytest.raises(ScenarioError) as e:
        load_scenario(j)
    assert "'name' given twice" in str(e.value)


def test_true_is_not_a_number_inside_maps_either():
    """`count_by_hub: {H01: true}` was one vehicle, `compartments_litres: {ambient: true}`
    one litre: the field-level check does not see a dict's values."""
    raw = tiny_raw()
    hub = raw["hubs"][0]["hub_id"]
    comp = next(iter(raw["vehicle_types"][0]["compartments_litres"]))
    raw["vehicle_types"][0]["count_by_hub"] = {hub: True}
    raw["vehicle_types"][0]["compartments_litres"][comp] = True
    problems = _problems(raw)
    assert f"vehicle_types[0].count_by_hub.{hub}" in problems
    assert f"vehicle_types[0].compartments_litres.{comp}" in problems
