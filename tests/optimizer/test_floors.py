"""Trip-cost floors (optimizer.floors): they must lift the relaxation where a second trip
runs whole in every plan, and never cut off a plan."""

from __future__ import annotations

import pytest

from optimizer import build_model, load_scenario, run_highs
from optimizer.baselines import fix_routing
from optimizer.model.covers import joint_floors
from optimizer.plan import extract_plan
from optimizer.stages import (
    StageOutcome,
    bound_without_search,
    relaxation_bound,
    run_stage,
    with_floor_bound,
)
from tests.optimizer.helpers import joint_lp, routes_for
from tests.optimizer.plan_checks import check_stage
from tests.optimizer.test_cuts import _binding_variant, _one_village, _relaxation


def _two_vans(litres: int) -> dict:
    """One village needing `litres` (parcels of 10 L); a big van (100 L, 50 CNY a trip) and a
    small one (40 L, 30 CNY), two of each, nothing else costs."""
    raw = _one_village(litres // 10)
    big = raw["vehicle_types"][0]
    big["count"] = 2
    raw["vehicle_types"].append(dict(big, vehicle_type="small",
                                     compartments_litres={"ambient": 40}, fixed_cost_cny=30))
    return raw


def _best_by_hand(litres: int) -> float:
    """min 50 a + 30 b over whole trips with 100 a + 40 b ≥ litres, a, b ≤ 2."""
    return min(50 * a + 30 * b for a in range(3) for b in range(3) if 100 * a + 40 * b >= litres)


@pytest.mark.parametrize("litres", [120, 150, 60, 230])
def test_floor_makes_the_second_trip_whole(litres):
    """120 L: the relaxation with the covers runs 2/3 of the big van and 4/3 of the small one
    (73.3 CNY); every plan runs whole trips (big + small, 80 CNY). The floor is that optimum,
    found by the unit-day's own MILP, and lifts the relaxation to it."""
    s = load_scenario(_two_vans(litres))
    best = _best_by_hand(litres)
    floors = joint_floors(s, routes_for(s), ["H"])
    assert [f for _trips, f in floors.rows.values()] == [pytest.approx(best, abs=1e-5)]
    without = build_model(s, routes_for(s), trip_floors=False)
    with_floors = build_model(s, routes_for(s))
    assert _relaxation(with_floors) == pytest.approx(best, abs=1e-5)
    if litres == 120:
        assert _relaxation(without) < best - 5  # the covers alone leave the half trip
    for built in (without, with_floors):
        r = run_highs(built.model, mip_gap=0.0)
        assert r.status == "optimal"
        assert r.objective == pytest.approx(best)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("mode", ["joint", "single_use", "sequential"])
def test_floors_change_no_optimum(seed, mode):
    """On capacity-bound variants (several villages and classes, pickups, presale windows)
    the floors raise the relaxation or leave it, and leave each model's optimum where it
    was: computed on the model's own sets, and the joint model's floors shared with the
    single-use model as a hub group's stages share them."""
    s = load_scenario(_binding_variant(seed))
    model_mode = "single_use" if mode == "single_use" else "joint"
    routes = routes_for(s)
    floors = True if mode != "single_use" else joint_floors(s, routes, [h.hub_id for h in s.hubs])
    plain = build_model(s, routes, mode=model_mode, trip_floors=False)
    floored = build_model(s, routes, mode=model_mode, trip_floors=floors)
    assert len(floored.model.trip_floor) > 0
    assert _relaxation(floored) >= _relaxation(plain) - 1e-6
    a = run_highs(plain.model, mip_gap=0.0, time_limit_s=60)
    b = run_highs(floored.model, mip_gap=0.0, time_limit_s=60)
    for r in (a, b):  # proven to HiGHS's tolerance
        assert r.objective is not None and r.bound is not None
        assert r.bound >= r.objective - 1e-7 * abs(r.objective)
    assert b.objective == pytest.approx(a.objective, rel=1e-7)
    for built, r in ((plain, a), (floored, b)):
        check_stage(StageOutcome(r.status, r.objective, r.bound, extract_plan(built, s)), s,
                    built.hubs)


@pytest.mark.parametrize("name", ["tiny", "stress/bulky_empties", "stress/pool_lag",
                                  "stress/crates_up", "stress/non_passive_reusable",
                                  "binding0", "binding3"])
def test_cost_floor_bounds_the_joint_optimum(name):
    """The bound known before any solve (`cost_floor`: the milk-run floors plus every parcel
    in its cheapest packaging) is positive, at least the floors alone (a reusable box's use
    may cost nothing by itself: its washing and buying are the pools'), and never above the
    joint optimum (a cold solve to a 1e-6 gap)."""
    if name.startswith("binding"):
        s = load_scenario(_binding_variant(int(name[-1])))
    else:
        s = load_scenario(f"examples/scenarios/{name}.yaml")
    hubs = sorted({v.hub_id for v in s.villages})
    floors = joint_floors(s, routes_for(s), hubs)
    trips_only = sum(f for _t, f in floors.rows.values())
    assert floors.bound >= trips_only > 0
    r = run_highs(build_model(s, routes_for(s), hubs=hubs).model, mip_gap=1e-6,
                  time_limit_s=60)
    assert r.objective is not None and r.bound is not None
    assert r.bound >= r.objective * (1 - 1e-6)  # solved to the gap
    assert floors.bound <= r.objective + 1e-6


def test_a_joint_outcome_without_a_bound_takes_the_floor():
    """None or a lower bound gives way to the floor (recorded); a higher one stays; the
    floor never lifts a bound above the plan's own cost."""
    plan = {"trips": []}
    none = with_floor_bound(StageOutcome("time_limit", 100.0, None, plan), 60.0)
    assert none.bound == 60.0 and none.stats["bound_from_floors"] == 1.0
    low = with_floor_bound(StageOutcome("time_limit", 100.0, 50.0, plan), 60.0)
    assert low.bound == 60.0
    high = with_floor_bound(StageOutcome("time_limit", 100.0, 90.0, plan), 60.0)
    assert high.bound == 90.0 and "bound_from_floors" not in high.stats
    # a proven optimum whose bound lies a hair (HiGHS's tolerances) below the floor keeps
    # its own bound and says nothing of a bound from before its solve
    proven = with_floor_bound(StageOutcome("optimal", 100.0, 100.0 - 1e-7, plan), 100.0)
    assert proven.bound == 100.0 and not any(k.startswith("bound_from_") for k in proven.stats)
    assert with_floor_bound(StageOutcome("time_limit", 100.0, 99.0, plan), 99.5).bound == 99.5
    capped = with_floor_bound(StageOutcome("time_limit", 100.0, None, plan), 120.0)
    assert capped.bound == 100.0
    no_plan = with_floor_bound(StageOutcome("time_limit_no_solution", None, None, None), 60.0)
    assert no_plan.bound is None


@pytest.mark.parametrize("name", ["stress/bulky_empties", "stress/cleaning_capacity"])
def test_relaxation_bound_of_a_baseline_model_is_the_joint_relaxation(name):
    """A joint solve cut short falls back on the LP relaxation of the model it was started
    from (a baseline's, fixings undone): the relaxation of a freshly built joint model
    (relaxed by Pyomo, solved through run_highs), between the bound known before any solve
    and the joint optimum."""
    s = load_scenario(f"examples/scenarios/{name}.yaml")
    hubs = sorted({v.hub_id for v in s.villages})
    routes = routes_for(s)
    _single, b1 = run_stage(s, routes, hubs, "single_use", 30.0, 1e-6, 1, None)
    _seq, b = run_stage(s, routes, hubs, "routing_first", 30.0, 1e-6, 1, None,
                        prepare=lambda bb: fix_routing(bb, b1),
                        floors=joint_floors(s, routes, hubs))
    got = relaxation_bound(b, 1)
    lp = joint_lp(s, routes, hubs)
    assert got == pytest.approx(lp, rel=1e-7)
    opt = run_highs(build_model(s, routes, hubs=hubs).model, mip_gap=1e-6).objective
    floor = joint_floors(s, routes, hubs).bound
    assert floor - 1e-6 <= got <= opt + 1e-6
    # a joint outcome without a bound: the relaxation where the model is built, else the floor
    plan = {"trips": []}
    cut_short = StageOutcome("time_limit", opt + 50.0, None, plan)
    with_model = bound_without_search(cut_short, floor, b, 1)
    assert with_model.bound == pytest.approx(got) and with_model.stats["bound_from_relaxation"]
    assert bound_without_search(cut_short, floor, None, 1).bound == pytest.approx(floor)
    proven = StageOutcome("time_limit", opt + 50.0, opt - 1.0, plan)
    assert bound_without_search(proven, floor, b, 1) is proven
    # a joint solve stopped before its root (its bound above the floor, below the
    # relaxation): the relaxation replaces it when the solve was cut short, not otherwise
    early = StageOutcome("time_limit", opt + 50.0, (floor + got) / 2, plan)
    assert floor < early.bound < got
    raised = bound_without_search(early, floor, b, 1, cut_short=True)
    assert raised.bound == pytest.approx(got) and raised.stats["bound_from_relaxation"]
    assert bound_without_search(early, floor, b, 1) is early


def test_floors_stop_at_their_budget(monkeypatch):
    """Each unit-day's MILP gets at most what the budget has left and none starts once it is
    spent (any subset of the floors is valid). Here every sub-problem runs to its limit on a
    fake clock: 2 s + 1 s for a 3 s budget, then no more; without a budget every unit-day
    of the hub is solved."""
    from types import SimpleNamespace

    import optimizer.floors as fl
    from optimizer.routes import hub_routes

    s = load_scenario("examples/scenarios/county_week.json")
    routes = hub_routes(s, ["H19"])
    clock = SimpleNamespace(now=0.0)
    limits: list[float] = []

    def runs_to_its_limit(h, sub):
        limits.append(h.getOptionValue("time_limit")[1])
        clock.now += limits[-1]
        return 10.0

    monkeypatch.setattr(fl, "time", SimpleNamespace(perf_counter=lambda: clock.now))
    monkeypatch.setattr(fl, "_solve", runs_to_its_limit)
    everything = joint_floors(s, routes, ["H19"])
    assert len(everything.rows) > 2 and set(limits) == {fl.SUB_TIME_LIMIT_S}
    limits.clear()
    budgeted = joint_floors(s, routes, ["H19"], budget_s=1.5 * fl.SUB_TIME_LIMIT_S)
    assert limits == pytest.approx([fl.SUB_TIME_LIMIT_S, 0.5 * fl.SUB_TIME_LIMIT_S])
    assert len(budgeted.rows) == 2
    assert budgeted.bound < everything.bound
