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


def test_a_group_without_room_for_its_floors_and_a_build_skips_the_floors(monkeypatch):
    """After its single-use stage the group's budget is all but spent: the floors' least
    (1 s) would leave it more than a model build past it, and routing first would not be
    built. The floors are skipped, routing first runs, and its model's LP relaxation is the
    bound, where the group kept the floors' own bound (a third of the plan for three of 40
    groups at 200 % of the county on a slow machine). The floors here take their whole
    budget, as there."""
    s = load_scenario(SCENARIO)
    hubs = sorted({v.hub_id for v in s.villages})
    groups: list[stages._Group] = []
    real_run, real_floors = stages._Group.run, stages.joint_floors

    def run(self, stage, mode, *args, **kwargs):
        groups.append(self)
        out = real_run(self, stage, mode, *args, **kwargs)
        if stage == "single_use":
            assert self.time_limit_s is not None
            self.time_limit_s = (self.time_limit_s - self.left_s() + self.params.floors_min_s
                                 - self.built_s - 0.05)
        return out

    budgets: list[float | None] = []

    def floors_take_their_budget(s, routes, hubs, budget_s=None):
        budgets.append(budget_s)
        groups[-1].t0 -= budget_s or 0.0
        return real_floors(s, routes, hubs, budget_s)

    _squeeze(monkeypatch, "joint")  # (this small group's would run in what is left)
    monkeypatch.setattr(stages._Group, "run", run)
    monkeypatch.setattr(stages, "joint_floors", floors_take_their_budget)
    out = stages.solve_hubs(s, hubs, 60.0, 1e-6, 1, None, params=NO_TRUNK_BOUND)
    assert budgets == [0.0]
    assert out["sequential_routing_first"].plan is not None
    joint = out["joint"]
    assert joint.stats.get("bound_from_relaxation") == 1.0
    assert joint.bound <= _joint_optimum(s, hubs) + 1e-6
    check_stage(joint, s, hubs)


@pytest.mark.parametrize("only_uncoordinated", [True, False])
def test_the_uncoordinated_baseline_alone_gets_no_second_try(monkeypatch, only_uncoordinated):
    """A first plan that found nothing is tried again with twice its time, since every later
    stage needs it; the uncoordinated baseline alone (the linked model of a county whose
    fleet binds) is not worth running past the deadline: no second try (at 200 % of the
    county that try would have had 65 s)."""
    s = load_scenario(SCENARIO)
    hubs = sorted({v.hub_id for v in s.villages})
    tries: list[str] = []

    def finds_nothing(s, routes, hubs, mode, *args, **kwargs):
        tries.append(mode)
        return stages.StageOutcome("time_limit_no_solution", None, None, None), None

    monkeypatch.setattr(stages, "run_stage", finds_nothing)
    stages.solve_hubs(s, hubs, 5.0, None, 1, None, True,
                      only_uncoordinated=only_uncoordinated)
    assert tries.count("uncoordinated") == (1 if only_uncoordinated else 2)


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


@pytest.mark.parametrize(("time_limit_s", "requested", "expected", "baselines"), [
    (60.0, None, stages.SINGLE_USE_GAP, None), (60.0, 1e-4, stages.SINGLE_USE_GAP, 1e-4),
    (60.0, 0.05, stages.SINGLE_USE_GAP, stages.SINGLE_USE_GAP), (None, 1e-4, 1e-4, 1e-4),
    (None, 0.2, stages.SINGLE_USE_GAP, stages.SINGLE_USE_GAP), (None, None, None, None)])
def test_a_time_limited_single_use_stage_stops_at_one_per_cent(monkeypatch, time_limit_s,
                                                               requested, expected, baselines):
    """Without --gap the single-use stage chased HiGHS's default 0.01 % to the end of its
    share (county week hub H01: the same plan after 4.1 s and 13.5 s), time the joint stage
    needs. Under a time limit it stops at 1 %; without a limit (the value study) at the
    requested gap. Neither it nor the sequential baselines stop above 1 % whatever --gap
    asks of the joint plan (at --gap 0.2 a baseline 19.6 % from its optimum made the joint
    plan look 11.5 % cheaper), and the uncoordinated stage stops at 3 %."""
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
    assert gaps["routing_first"] == baselines and gaps["joint"] == requested
    assert gaps["uncoordinated"] == stages.UNCOORDINATED_GAP


def test_routing_first_claims_a_bound_only_on_proven_single_use_trips():
    """Stage 2 of routing first runs on fixed trips, so HiGHS proves it "optimal" with bound =
    objective; but it bounds routing-first planning only when its single-use trips are
    optimal. Otherwise the baseline has no bound, and the single-use stage's status."""
    rf = stages.StageOutcome("optimal", 1088.74, 1088.74, {"trips": []}, {"highs_s": 0.1})
    cut = stages.StageOutcome("time_limit", 1000.0, 980.0, {"trips": []})
    out = stages.on_single_use_trips(rf, cut)
    assert out.status == "time_limit" and out.bound is None
    assert out.objective == rf.objective and out.stats["single_use_gap"] == pytest.approx(0.02)
    loose = stages.StageOutcome("feasible", 1000.0, 990.0, {"trips": []})
    assert stages.on_single_use_trips(rf, loose).status == "feasible"
    proven = stages.StageOutcome("optimal", 1000.0, 1000.0, {"trips": []})
    kept = stages.on_single_use_trips(rf, proven)
    assert kept.status == "optimal" and kept.bound == rf.bound


@pytest.mark.slow
def test_a_loose_gap_does_not_inflate_the_joint_plans_gain():
    """tiny's presale case: at the default gap the joint plan and the better sequential one
    cost the same; at --gap 0.2 the baselines used to stop 19.6 % from their optimum and the
    joint plan was reported 11.5 % cheaper than sequential. The baselines now stop at 1 %
    at most, so the gain is the same within that."""
    s = load_scenario("examples/scenarios/stress/presale_thinning.yaml")
    hubs = sorted({v.hub_id for v in s.villages})
    gains = []
    for gap in (None, 0.2):
        out = stages.solve_hubs(s, hubs, 15.0, gap, 1, None)
        seq, joint = out["sequential"], out["joint"]
        assert seq.objective is not None and joint.objective is not None
        gains.append((seq.objective - joint.objective) / seq.objective)
    assert gains[1] <= gains[0] + stages.SINGLE_USE_GAP + 1e-9
