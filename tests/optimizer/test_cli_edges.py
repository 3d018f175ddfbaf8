"""`packloop plan solve` at the edges a new user meets: broken files, typos in field names,
`--no-baselines`, the time limit, progress lines and the units of its summary."""

from __future__ import annotations

import copy
import dataclasses
import re

import pytest
import yaml
from click.testing import CliRunner

from optimizer import PlanResult, ScenarioError, load_scenario, solve, write_report
from services.cli.plan import plan
from tests.optimizer.helpers import TINY, tiny_raw


@pytest.mark.parametrize(("name", "text", "place"), [
    ("bad.json", '{"name": "x",\n  "horizon_days": 2,,\n}\n', "bad.json:2:21:"),
    ("bad.yaml", "name: x\nhubs: [a, b\nfoo: 1\n", "bad.yaml:3:4:"),
    ("bad.yml", "name: x\n  bad: indent\n", "bad.yml:2:6:"),
])
def test_a_syntax_error_is_one_line_with_its_place(tmp_path, name, text, place):
    """A file that is not JSON/YAML exits 2 with one line naming file, line and column
    (no traceback of the parser)."""
    path = tmp_path / name
    path.write_text(text)
    r = CliRunner().invoke(plan, ["solve", str(path)])
    assert r.exit_code == 2, r.output
    assert isinstance(r.exception, SystemExit)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    assert place in lines[0] and "syntax error" in lines[0]
    assert "Traceback" not in r.output


def test_an_unknown_field_says_which_field_was_meant():
    """A typo in a field name at any depth names the closest field of the model there."""
    raw = tiny_raw()
    raw["villages"][1]["hub_idd"] = raw["villages"][1].pop("hub_id")
    raw["horizon_dayz"] = 3
    raw["prices"]["carbon_cny_per_kg"] = 1.0
    raw["vehicle_types"][0]["count_by_hubs"] = {}
    with pytest.raises(ScenarioError) as e:
        load_scenario(raw)
    problems = dict(e.value.problems)
    assert "did you mean 'hub_id'?" in problems["villages[1].hub_idd"]
    assert "did you mean 'horizon_days'?" in problems["horizon_dayz"]
    assert "did you mean 'carbon_cny_per_kg_co2e'?" in problems["prices.carbon_cny_per_kg"]
    assert "did you mean 'count_by_hub'?" in problems["vehicle_types[0].count_by_hubs"]


def test_an_unknown_field_far_from_any_lists_the_known_ones():
    """Nothing close: the message lists the fields that are allowed there instead."""
    raw = tiny_raw()
    raw["depot"]["zzzz"] = 1
    with pytest.raises(ScenarioError) as e:
        load_scenario(raw)
    message = dict(e.value.problems)["depot.zzzz"]
    assert "unknown field 'zzzz'" in message and "lat" in message and "lon" in message


def test_an_invalid_scenario_exits_2_through_the_cli(tmp_path):
    """A typo in a YAML scenario: exit 2, the path and the suggestion, no traceback."""
    raw = tiny_raw()
    raw["horizon_dayz"] = raw.pop("horizon_days")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(raw))
    r = CliRunner().invoke(plan, ["solve", str(path)])
    assert r.exit_code == 2, r.output
    assert "horizon_dayz" in r.output and "did you mean 'horizon_days'?" in r.output
    assert "Traceback" not in r.output


@pytest.fixture(scope="module")
def tiny_result() -> PlanResult:
    return solve(load_scenario(TINY), time_limit_s=30)


def _table(html: str, first_header: str) -> list[list[str]]:
    """The cells of the report table whose first header is `first_header`, row by row."""
    start = html.index(f"<table><tr><th>{first_header}</th>")
    body = html[start:html.index("</table>", start)]
    rows = re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>",
                                                                     r, flags=re.S)]
            for r in rows]


def test_report_rows_carry_units_and_boxes_are_whole(tiny_result, tmp_path):
    """Every KPI row names its unit; containers show as whole boxes in the report (bought
    and expansions rounded up) while plan.json keeps the model's fractions."""
    result = copy.deepcopy(tiny_result)
    assert result.plan is not None
    pool = result.plan["containers"][0]
    pool["days"][0]["bought"] = 2.7
    pool["expansion"] = 4.2
    trip = next(t for t in result.plan["trips"] if t["kind"] == "milk_run")
    trip["loads"]["empties"] = {"insulated_box": 50.1}
    result = dataclasses.replace(result, plan=result.plan)
    html = write_report(result, load_scenario(TINY), tmp_path).read_text()
    header, *kpi_rows = _table(html, "KPI")
    assert header[:2] == ["KPI", "unit"]
    units = {row[0]: row[1] for row in kpi_rows}
    assert units["total cost"] == "CNY" and units["distance driven"] == "km"
    assert units["CO2e total"] == "kg CO2e" and units["single-use packaging"] == "kg"
    assert all(row[1] for row in kpi_rows), kpi_rows
    assert not any("transport km" in row[0] for row in kpi_rows)
    _, *pools = _table(html, "hub")
    for row in pools:
        assert all(re.fullmatch(r"[\d,]+", cell) for cell in row[2:]), row
    bought = sum(d["bought"] for d in pool["days"])
    assert pools[0][3] == "5" and pools[0][6] == f"{-int(-bought // 1):,d}"
    trips_header, *trip_rows = _table(html, "day")
    empties = [row[trips_header.index("empties, boxes")] for row in trip_rows]
    assert "50" in empties and all("." not in e for e in empties)
    saved = (tmp_path / "plan.json").read_text()
    assert '"bought": 2.7' in saved and '"expansion": 4.2' in saved


def test_map_has_a_legend_and_names_on_hover(tiny_result, tmp_path):
    """The route map says what its markers and colours are, and every village, hub and the
    county seat has its id (and name) in an SVG title a browser shows on hover."""
    html = write_report(tiny_result, load_scenario(TINY), tmp_path).read_text()
    svg = html[html.index("<h2>Route map</h2>"):]
    for label in ("village", "township hub", "county seat", "milk run: ambient_van"):
        assert f"<!-- {label} -->" in svg, label
    titles = re.findall(r"<title>([^<]*)</title>", svg)
    for v in tiny_raw()["villages"]:
        assert f"village {v['village_id']}" in titles
    assert "hub H01 (Township hub 1)" in titles
    assert any(t.startswith("county seat COUNTY") for t in titles)


def test_plan_solve_shows_single_use_in_kg(tmp_path):
    """`plan solve` prints single-use packaging in kg (as `plan status` does), with units
    on every row and whole trips."""
    r = CliRunner().invoke(plan, ["solve", str(TINY), "--time-limit", "30"])
    assert r.exit_code == 0, r.output
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in r.stdout.splitlines() if line.startswith("│")}
    assert {"cost, CNY", "CO2e, kg", "distance, km", "trips", "single-use packaging, kg"} \
        <= set(rows)
    assert rows["single-use packaging, kg"][2] == "32.4"  # 32,440 g in the uncoordinated plan
    assert all("." not in n for n in rows["trips"])
