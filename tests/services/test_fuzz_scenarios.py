"""Fuzzing the planner's inputs: the scenario loader (arbitrary JSON and YAML documents,
and a valid scenario with one value changed) and the VRPLIB reader (any text, and a valid
instance with one line removed or one word replaced). Whatever arrives: a ScenarioError listing
each problem with its path (what `packloop plan solve` and the planner service report),
never another exception."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from optimizer import load_scenario, scenario_from_vrp
from tests.services.fuzz import (
    VRP,
    changed_instances,
    changed_scenarios,
    fuzz_settings,
    json_values,
    parse_vrp_text,
    problems_of,
)
from tests.services.helpers import TINY


def test_the_valid_inputs_load() -> None:
    """The fuzz tests start from inputs that load."""
    assert problems_of(lambda: load_scenario(TINY)) == []
    assert parse_vrp_text(VRP).demand == (0, 4, 5, 3, 6)


@fuzz_settings
@given(value=json_values, as_yaml=st.booleans())
def test_the_loader_gives_a_reason_for_any_document(tmp_path_factory, value: Any,
                                                    as_yaml: bool) -> None:
    path = tmp_path_factory.mktemp("sc") / ("scenario.yaml" if as_yaml else "scenario.json")
    path.write_text(yaml.safe_dump(value) if as_yaml else json.dumps(value), "utf-8")
    assert problems_of(lambda: load_scenario(path))


@fuzz_settings
@given(scenario=changed_scenarios())
def test_the_loader_names_the_path_it_refuses(scenario: dict[str, Any]) -> None:
    """Every problem has a path into the scenario (a top-level key, or $ for the whole)."""
    for where, _ in problems_of(lambda: load_scenario(scenario)):
        assert where.split(".")[0].split("[")[0] in set(TINY) | {"$"}, where


#: where a VRPLIB problem may be: a header field or section of the format, or the file
VRP_PLACES = {"$", "header", "TYPE", "DIMENSION", "CAPACITY", "EDGE_WEIGHT_TYPE",
              "EDGE_WEIGHT_FORMAT", "NODE_COORD_SECTION", "EDGE_WEIGHT_SECTION",
              "DEMAND_SECTION", "DEPOT_SECTION", "VEHICLES", "NAME"}


@fuzz_settings
@given(text=st.text(max_size=400))
def test_the_vrplib_reader_gives_a_reason_for_any_text(text: str) -> None:
    """Any text: a ScenarioError saying where, never another exception (`plan solve
    --vrplib` prints it and exits 2)."""
    for where, _ in problems_of(lambda: scenario_from_vrp(parse_vrp_text(text))):
        assert where in VRP_PLACES, where


@fuzz_settings
@given(text=changed_instances())
def test_the_vrplib_reader_names_the_part_it_refuses(text: str) -> None:
    """A valid instance with one line removed or one word replaced reads, or is refused
    with the header field or section at fault named."""
    for where, _ in problems_of(lambda: scenario_from_vrp(parse_vrp_text(text))):
        assert where in VRP_PLACES, where
