"""Infeasibility in words (`optimizer.diagnose.describe_row`): every row family the model
can report is named in words a planner can act on, never as `family[index]`."""

from __future__ import annotations

import re

import pyomo.environ as pyo
import pytest
import yaml
from click.testing import CliRunner

from optimizer import build_model, load_scenario
from optimizer.diagnose import FLEET_ROWS, ROW_WORDS, describe_row, describe_rows
from services.cli.plan import plan
from tests.optimizer.helpers import ROOT, one_van_raw, routes_for, tiny_raw

#: a row as the solver names it: family[index]
RAW_ROW = re.compile(r"\b([a-z_]+)\[[^\]]*\]")


def _raw_rows(text: str) -> list[str]:
    """The raw row names in `text` (a scenario path such as `demand[3]` is not one)."""
    return [m.group(0) for m in RAW_ROW.finditer(text) if m.group(1) != "demand"]


def _families_in_source() -> set[str]:
    """Every constraint family the model builders, the baselines and the frontier add."""
    families = set()
    for path in sorted((ROOT / "optimizer" / "model").glob("*.py")):
        families |= set(re.findall(r"\bm\.(\w+) = pyo\.Constraint\(", path.read_text()))
    baselines = (ROOT / "optimizer" / "baselines.py").read_text()
    families |= {"baseline_" + n for n in re.findall(r'ROW_PREFIX \+ "(\w+)"', baselines)}
    frontier = (ROOT / "optimizer" / "frontier_model.py").read_text()
    families |= set(re.findall(r"\bm\.(\w+) = pyo\.Constraint\(", frontier))
    return families


def test_every_row_family_has_words():
    """A family added to a builder without words would reach the user as its raw name."""
    families = _families_in_source()
    assert {"pack_all", "trunk_ship_up", "fleet_county", "fr_eps"} <= families  # the scan
    assert families - set(ROW_WORDS) == set()


def test_each_row_of_a_built_model_reads_in_words():
    """One row of every family in tiny.yaml's joint model (with farm shipments packed, so
    that `pack_up_all` is there too) is described without its raw name, without a
    placeholder left unfilled, and with the unit of its violation."""
    raw = tiny_raw()
    raw["packaging"]["single_use"][0]["up_class_ids"] = ["ambient"]
    s = load_scenario(raw)
    b = build_model(s, routes_for(s), mode="joint", hubs=["H01"])
    seen = set()
    for comp in b.model.component_objects(pyo.Constraint, active=True):
        row = next(iter(comp.values()), None)
        if row is None:
            continue
        seen.add(comp.name)
        d = describe_row(s, row.name, 3.0)
        assert _raw_rows(d["what"] + " " + d["why"]) == [], d
        assert "?" not in d["what"] and "row of the model" not in d["what"], d
        if comp.name in FLEET_ROWS:  # 3 vehicle-days: in trips, and the vehicles they need
            assert re.search(r"misses it by \d+ trips: 3 more vehicles \(", d["why"]), d
        else:
            assert "misses it by 3 " in d["why"], d
        assert d["constraint"] == row.name
    assert {"pack_all", "pack_up_all", "trunk_ship_up", "trunk_cap_back", "fleet_hub",
            "cap_cover", "pool_issue"} <= seen


def test_rows_outside_the_joint_model_read_in_words():
    """The baselines' packaging rule and the frontier's criterion rows (a what-if's or a
    frontier's solve may report them), and an index Pyomo quoted."""
    s = load_scenario(tiny_raw())
    for name in ("baseline_share_max[H01-V001,0,ambient]", "fr_cap", "fr_eps",
                 "serve_all[3]"):
        d = describe_row(s, name, 1.0)
        assert _raw_rows(d["what"]) == [] and "row of the model" not in d["what"], d
    d = describe_row(s, "trunk_ship_up['H 01',1,chilled]", 2.0)
    assert "hub H 01's 'chilled' farm shipments up on day 1" in d["what"]


