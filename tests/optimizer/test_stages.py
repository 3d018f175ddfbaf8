"""A hub group's stages (optimizer.stages) when its budget runs out: what it hands on and
what bounds it."""

from __future__ import annotations

import dataclasses

import pytest

from optimizer import build_model, load_scenario, run_highs, stages
from optimizer.budget import DEFAULT
from tests.optimizer.helpers import joint_lp, routes_for
from tests.optimizer.plan_checks import check_stage

SCENARIO = "examples/scenarios/stress/bulky_empties.yaml"
# no trunk rounding bound: the bound tested here is the one a squeezed group falls back on
NO_TRUNK_BOUND = dataclasses.replace(DEFAULT, trunk_bound_max_s=0.0)


def _squeeze(monkeypatch, *skipped: str) -> None:
    """The group's budget has no room for the `skipped` stages (`stage_limit` says None)."""
    real = stages.stage_limit

    def limit(stage, *args, **kwargs):
        return None if stage in skipped else real(stage, *args, **kwargs)

    monkeypatch.setattr(stages, "stage_limit", limit)


def _joint_optimum(s, hubs: list[str]) -> float:
    """A cold solve to a 1e-6 gap of the joint model without any valid rows (no covers, no
    floors): the bound's own rows cannot lift it."""
    r = run_highs(build_model(s, routes_for(s), hubs=hubs, capacity_covers=False,
                              trip_floors=False).model, mip_gap=1e-6, time_limit_s=60)
    assert r.objective is not None and r.bound is not None
    assert r.bound >= r.objective * (1 - 1e-6)
    return r.objective


def test_a_group_squeezed_out_of_its_sequential_stage_still_routes_first(monkeypatch):
    """No room left for the sequential and joint stages: routing first runs all the same
    (its trips fixed, HiGHS needs hundredths of a second), its plan is the group's, and the
    model it built gives the LP relaxation as bound. Without it the group handed on its
    single-use plan with the floors' bound (`cost_floor`)."""
    s = load_scenario(SCENARIO)
    hubs = sorted({v.hub_id for v in s.villages})
    _squeeze(monkeypatch, "sequential", "joint")
    out = stages.solve_hubs(s, hubs, 60.0, 1e-6, 1, None, params=NO_TRUNK_BOUND)
    routing = out["sequential_routing_first"]
    assert routing.plan is not None and routing.stats["past_budget"] == 1.0
    assert out["sequential_packaging_first"].plan is None  # no room: not forced
    assert out["sequential"].objective == pytest.approx(routing.objective)
    joint, single = out["joint"], out["single_use"]
    assert single.objective is not None and routing.objective is not None
    assert joint.objective == pytest.approx(routing.objective)
    assert joint.objective < single.objective - 1.0  # reuse on the same trips pays here
    check_stage(joint, s, hubs)
    assert joint.stats.get("bound_from_relaxation") == 1.0
    assert joint.bound == pytest.approx(joint_lp(s, routes_for(s), hubs), rel=1e-7)
    assert joint.bound <= _joint_optimum(s, hubs) + 1e-6


def test_a_group_with_only_its_first_plan_builds_the_joint_model_for_its_bound(monkeypatch):
    """No room even for the single-use stage: the group keeps its uncoordinated plan, and the
    joint model is built for its LP relaxation alone, a bound far above the floors'."""
    s = load_scenario(SCENARIO)
    hubs = sorted({v.hub_id for v in s.villages})
    _squeeze(monkeypatch, "single_use", "sequential", "joint")
    out = stages.solve_hubs(s, hubs, 60.0, 1e-6, 1, None, params=NO_TRUNK_BOUND)
    joint = out["joint"]
    assert out["single_use"].plan is None and out["sequential"].plan is None
    assert joint.objective == pytest.approx(out["uncoordinated"].objective)
    assert joint.stats.get("bound_from_relaxation") == 1.0
    assert "relaxation_build_s" in joint.stats
    check_stage(joint, s, hubs)
    lp = joint_lp(s, routes_for(s), hubs)
    assert joint.bound == pytest.approx(lp, rel=1e-7)
    assert joint.bound <= _joint_optimum(s, hubs) + 1e-6


def test_a_group_whose_budget_is_spent_builds_nothing_more(monkeypatch):
    """The same, with the group's budget already spent when its later stages would start:
    nothing is built past it, and the bound is the one known before any solve."""
    s = load_scenario(SCENARIO)
    hubs = sorted({v.hub_id for v in s.villages})
    _squeeze(monkeypatch, "single_use", "sequential", "joint")
    out = stages.solve_hubs(s, hubs, 0.0, 1e-6, 1, None, params=NO_TRUNK_BOUND)
    joint = out["joint"]
    assert out["sequential_routing_first"].plan is None
    assert "relaxation_build_s" not in joint.stats
    assert joint.stats.get("bound_from_floors") == 1.0
    assert joint.bound is not None and joint.bound < joint_lp(s, routes_for(s), hubs) - 1.0


def test_a_routing_first_plan_dearer_than_the_single_use_one_is_not_handed_on(monkeypatch):
    """No joint solve, and a routing-first plan cut short dearer than the single-use plan on
    the same trips (made so here): the group hands on the single-use plan."""
    s = load_scenario(SCENARIO)
    hubs = sorted({v.hub_id for v in s.villages})
    _squeeze(monkeypatch, "sequential", "joint")
    real = stages.run_stage

    def dearer(s, routes, hubs, mode, *args, **kwargs):
        o, b = real(s, routes, hubs, mode, *args, **kwargs)
        if mode == "routing_first":
            o = dataclasses.replace(o, objective=(o.objective or 0.0) + 1e5)
        return o, b

    monkeypatch.setattr(stages, "run_stage", dearer)
    out = stages.solve_hubs(s, hubs, 60.0, 1e-6, 1, None, params=NO_TRUNK_BOUND)
    single, joint = out["single_use"], out["joint"]
    assert out["sequential"].objective > single.objective
    assert joint.objective == pytest.approx(single.objective)
    assert joint.plan is single.plan
    assert "replaced_by_sequential" not in joint.stats


@pytest.mark.parametrize(("time_limit_s", "requested", "expected"), [
    (60.0, None, stages.SINGLE_USE_GAP), (60.0, 1e-4, stages.SINGLE_USE_GAP),
    (60.0, 0.05, 0.05), (None, 1e-4, 1e-4), (None, None, None)])
def test_a_time_limited_single_use_stage_stops_at_one_per_cent(monkeypatch, time_limit_s,
                                                               requested, expected):
    """Without --gap the single-use stage chased HiGHS's default 0.01 % to the end of its
    share (county week hub H01: the same plan after 4.1 s and 13.5 s), time the joint stage
    needs. Under a time limit it stops at 1 % or the requested gap, whichever is wider;
    without a limit (the value study) at the requested gap. The other stages keep theirs."""
    s = load_scenario(SCENARIO)
    hubs = sorted({v.hub_id for v in s.villages})
    gaps: dict[str, float | None] = {}
    real = stages.run_stage

    def spy(s, routes, hubs, mode, time_limit_s, mip_gap, *args, **kwargs):
        gaps.setdefault(mode, mip_gap)
        return real(s, routes, hubs, mode, time_limit_s, mip_gap, *args, **kwargs)

    monkeypatch.setattr(stages, "run_stage", spy)
    stages.solve_hubs(s, hubs, time_limit_s, requested, 1, None)
    assert gaps["single_use"] == expected
    assert gaps["routing_first"] == requested and gaps["joint"] == requested
