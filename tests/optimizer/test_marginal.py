"""Marginal values (`optimizer.marginal`): the duals of the plan's LP (trips fixed) and the
vehicle re-solves agree with plans solved again from scratch with one more unit."""

from __future__ import annotations

import time

import pytest

from optimizer import load_scenario, solve
from optimizer.marginal import marginal_values
from optimizer.whatif import apply_changes
from tests.optimizer.helpers import ROOT
from tests.optimizer.plan_checks import check_plan, check_result

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


@pytest.mark.slow
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
    # and for how many it holds
    rng = pool["valid_for_boxes"]
    assert f"{rng['more']:,.1f} more, {rng['fewer']:,.1f} fewer (boxes)" in page
    assert "plan.json" in page and (tmp_path / "plan.json").exists()


def _lp_cost_on_trips(s, plan) -> float:
    """The cost of `plan`'s trips in `s` with everything else free: the LP the marginal
    values are the duals of, solved again for a changed scenario."""
    from optimizer.marginal import _lp_duals, fix_plan_trips
    from optimizer.model import build_model
    from optimizer.routes import hub_routes

    b = build_model(s, hub_routes(s, ["H01"]), mode="joint", hubs=["H01"])
    assert fix_plan_trips(b, plan) is not None
    lp = _lp_duals(b, 1)
    assert lp is not None
    return lp.cost


def _with(s, key: str, delta: float):
    """`s` with `delta` more (fractional allowed: both fields are real numbers) of `key`."""
    if key == "pool":
        pools = [p.model_copy(update={"count": p.count + delta}) for p in s.container_pools]
        return s.model_copy(update={"container_pools": pools})
    hubs = [h.model_copy(update={"cleaning_capacity_per_day": h.cleaning_capacity_per_day
                                 + delta}) for h in s.hubs]
    return s.model_copy(update={"hubs": hubs})


@pytest.mark.parametrize("key,field,edits,exact", [
    ("pool", "valid_for_boxes", {"weeks": 1}, ("more", "fewer")),
    ("cleaning", "valid_for_units", {"weeks": 1, "cleaning": 12}, ("more",)),
    # the plan expands the pool (its expansion column basic): fewer boxes are bought back at
    # the same price without limit, more save it until the expansion is gone
    ("pool", "valid_for_boxes", {"pool": 5, "horizon_end": "boundary"}, ("more",)),
    # one day's cleaning row binds, another has slack (a basic row)
    ("cleaning", "valid_for_units", {"weeks": 1, "cleaning": 16}, ("fewer",)),
], ids=["pool", "cleaning", "pool_expanded", "cleaning_slack_day"])
def test_a_marginal_value_holds_for_its_range(key, field, edits, exact):
    """Each marginal value says for how many units it holds: re-solving the plan's LP with
    δ more (and fewer) units changes the cost by exactly δ times the value up to the range
    (or by a large δ where it says "no limit"), and, where the range is exact, by something
    else a little past it. A box 2.87 CNY for 1.35 more boxes and 18.25 fewer; cleaning 5.74
    CNY a day for 1.91 units more every day (its "fewer", by the 100 % rule, is safe, not
    exact); an expanded pool's box its amortised price for 119.3 more and any number fewer.
    With the directions swapped, or every range measured from the lower bound (a basic
    column or row's was wrong: a review's re-solves), this fails."""
    s = _scenario(**edits)
    r = solve(s, mip_gap=0.0, baselines=False)
    entry = r.marginal_values["pools" if key == "pool" else "cleaning"][0]
    value = entry.get("delta_cost_cny_per_box", entry.get("delta_cost_cny_per_unit_per_day"))
    rng = entry[field]
    assert abs(value) > 0.1
    base = _lp_cost_on_trips(s, r.plan)
    have = (s.container_pools[0].count if key == "pool"
            else s.hubs[0].cleaning_capacity_per_day)

    def change(delta: float) -> float:
        return _lp_cost_on_trips(_with(s, key, delta), r.plan) - base

    for side, sign in (("more", 1.0), ("fewer", -1.0)):
        limit = rng[side]
        # no limit: as far as the field goes (a pool or a capacity is never negative)
        reach = (min(300.0, have * 0.99) if sign < 0 else 300.0) if limit is None else limit
        assert reach >= 1.0, (side, rng)
        for delta in (1.0, reach - 1e-4):
            assert change(sign * delta) == pytest.approx(sign * delta * value, rel=1e-6,
                                                         abs=1e-6), (side, delta)
        if side in exact:
            assert limit is not None
            past = sign * (limit + 0.05)
            assert abs(change(past) - past * value) > 1e-4, (side, limit)