def test_the_trunk_diagnosis_names_the_trunk_vehicles(tmp_path):
    """tiny.yaml with no trunk vehicles (`trunk_reefer` count 0): `plan solve` said
    `trunk_ship_up[H01,1,chilled]` and `pack_all[H01-V001,0,ambient]`; every line now says
    in words what cannot move, and the trunk rows name the empty county fleet."""
    raw = tiny_raw()
    next(v for v in raw["vehicle_types"] if v["vehicle_type"] == "trunk_reefer")["count"] = 0
    lines, output = _infeasible(tmp_path, raw)
    assert lines, output
    assert _raw_rows(output) == [], output
    # the county fleet's own row gives now that trip counts' bounds no longer hold it
    # (`solver.explain`); before, the trunk rows that needed the trucks did
    assert any("not enough county trunk_reefer vehicles on day" in ln
               and "(0 available)" in ln for ln in lines), output


def _infeasible(tmp_path, raw: dict) -> tuple[list[str], str]:
    """`plan solve` of `raw` as a user runs it: it must exit 2; its `infeasible:` lines and
    its whole output."""
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(raw))
    r = CliRunner().invoke(plan, ["solve", str(path), "--time-limit", "8", "--threads", "1",
                                  "--no-baselines"])
    assert r.exit_code == 2, r.output
    return [ln for ln in r.output.splitlines() if ln.startswith("infeasible:")], r.output


def _one_van(tmp_path, parcels: int, **van: object):
    raw = one_van_raw([{"village_id": "V1", "day": 0, "class_id": "amb", "direction": "down",
                        "parcels": parcels}],
                      **{"count": 1, "speed_kmh": 35, "service_minutes_per_stop": 12, **van})
    return _infeasible(tmp_path, raw)


def test_a_hub_short_of_vans_is_told_so_not_blamed_on_the_valid_inequalities(tmp_path):
    """1,500 L for one 1,000 L van running one trip a day (then: 250 parcels, two trips of
    46.3 min in a 100-minute shift). The elastic copy bent the trip-cost floor and the
    capacity covers ("the milk runs of V1 ... cost less than their least possible cost"),
    valid inequalities the planner adds, because the trip count's upper bound, the fleet's
    n_v m_t as a hard column bound, kept `fleet_hub` from giving."""
    for parcels, van, short in ((150, {}, "1 trip: 1 more vehicle (1 trip a day each)"),
                                (250, {"shift_minutes": 100, "max_trips_per_day": 5},
                                 "1 trip: 1 more vehicle (2 trips a day each)")):
        lines, out = _one_van(tmp_path, parcels, **van)
        assert lines == ["infeasible: not enough van vehicles at hub H1 on day 0 (1 "
                         f"available): the closest feasible plan misses it by {short}"], out


def test_a_fleet_shortage_is_told_in_trips_and_whole_vehicles(tmp_path):
    """The fleet rows count a trip as 1/m of a vehicle-day (m trips a day each), and the
    diagnosis said their violation in vehicles: "misses it by 0.5 vehicles" where one trip,
    one whole vehicle, was missing. By hand: 5,000 L (500 parcels of 10 L) for one 1,000 L
    van running m = min(max_trips_per_day 2, ⌊480 / 46.3⌋) = 2 trips a day: 5 trips, 2 of
    them run, 3 trips short (1.5 vehicle-days): 2 more vehicles."""
    lines, out = _one_van(tmp_path, 500, max_trips_per_day=2, shift_minutes=480)
    assert lines == ["infeasible: not enough van vehicles at hub H1 on day 0 (1 available): "
                     "the closest feasible plan misses it by 3 trips: 2 more vehicles (2 trips "
                     "a day each)"], out


