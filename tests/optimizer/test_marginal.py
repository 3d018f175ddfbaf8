"""Marginal values (`optimizer.marginal`): the duals of the plan's LP (trips fixed) and the
vehicle re-solves agree with plans solved again from scratch with one more unit."""

from __future__ import annotations

import time

import pytest

from optimizer import load_scenario, solve
from optimizer.marginal import marginal_values
from optimizer.whatif import apply_changes
from tests.optimizer.helpers import ROOT
from tests.optimizer.plan_checks import check_result

TRADEOFF = ROOT / "examples" / "scenarios" / "tiny.yaml"


def _scenario(**edits):
    import yaml

    raw = yaml.safe_load(TRADEOFF.read_text())
    if "weeks" in edits:
        raw["prices"]["pool_amortisation_weeks"] = edits["weeks"]
    if "horizon_end" in edits:
        raw["horizon_end"] = edits["horizon_end"]
    if "pool" in edits:
        raw["container_pools"][0]["count"] = edits["pool"]
    if "cycle_life" in edits:
        raw["packaging"]["reusable"][0]["cycle_life"] = edits["cycle_life"]
    if "cleaning" in edits:
        raw["hubs"][0]["cleaning_capacity_per_day"] = edits["cleaning"]
    if "vans" in edits:
        amb, mt = raw["vehicle_types"][0], raw["vehicle_types"][1]
        amb["count"] = 0
        mt["max_trips_per_day"] = 1
    return load_scenario(raw)


def _cost_of_one_more(s, key: str) -> float:
    """Cost change of the plan re-solved from scratch, to optimality, with one more."""
    base = solve(s, mip_gap=0.0, baselines=False, marginals=False)
    more = solve(apply_changes(s, [(key, "+1")])[0], mip_gap=0.0, baselines=False,
                 marginals=False)
    assert base.objective is not None and more.objective is not None
    return more.objective - base.objective


def test_binding_pool_dual_is_the_cost_of_one_more_box():
    """Pool expansion amortised over one week does not pay, so the 30-box pool binds
    without growing: its dual is negative and equals the re-solve's cost change."""
    s = _scenario(weeks=1)
    r = solve(s, mip_gap=0.0, baselines=False)
    check_result(r, s)
    assert sum(c["expansion"] for c in r.plan["containers"]) == pytest.approx(0.0, abs=1e-6)
    (pool,) = r.marginal_values["pools"]
    assert pool["delta_cost_cny_per_box"] < -0.5
    assert pool["delta_cost_cny_per_box"] == pytest.approx(
        _cost_of_one_more(s, "pools.H01.insulated_box"), rel=1e-6, abs=1e-6)


def test_binding_pool_in_the_boundary_horizon_is_worth_its_re_solve():
    """In the boundary horizon the starting pool is also in the end condition (what is back
    or in flight gives the pool back): its value is both rows' duals. With only
    `pool_covers` read, a box was worth -25.16 CNY where the re-solve saves 4.37."""
    s = _scenario(weeks=1, horizon_end="boundary", pool=10)
    r = solve(s, mip_gap=0.0, baselines=False)
    check_result(r, s)
    (pool,) = r.marginal_values["pools"]
    assert pool["delta_cost_cny_per_box"] < -0.5
    assert pool["delta_cost_cny_per_box"] == pytest.approx(
        _cost_of_one_more(s, "pools.H01.insulated_box"), rel=1e-6, abs=1e-6)


def test_a_single_use_reusable_has_marginal_values():
    """A reusable box of cycle life 1 never comes back to be cleaned: the cleaning rows are
    empty, and the marginal values ended in KeyError ('cleaning_capacity[H01,0]')."""
    s = _scenario(cycle_life=1)
    r = solve(s, mip_gap=0.0, baselines=False)
    check_result(r, s)
    (clean,) = r.marginal_values["cleaning"]
    assert clean["delta_cost_cny_per_unit_per_day"] == 0.0


def test_binding_cleaning_dual_is_the_cost_of_one_more_unit():
    """A hub cleaning 12 boxes a day: one more a day saves what the re-solve saves."""
    s = _scenario(weeks=1, cleaning=12)
    r = solve(s, mip_gap=0.0, baselines=False)
    (clean,) = r.marginal_values["cleaning"]
    assert clean["delta_cost_cny_per_unit_per_day"] < -0.5
    assert clean["delta_cost_cny_per_unit_per_day"] == pytest.approx(
        _cost_of_one_more(s, "hubs.H01.cleaning_capacity_per_day"), rel=1e-6, abs=1e-6)


def test_vehicle_value_is_the_cost_of_one_more_vehicle():
    """No ambient van and one multi-temperature trip a day: an ambient van saves what a
    re-solve with one finds; a second multi-temperature van is worth what its re-solve
    says (each compared with its own from-scratch plan)."""
    s = _scenario(vans=True)
    r = solve(s, mip_gap=0.0, baselines=False, marginal_vehicles=True)
    got = {v["vehicle_type"]: v["delta_cost_cny"] for v in r.marginal_values["vehicles"]}
    assert got["ambient_van"] < -1.0
    for vt in ("ambient_van", "multi_temp_van"):
        assert got[vt] == pytest.approx(_cost_of_one_more(s, f"fleet.{vt}.count.H01"),
                                        rel=1e-6, abs=1e-6)


def test_a_fleet_given_per_hub_is_priced_too():
    """A hub vehicle type whose fleet is given per hub only (`count_by_hub`, no `count`):
    its one-more value was left out without a word (the check compared the vehicle type
    with the hub ids)."""
    import yaml

    raw = yaml.safe_load(TRADEOFF.read_text())
    mt = raw["vehicle_types"][1]
    mt.pop("count", None)
    mt["count_by_hub"] = {"H01": 1}
    s = load_scenario(raw)
    r = solve(s, mip_gap=0.0, baselines=False, marginal_vehicles=True)
    got = {v["vehicle_type"]: v["delta_cost_cny"] for v in r.marginal_values["vehicles"]}
    assert mt["vehicle_type"] in got and got[mt["vehicle_type"]] is not None
    assert got[mt["vehicle_type"]] == pytest.approx(
        _cost_of_one_more(s, f"fleet.{mt['vehicle_type']}.count.H01"), rel=1e-6, abs=1e-6)


def test_marginals_stop_at_the_deadline():
    """Past the deadline no hub is priced, and each is listed as not computed."""
    s = _scenario()
    r = solve(s, mip_gap=0.0, baselines=False, marginals=False)
    out = marginal_values(s, r.plan, deadline=time.time() - 1)
    assert out["pools"] == [] and [n["hub_id"] for n in out["not_computed"]] == ["H01"]


def test_report_shows_marginal_values(tmp_path):
    """The plan's HTML report lists each marginal value the JSON carries."""
    from optimizer import write_report

    s = _scenario(weeks=1)
    r = solve(s, mip_gap=0.0, baselines=False)
    page = write_report(r, s, tmp_path).read_text()
    (pool,) = r.marginal_values["pools"]
    assert "What one more is worth" in page
    assert f"{pool['delta_cost_cny_per_box']:+,.2f}" in page
    assert "plan.json" in page and (tmp_path / "plan.json").exists()