@pytest.mark.slow
def test_hub_groups_work_out_their_own_marginal_values():
    """Planned in worker processes with a time limit, each hub group works out its plan's
    marginal values on the model its stages built (the county week's 20 hubs had all ended
    "not computed": worked out after the plan, nothing of the limit was left); they are the
    values worked out afresh on the final plan, hub by hub."""
    from tests.optimizer.test_frontier import _two_hubs

    s = load_scenario(_two_hubs())
    r = solve(s, time_limit_s=30, threads=2, mip_gap=1e-6, baselines=False)
    assert r.stats["workers"] == 2
    per_hub = {h["hubs"][0]: h["joint"] for h in r.stats["hubs"]}
    assert all(j.get("marginal_s", 0.0) > 0 for j in per_hub.values()), per_hub
    got = r.marginal_values
    assert not got["not_computed"]
    fresh = marginal_values(s, r.plan)

    def flat(entries):
        out = {}
        for e in entries:
            key = (e["hub_id"], e.get("container_type"))
            for k, v in e.items():
                if isinstance(v, dict):
                    out.update({(*key, k, k2): v2 for k2, v2 in v.items()})
                elif isinstance(v, float):
                    out[(*key, k)] = v
        return out

    for key in ("pools", "cleaning"):
        a, b = flat(got[key]), flat(fresh[key])
        assert len(got[key]) == 2 and a.keys() == b.keys()
        for k in a:
            assert (a[k] is None and b[k] is None) or a[k] == pytest.approx(
                b[k], rel=1e-6, abs=1e-9), k


def test_a_groups_plan_becomes_the_least_cost_plan_on_its_trips():
    """A plan whose continuous decisions are not the best for its trips (here the
    single-use plan, which the joint model can pack in reusable boxes on the same trips)
    gives way to the LP's plan on those trips when the group works out its marginal values:
    cheaper by what the stats say, a complete plan whose own cost is its objective, and its
    marginal values are that plan's. On the county week at 120 s a cut-short solve's plans
    were 637.7 CNY above their trips' LP (an outside audit)."""
    from optimizer.kpis import compute_kpis
    from optimizer.routes import hub_routes
    from optimizer.stages import run_stage, with_marginals
    from tests.optimizer.plan_checks import recompute_cost

    s = _scenario(weeks=1)
    single_use, _b = run_stage(s, hub_routes(s, ["H01"]), ["H01"], "single_use", None, 1e-6,
                               1, None)
    assert single_use.plan is not None and single_use.objective is not None
    done = with_marginals(s, ["H01"], single_use, None, 1)
    assert done.objective < single_use.objective - 1.0
    assert done.stats["lp_completion_cny"] == pytest.approx(
        single_use.objective - done.objective)
    kpis = compute_kpis(done.plan, s)
    check_plan(done.plan, s, kpis)
    assert recompute_cost(done.plan, s) == pytest.approx(done.objective, rel=1e-6, abs=1e-4)
    assert kpis["single_use_grams"] < compute_kpis(single_use.plan, s)["single_use_grams"]
    assert done.marginals is not None and done.marginals["pools"]
    # the same trips: the values hold for the plan now shown
    from optimizer.marginal import plan_trip_keys

    assert done.marginals_on == plan_trip_keys(single_use.plan, ["H01"])


