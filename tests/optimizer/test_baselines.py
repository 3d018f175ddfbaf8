"""The sequential baselines (optimizer.baselines) and the guard that keeps the joint plan no
worse than the better of them: the packaging rule's arithmetic, each baseline's plan keeping
what its method fixed, and the guard's substitution, forced and recorded."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

import optimizer
from optimizer import stages
from optimizer.baselines import (
    as_joint,
    fix_packaging,
    fix_routing,
    packaging_rule,
    reusable_costs_per_use,
)
from optimizer.kpis import compute_kpis
from optimizer.plan import extract_plan
from optimizer.routes import hub_routes
from tests.optimizer.helpers import ROOT, TINY
from tests.optimizer.plan_checks import check_plan, recompute_cost

STRESS = ROOT / "examples" / "scenarios" / "stress"


def _stress(name: str) -> optimizer.Scenario:
    return optimizer.load_scenario(STRESS / f"{name}.yaml")


def test_cost_per_use_of_a_box_by_hand():
    """The insulated box of bulky_empties (25 CNY + 2.7 kg CO2e at 0.06, cleaning 0.3 CNY +
    0.02 kg, return rate 0.98, 100 uses, lag 1, paid off over 52 weeks), by hand."""
    s = _stress("bulky_empties")
    price, clean = 25 + 0.06 * 2.7, 0.3 + 0.06 * 0.02
    running = (0.02 + 0.98 / 100) * price + 0.98 * 0.99 * clean
    capital = price * 2 / (7 * 52)
    got = reusable_costs_per_use(s, s.packaging.reusable[0])
    assert got == pytest.approx((running, capital), rel=1e-12)
    assert running == pytest.approx(1.042052, abs=1e-6)


@pytest.mark.parametrize(("name", "options", "expansion"), [
    # boxes beat EPS (4.81 CNY a parcel) with their capital: the pool grows to 2 days of 60
    ("bulky_empties", [("insulated_box", 1.0)], 60.0),
    # the hub cleans 60 a day of the market day's 120 x 0.98 x 0.99 returns; 150 boxes do
    ("cleaning_capacity", [("insulated_box", 60 / (120 * 0.98 * 0.99)), ("eps_box_ice", 1.0)],
     0.0),
    # a 60 CNY box paid off over 4 weeks does not pay for itself: 60 boxes for 2 days of 40
    ("pool_lag", [("insulated_box", 0.75), ("eps_box_ice", 1.0)], 0.0),
    # the non-passive chill bag (0.94 CNY) is cheaper per use than the box (1.04)
    ("tight_reefer", [("chill_bag", 1.0)], 0.0),
])
def test_packaging_rule(name, options, expansion):
    """The packaging desk's rule on the stress families: option and share for chilled parcels
    at hub H, and the pool expansion it sizes."""
    s = _stress(name)
    rule = packaging_rule(s, ["H"])
    got = rule.options[("H", "chilled")]
    assert [o for o, _ in got] == [o for o, _ in options]
    assert [x for _, x in got] == pytest.approx([x for _, x in options], rel=1e-9)
    assert rule.expansion.get(("H", "insulated_box"), 0.0) == expansion


def _issues_and_picks(plan: dict) -> tuple[dict, dict]:
    issued: dict[tuple[str, int], float] = defaultdict(float)
    for p in plan["packaging"]:
        if p["option"] == "insulated_box":
            issued[(p["village_id"], p["day"])] += p["parcels"]
    picked: dict[tuple[str, int], float] = defaultdict(float)
    for t in plan["trips"]:
        for i, sl in t["stop_loads"].items():
            picked[(i, t["day"])] += sl.get("empties.insulated_box", 0.0)
    return issued, picked


def test_packaging_first_plan_keeps_the_rule():
    """cleaning_capacity solved packaging first: every village and day boxes the rule's share
    of its chilled parcels, the pool is expanded by the rule's amount only, and every empty is
    picked up on the day it is due (issue day + 1, cyclic), never left waiting."""
    s = _stress("cleaning_capacity")
    rule = packaging_rule(s, ["H"])
    out, _b = stages.run_stage(s, hub_routes(s, ["H"]), ["H"], "packaging_first", 60, 1e-4, 1,
                               None, prepare=lambda b: fix_packaging(b, s, rule))
    assert out.plan is not None
    check_plan(out.plan, s, compute_kpis(out.plan, s))
    share = dict(rule.options[("H", "chilled")])["insulated_box"]
    chilled: dict[tuple[str, int], float] = defaultdict(float)
    for g in s.demand:
        if g.direction == "down":
            chilled[(g.village_id, g.day)] += g.parcels
    issued, picked = _issues_and_picks(out.plan)
    for (i, d), n in chilled.items():
        assert issued[(i, d)] == pytest.approx(share * n, rel=1e-6), (i, d)
        due = (d + 1) % s.horizon_days
        assert picked[(i, due)] == pytest.approx(0.98 * issued[(i, d)], rel=1e-6), (i, due)
    assert [c["expansion"] for c in out.plan["containers"]] == [rule.expansion[("H",
                                                                                 "insulated_box")]]


def test_routing_first_plan_keeps_the_single_use_trips_and_days():
    """tiny.yaml (a presale group included) solved routing first: the same trips (day,
    vehicle, stops) and service days as the single-use plan, with reusable boxes on them, and
    no dearer than the single-use plan (which it could have kept)."""
    s = optimizer.load_scenario(TINY)
    routes = hub_routes(s, ["H01"])
    su, b1 = stages.run_stage(s, routes, ["H01"], "single_use", 30, 0.0, 1, None)
    rf, _ = stages.run_stage(s, routes, ["H01"], "routing_first", 30, 0.0, 1, None,
                             prepare=lambda b: fix_routing(b, b1))
    assert su.plan is not None and rf.plan is not None
    for plan in (su.plan, rf.plan):
        check_plan(plan, s, compute_kpis(plan, s))

    def trips(plan):
        return sorted((t["day"], t["vehicle_type"], tuple(t["stops"])) for t in plan["trips"])

    assert trips(rf.plan) == trips(su.plan)
    assert [(r["demand_index"], r["day"]) for r in rf.plan["service"]] == [
        (r["demand_index"], r["day"]) for r in su.plan["service"]]
    assert any(p["option"] == "insulated_box" for p in rf.plan["packaging"])
    assert recompute_cost(rf.plan, s) <= recompute_cost(su.plan, s) + 1e-6


def test_as_joint_gives_back_the_joint_model():
    """A packaging-first model turned back by `as_joint` and solved cold reaches the optimum of
    a joint model built afresh (bulky_empties, where the two differ by 30 %)."""
    s = _stress("bulky_empties")
    routes = hub_routes(s, ["H"])
    rule = packaging_rule(s, ["H"])
    pf, b = stages.run_stage(s, routes, ["H"], "packaging_first", 60, 0.0, 1, None,
                             prepare=lambda b: fix_packaging(b, s, rule))
    fresh, _ = stages.run_stage(s, routes, ["H"], "joint", 60, 0.0, 1, None)
    as_joint(b)
    again = optimizer.run_highs(b.model, time_limit_s=60, mip_gap=0.0, threads=1)
    assert pf.objective is not None and fresh.objective is not None
    assert pf.objective > 1.3 * fresh.objective
    assert again.objective == pytest.approx(fresh.objective, rel=1e-7)
    plan = extract_plan(b, s)
    check_plan(plan, s, compute_kpis(plan, s))


def test_guard_keeps_a_better_joint_plan_and_replaces_a_worse_one():
    """`no_worse_than_sequential` on its own: a cheaper joint outcome passes untouched and
    unflagged; a dearer one, or none, is replaced by the sequential plan and flagged."""
    seq = stages.StageOutcome("optimal", 100.0, 100.0, {"trips": ["seq"]})
    better = stages.StageOutcome("optimal", 90.0, 90.0, {"trips": ["joint"]}, {"highs_s": 1.0})
    assert stages.no_worse_than_sequential(better, seq) is better
    for joint in (stages.StageOutcome("feasible", 110.0, 80.0, {"trips": ["joint"]}),
                  stages.StageOutcome("time_limit_no_solution", None, None, None)):
        out = stages.no_worse_than_sequential(joint, seq)
        assert out.plan is seq.plan and out.objective == 100.0
        assert out.bound == joint.bound
        assert out.stats["replaced_by_sequential"] == 1.0
        assert out.status == ("feasible" if joint.plan is not None else "time_limit")


def test_guard_substitution_through_solve_is_recorded(monkeypatch):
    """A joint solve forced to return a worse incumbent (the uncoordinated plan) inside
    `optimizer.solve`: the result carries the sequential plan, priced as such, and its stats
    say the joint plan was replaced. Without the forcing, nothing is replaced."""
    s = optimizer.load_scenario(TINY)
    honest = optimizer.solve(s, mip_gap=0.0, threads=1)
    assert "replaced_by_sequential" not in honest.stats["joint"]

    real = stages.run_stage
    seen: dict[str, stages.StageOutcome] = {}

    def worse_joint(s, routes, hubs, mode, *args, **kw):
        out, b = real(s, routes, hubs, mode, *args, **kw)
        seen[mode] = out
        if mode == "joint":
            return seen["uncoordinated"], b
        return out, b

    monkeypatch.setattr(stages, "run_stage", worse_joint)
    res = optimizer.solve(s, mip_gap=0.0, threads=1)
    assert seen["uncoordinated"].objective > res.baselines["sequential"]["objective"] + 1.0
    assert res.stats["joint"]["replaced_by_sequential"] == 1.0
    assert res.objective == pytest.approx(res.baselines["sequential"]["objective"], rel=1e-9)
    check_plan(res.plan, s, res.kpis)
    assert recompute_cost(res.plan, s) == pytest.approx(
        res.baselines["sequential"]["kpis"]["cost_cny"]["total"], rel=1e-9)
    assert math.isclose(res.objective, honest.objective, rel_tol=1e-6) or (
        res.objective > honest.objective)