@pytest.mark.parametrize(("amount", "why"), [
    (0.5, "1 trip: 1 more vehicle (2 trips a day each)"),  # no_trunk.yaml's day 0
    (1.0, "2 trips: 1 more vehicle (2 trips a day each)"),
    (1.5, "3 trips: 2 more vehicles (2 trips a day each)"),
])
def test_the_county_fleet_row_in_trips_and_vehicles(amount, why):
    """tiny.yaml's trunk_reefer runs 2 trunk legs a day (max_trips_per_day 2, a leg far
    within its shift), each half a vehicle-day of `fleet_county`: a violation of 0.5 is one
    leg, one more truck; 1.5 three legs, two more trucks (rounded up)."""
    s = load_scenario(tiny_raw())
    d = describe_row(s, "fleet_county[trunk_reefer,0]", amount)
    assert d["why"] == f"the closest feasible plan misses it by {why}"


def test_trips_of_different_lengths_are_told_in_vehicle_days():
    """Trunk legs of 40 km (40 min at 60 km/h, 2 a day by max_trips_per_day) to H01 and of
    200 km (200 min: 1 in a 300-minute shift) to H02: a violation of 1.5 vehicle-days is 2
    to 3 legs on day 0, where both hubs have loads, so it is not said as a number of trips;
    day 1 has loads at H01 only, all legs of 2 a day, so 1.5 is 3 legs."""
    raw = tiny_raw()
    raw["hubs"].append({"hub_id": "H02", "lat": 28.7, "lon": 119.3})
    raw["villages"].append({"village_id": "H02-V001", "hub_id": "H02", "lat": 28.71,
                            "lon": 119.31})
    raw["demand"].append({"village_id": "H02-V001", "day": 0, "class_id": "ambient",
                          "direction": "down", "parcels": 10})
    trunk = next(v for v in raw["vehicle_types"] if v["vehicle_type"] == "trunk_reefer")
    trunk.update(speed_kmh=60, service_minutes_per_stop=0, shift_minutes=300)
    raw.setdefault("routing", {})["distance_matrix_km"] = {"COUNTY": {"H01": 20, "H02": 100}}
    s = load_scenario(raw)
    day0, day1 = describe_rows(s, [("fleet_county[trunk_reefer,0]", 1.5),
                                   ("fleet_county[trunk_reefer,1]", 1.5)], "", "")
    assert day0["why"] == ("the closest feasible plan misses it by 1.5 vehicle-days of trips "
                           "(a vehicle runs 1 to 2 of these trips a day, by their length): 2 "
                           "more vehicles")
    assert day1["why"] == ("the closest feasible plan misses it by 3 trips: 2 more vehicles "
                           "(2 trips a day each)")


def test_a_trip_longer_than_every_shift_names_the_shift(tmp_path):
    """20 km at 35 km/h and a 12-minute stop take 46.3 min, against a 40-minute shift: the
    trip is never offered, and the diagnosis said only 'no candidate trip can carry it'."""
    lines, out = _one_van(tmp_path, 10, shift_minutes=40)
    assert len(lines) == 1, out
    assert "takes longer than every vehicle's shift_minutes (van: 46.3 min against 40)" in (
        lines[0]), out


def test_a_trunk_leg_beyond_the_trunk_vehicles_names_its_km_and_limit(tmp_path):
    """The trunk leg longer than the trunk vehicle's max_route_km: the diagnosis said only
    '(compartment, passive packaging, max_route_km or shift_minutes)', where the milk runs'
    name the leg's km against each vehicle's limit."""
    raw = tiny_raw()
    trunk = next(v for v in raw["vehicle_types"] if v["base"] == "county")
    trunk["max_route_km"] = 1
    lines, output = _infeasible(tmp_path, raw)
    lines = [ln for ln in lines if ln.startswith("infeasible: trunk")]
    assert lines, output
    assert all(re.search(rf"{trunk['vehicle_type']}: the leg depot->H01->depot is "
                         r"\d+\.\d km, over its max_route_km 1\)", ln) for ln in lines), lines