def test_a_value_of_nothing_holds_for_any_number_more():
    """A pool that does not bind (cleaning binds instead) is worth 0 a box, and 300 more
    boxes change the LP's cost by nothing: its range says so (no limit), where HiGHS's
    ranging of the degenerate LP said 1.6 boxes; likewise a cleaning line with slack."""
    s = _scenario(weeks=1, cleaning=12)
    r = solve(s, mip_gap=0.0, baselines=False)
    (pool,) = r.marginal_values["pools"]
    assert pool["delta_cost_cny_per_box"] == 0.0
    assert str(pool["delta_cost_cny_per_box"]) == "0.0"  # not "-0.0"
    assert pool["valid_for_boxes"]["more"] is None
    base = _lp_cost_on_trips(s, r.plan)
    assert _lp_cost_on_trips(_with(s, "pool", 300.0), r.plan) == pytest.approx(base)
    s2 = _scenario(weeks=1)
    (clean,) = solve(s2, mip_gap=0.0, baselines=False).marginal_values["cleaning"]
    assert clean["delta_cost_cny_per_unit_per_day"] == 0.0
    assert clean["valid_for_units"]["more"] is None


def test_a_range_narrowed_by_degeneracy_is_widened_by_re_solves():
    """A hub cleaning 12 boxes a day: HiGHS's ranging (each day's row, by the 100 % rule)
    says the value holds for 1.26 units fewer; two re-solves show it for 10.1 (the LP's
    cost is convex in the capacity, so a linear re-solve at δ proves every step below δ),
    and a re-solve at what it now says is still linear. Without the re-solves, 1.26."""
    s = _scenario(weeks=1, cleaning=12)
    r = solve(s, mip_gap=0.0, baselines=False)
    (clean,) = r.marginal_values["cleaning"]
    value, fewer = clean["delta_cost_cny_per_unit_per_day"], clean["valid_for_units"]["fewer"]
    assert fewer is not None and fewer >= 10.0
    base = _lp_cost_on_trips(s, r.plan)
    for delta in (-fewer / 2, -fewer):
        assert _lp_cost_on_trips(_with(s, "cleaning", delta), r.plan) - base == pytest.approx(
            delta * value, rel=1e-6, abs=1e-6)


@pytest.mark.slow
def test_a_hub_vehicle_is_not_credited_with_the_county_trunk_fleet():
    """Two hubs share three county trucks, and both want two trunk legs on day 1. The
    vehicle re-solve of one hub alone gave it all three: one more van at HA was worth
    -0.76 CNY, what a fourth truck saves, where re-solving the county with that van
    changes nothing. The other hubs' legs now leave the hub only what is left."""
    s = load_scenario(ROOT / "tests" / "optimizer" / "data" / "two_hubs_one_trunk_fleet.yaml")
    r = solve(s, mip_gap=0.0, baselines=False, marginal_vehicles=True)
    check_result(r, s)
    assert r.status == "optimal" and r.objective is not None

    def one_more(key: str) -> float:
        more = solve(apply_changes(s, [(key, "+1")])[0], mip_gap=0.0, baselines=False,
                     marginals=False)
        assert more.status == "optimal" and more.objective is not None
        return more.objective - r.objective

    assert one_more("fleet.trunk.count") < -0.5  # the county fleet binds
    got = {(v["hub_id"], v["vehicle_type"]): v["delta_cost_cny"]
           for v in r.marginal_values["vehicles"]}
    assert set(got) == {(h, vt) for h in ("HA", "HB") for vt in ("van", "mt_van")}
    for vt in ("van", "mt_van"):  # HA's, the ones the audit found
        assert got["HA", vt] == pytest.approx(one_more(f"fleet.{vt}.count.HA"), abs=1e-6)
