"""Hypothesis strategies and checks for the fuzz tests: arbitrary JSON; valid hub events,
scenarios and VRPLIB instances with one part changed (so the part at fault is known); and
what every refusal must carry."""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from optimizer import ScenarioError
from optimizer.vrplib import CvrpInstance, parse_vrp
from tests.services.helpers import TINY, shipment

#: examples per fuzz test (PACKLOOP_FUZZ_EXAMPLES raises it for a long run)
EXAMPLES = int(os.environ.get("PACKLOOP_FUZZ_EXAMPLES", "200"))

fuzz_settings = settings(max_examples=EXAMPLES, deadline=None, database=None,
                         suppress_health_check=[HealthCheck.too_slow,
                                                HealthCheck.function_scoped_fixture])

json_scalars = (st.none() | st.booleans() | st.integers()
                | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=20), children, max_size=5),
    max_leaves=20,
)

_COMMON = {k: v for k, v in shipment().items()
           if k in ("schema_version", "event_id", "occurred_at", "hub_id", "village_id")}

#: one valid event of each type a hub may send
VALID_EVENTS: tuple[dict[str, Any], ...] = (
    shipment(),
    {**_COMMON, "type": "packaging_return", "container_type": "insulated_box", "count": 1,
     "condition": "ok"},
    {**_COMMON, "type": "recycling_collected", "collected_grams": {"cardboard": 1200}},
    {**_COMMON, "type": "waste_adjustment", "generated_grams": {"plastic_film": -40},
     "reason": "double count", "corrects_event_id": "e-1"},
    {**_COMMON, "type": "pickup_cancelled", "pickup_id": f"P-{_COMMON['village_id']}-1",
     "reason": "no road"},
)


@st.composite
def mutated_events(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """(an event with one field replaced by arbitrary JSON or removed, that field)."""
    event = dict(draw(st.sampled_from(VALID_EVENTS)))
    key = draw(st.sampled_from(sorted(event)))
    if draw(st.booleans()):
        del event[key]
    else:
        event[key] = draw(json_values)
    return event, key


@st.composite
def changed_scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """The tiny example scenario with one value, at any depth, replaced by arbitrary JSON
    or removed."""
    scenario = copy.deepcopy(TINY)
    parent: Any = scenario
    key: Any = draw(st.sampled_from(sorted(scenario)))
    while isinstance(parent[key], dict | list) and parent[key] and draw(st.booleans()):
        node = parent[key]
        key = (draw(st.sampled_from(sorted(node))) if isinstance(node, dict)
               else draw(st.integers(0, len(node) - 1)))
        parent = node
    if isinstance(parent, dict) and draw(st.booleans()):
        del parent[key]
    else:
        parent[key] = draw(json_values)
    return scenario


#: a small CVRP instance in TSPLIB's format (4 customers, capacity 10)
VRP = """NAME : fuzz-n5-k2
COMMENT : made for the fuzz tests
TYPE : CVRP
DIMENSION : 5
EDGE_WEIGHT_TYPE : EUC_2D
CAPACITY : 10
NODE_COORD_SECTION
1 0 0
2 3 4
3 -3 4
4 6 8
5 -6 -8
DEMAND_SECTION
1 0
2 4
3 5
4 3
5 6
DEPOT_SECTION
1
-1
EOF
"""


@st.composite
def changed_instances(draw: st.DrawFn) -> str:
    """VRP with one line removed, or one of its words replaced."""
    lines = VRP.splitlines()
    k = draw(st.integers(0, len(lines) - 1))
    if draw(st.booleans()):
        del lines[k]
    else:
        words = lines[k].split()
        w = draw(st.integers(0, max(0, len(words) - 1)))
        replacement = draw(st.text(max_size=8) | st.integers().map(str)
                           | st.floats(allow_nan=True).map(str))
        words[w:w + 1] = [replacement]
        lines[k] = " ".join(words)
    return "\n".join(lines) + "\n"


def parse_vrp_text(text: str) -> CvrpInstance:
    """The VRPLIB reader on ``text`` (it reads files)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "instance.vrp"
        path.write_text(text, "utf-8")
        return parse_vrp(path)


def problems_of(load: Callable[[], object]) -> list[tuple[str, str]]:
    """The problems ``load()`` reports as a ScenarioError, each with a path and a message;
    [] when it loads. Any other exception fails the test."""
    try:
        load()
    except ScenarioError as exc:
        assert exc.problems, exc
        for where, message in exc.problems:
            assert where and message, exc.problems
        return exc.problems
    return []
