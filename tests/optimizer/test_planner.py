"""Plans from `optimizer.solve`: properties of every plan, baselines ordering, warm start,
and infeasibility diagnosis."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import random
import time

import pyomo.environ as pyo
import pytest

import optimizer
from optimizer import planner, stages
from optimizer.baselines import fix_routing
from optimizer.routes import hub_routes
from optimizer.warmstart import uncoordinated_as_start
from tests.optimizer.helpers import TINY, routes_for, tiny_raw
from tests.optimizer.plan_checks import check_result, check_stage


def test_tiny_plan_properties_and_baseline_order():
    """The tiny example: every property holds, KPIs equal the objective recomputed from the
    plan, and sequential <= uncoordinated (the single-use stage starts from the
    uncoordinated plan)."""
    s = optimizer.load_scenario(TINY)
    res = optimizer.solve(s, time_limit_s=30)
    assert res.status == "optimal"
    d = check_result(res, s)
    seq = d["baselines"]["sequential"]["objective"]
    unc = d["baselines"]["uncoordinated"]["objective"]
    assert seq <= unc + 1e-6
    # uncoordinated is single-use only and uses separate trips per class
    unc_k = d["baselines"]["uncoordinated"]["kpis"]
    assert unc_k["reusable_uses"] == 0
    assert unc_k["single_use_grams"] > 0
    # per hub group, the joint stage's floors time and bound source, which add up to the
    # county's (planner.HUB_SEARCH_STATS)
    groups = [h["joint"] for h in res.stats["hubs"]]
    assert sum(g["floors_s"] for g in groups) == pytest.approx(res.stats["joint"]["floors_s"])
    sources = {k for g in groups for k in g if k.startswith("bound_from_")}
    assert sources == {k for k in res.stats["joint"] if k.startswith("bound_from_")}


def _random_variant(seed: int) -> dict:
    """tiny.yaml with random demand, start pool, return rate, box price and horizon end, and
    compartments small enough to bind."""
    rnd = random.Random(seed)
    raw = tiny_raw()
    raw["name"] = f"tiny{seed}"
    for g in raw["demand"]:
        g["parcels"] = rnd.randint(3, 60)
        if g["direction"] == "up":
            g["volume_litres"] = rnd.randint(20, 400)
    raw["container_pools"][0]["count"] = rnd.randint(0, 80)
    raw["packaging"]["reusable"][0]["return_rate"] = rnd.choice([0.8, 0.95, 1.0])
    raw["packaging"]["reusable"][0]["price_cny"] = rnd.uniform(10, 60)
    raw["horizon_end"] = rnd.choice(["cyclic", "boundary"])
    for vt in raw["vehicle_types"]:
        vt["compartments_litres"] = {k: v * rnd.uniform(0.3, 1.0)
                                     for k, v in vt["compartments_litres"].items()}
        vt["max_trips_per_day"] = 3
    return raw


@pytest.mark.parametrize("seed", range(4))
def test_random_plans_satisfy_properties(seed):
    """Randomised variants of the tiny scenario (capacities that bind, boundary or cyclic
    horizon): every plan and both baselines satisfy the property checks."""
    s = optimizer.load_scenario(_random_variant(seed))
    res = optimizer.solve(s, time_limit_s=30)
    if res.status == "infeasible":
        assert res.diagnosis, "infeasible without a diagnosis"
        return
    check_result(res, s)


@pytest.mark.parametrize("seed", [3, 7])
def test_joint_stage_cut_short_is_never_worse_than_its_sequential_start(seed):
    """The joint solve starts from the sequential plan (HiGHS setSolution): stopped after a
    millisecond at a loose gap, it still hands on a plan no worse than that start. Checked
    on the joint stage itself, since `solve` would put the sequential plan in place of a
    missing or worse joint one."""
    s = optimizer.load_scenario(_random_variant(seed))
    routes = hub_routes(s, ["H01"])
    _single_use, b1 = stages.run_stage(s, routes, ["H01"], "single_use", 30, 0.0, 1, None)
    seq, b2 = stages.run_stage(s, routes, ["H01"], "routing_first", 30, 0.0, 1, None,
                               prepare=lambda b: fix_routing(b, b1))
    assert seq.objective is not None
    joint, _ = stages.run_stage(s, routes, ["H01"], "joint", 0.001, 0.5, 1, None, warm_from=b2)
    assert joint.plan is not None and joint.objective is not None
    assert joint.objective <= seq.objective + 1e-6
    check_stage(joint, s, ["H01"])


def test_infeasible_scenario_names_the_demand():
    """Frozen goods with no frozen compartment and no passive packaging: the diagnosis names
    the village, day and class instead of a bare solver status."""
    raw = tiny_raw()
    raw["classes"].append({"class_id": "frozen", "refrigerated": True, "litres_per_parcel": 10})
    raw["packaging"]["single_use"].append({"option_id": "frozen_bag", "class_ids": ["frozen"],
                                           "cost_cny": 1, "waste_grams": 50, "co2e_kg": 0.1})
    raw["demand"].append({"village_id": "H01-V002", "day": 1, "class_id": "frozen",
                          "direction": "down", "parcels": 5})
    res = optimizer.solve(optimizer.load_scenario(raw), time_limit_s=20)
    assert res.status == "infeasible"
    text = " ".join(d["what"] + " " + d["why"] for d in res.diagnosis)
    assert "H01-V002" in text and "frozen" in text and "day 1" in text


def test_infeasible_fleet_is_explained():
    """Too little capacity for the demand: the diagnosis points at the violated rows (from
    HiGHS's feasibility relaxation) in words."""
    raw = tiny_raw()
    for vt in raw["vehicle_types"]:
        if vt["base"] == "hub":
            vt["compartments_litres"] = {k: 50 for k in vt["compartments_litres"]}
            vt["max_trips_per_day"] = 1
    res = optimizer.solve(optimizer.load_scenario(raw), time_limit_s=20)
    assert res.status == "infeasible"
    assert res.diagnosis
    assert all("what" in d and "why" in d for d in res.diagnosis)


def _two_hubs(trucks: int, trips_per_day: int) -> dict:
    """tiny.yaml with a second hub, a mirror of the first, sharing the county trucks."""
    raw = tiny_raw()
    raw["hubs"].append({"hub_id": "H02", "lat": 28.55, "lon": 119.35})
    extra = []
    for v in list(raw["villages"]):
        w = dict(v)
        w["village_id"] = v["village_id"].replace("H01", "H02")
        w["hub_id"] = "H02"
        w["lat"] = v["lat"] - 0.1
        w["lon"] = v["lon"] + 0.15
        extra.append(w)
    raw["villages"] += extra
    raw["demand"] += [{**g, "village_id": g["village_id"].replace("H01", "H02")}
                      for g in raw["demand"]]
    raw["outstanding_waste"] += [{**w, "village_id": w["village_id"].replace("H01", "H02")}
                                 for w in raw["outstanding_waste"]]
    for vt in raw["vehicle_types"]:
        if vt["base"] == "county":
            vt["count"] = trucks
            vt["max_trips_per_day"] = trips_per_day
    return raw


@pytest.mark.slow
def test_decomposed_hubs_equal_the_whole_model():
    """Two hubs solved as separate sub-problems give the same optimum as one model with both
    (the county fleet does not bind)."""
    s = optimizer.load_scenario(_two_hubs(10, 3))
    split = optimizer.solve(s, time_limit_s=60, mip_gap=0.0, threads=2)
    whole = optimizer.solve(s, time_limit_s=60, mip_gap=0.0, decompose=False)
    assert split.stats["groups"] == 2
    assert split.objective == pytest.approx(whole.objective, rel=1e-7)
    check_result(split, s)
    check_result(whole, s)


def _without_chilled_vans(raw: dict, hubs: list[str]) -> dict:
    for vt in raw["vehicle_types"]:
        if vt["vehicle_type"] == "multi_temp_van":
            vt["count_by_hub"] = {h: 0 for h in hubs}
    return raw


@pytest.mark.slow
def test_a_hub_without_a_plan_is_left_out_only_when_asked():
    """Tomorrow's dispatch: H02 has chilled farm shipments and no van with a chilled
    compartment, so no plan of the county exists, and H01's operator got no run sheet
    either. With leave_out_infeasible the plan is H01's, as planned alone, and H02 is
    named with why; without it the county is infeasible as before."""
    s = optimizer.load_scenario(_without_chilled_vans(_two_hubs(10, 3), ["H02"]))
    whole = optimizer.solve(s, time_limit_s=60, mip_gap=0.0, threads=2)
    assert whole.status == "infeasible" and whole.plan is None
    part = optimizer.solve(s, time_limit_s=60, mip_gap=0.0, threads=2,
                           leave_out_infeasible=True)
    alone_raw = _two_hubs(10, 3)
    alone_raw["hubs"] = [h for h in alone_raw["hubs"] if h["hub_id"] == "H01"]
    for key in ("villages", "demand", "outstanding_waste"):
        alone_raw[key] = [x for x in alone_raw[key]
                          if x.get("hub_id", x.get("village_id", "H01")).startswith("H01")]
    alone_raw["container_pools"] = [p for p in alone_raw.get("container_pools", [])
                                    if p["hub_id"] == "H01"]
    alone = optimizer.solve(optimizer.load_scenario(alone_raw), time_limit_s=60,
                            mip_gap=0.0, threads=2)
    assert part.status == alone.status == "optimal"
    assert part.objective == pytest.approx(alone.objective, rel=1e-7)
    assert {t["hub_id"] for t in part.plan["trips"]} == {"H01"}
    assert list(part.stats["left_out"]) == ["H02"]
    assert "no vehicle at H02 has a 'chilled' compartment" in part.stats["left_out"]["H02"]
    assert any(d["what"] == "hub H02" for d in part.diagnosis)
    assert [h["hubs"] for h in part.stats["hubs"]] == [["H01"], ["H02"]]
    # every hub without a plan: nothing to plan, and the county says it is infeasible
    none = optimizer.load_scenario(_without_chilled_vans(_two_hubs(10, 3), ["H01", "H02"]))
    both = optimizer.solve(none, time_limit_s=60, threads=2, leave_out_infeasible=True)
    assert both.status == "infeasible" and "left_out" not in both.stats


def test_county_fleet_links_hubs_when_it_binds():
    """Two county trucks doing two trips a day cannot serve two hubs with separate trips per
    class: the uncoordinated baseline is re-solved with both hubs linked, and the joint plan
    (one trunk trip per hub and day) respects the shared fleet."""
    s = optimizer.load_scenario(_two_hubs(2, 2))
    res = optimizer.solve(s, time_limit_s=60, threads=2)
    assert "uncoordinated" in res.stats["linked_by_county_fleet"]
    per_day: dict[int, int] = {}
    for t in res.plan["trips"]:
        if t["kind"] == "trunk":
            per_day[t["day"]] = per_day.get(t["day"], 0) + 1
    assert max(per_day.values()) <= 4
    check_result(res, s)


def test_a_linked_uncoordinated_baseline_without_time_is_reported_missing(monkeypatch):
    """The uncoordinated plans break the county fleet, and the linked model of all hubs
    needs more time than is left: the baseline is reported missing with the reason, where
    it ran anyway (200 % of the county: 28 s past a 120 s limit, and no plan in them). The
    joint plan is unaffected."""
    real = planner._Schedule.least_s

    def whole_county_is_slow(self, key=None, rows=0):
        return 1e4 if key is None else real(self, key, rows)

    monkeypatch.setattr(planner._Schedule, "least_s", whole_county_is_slow)
    s = optimizer.load_scenario(_two_hubs(2, 2))
    res = optimizer.solve(s, time_limit_s=60, threads=2)
    assert "uncoordinated" in res.stats["linked_by_county_fleet"]
    unc = res.baselines["uncoordinated"]
    assert unc["status"] == "time_limit_no_solution" and "kpis" not in unc
    assert "county trunk vehicles" in unc["diagnosis"][0]["why"]
    assert res.plan is not None
    check_result(res, s)


def test_a_linked_county_far_past_the_time_left_is_not_solved(monkeypatch):
    """The hubs' joint plans together need more county trucks than there are, and a model
    linking all hubs needs far more than the time left (made so here): the plan ends at
    once, without one, saying how far over the fleet the hub plans are and how long the
    linked model needs. Before, it ran that model anyway (200 % of the county under load:
    86 s past a 120 s limit) and ended with no plan and a reason that named a budget."""
    real = planner._Schedule.least_s

    def whole_county_is_slow(self, key=None, rows=0):
        return 1e4 if key is None else real(self, key, rows)

    whole_runs: list[list[str]] = []
    real_solve_hubs = planner.solve_hubs

    def spy(s, hubs, *args, **kwargs):
        whole_runs.append(hubs)
        return real_solve_hubs(s, hubs, *args, **kwargs)

    monkeypatch.setattr(planner._Schedule, "least_s", whole_county_is_slow)
    monkeypatch.setattr(planner, "solve_hubs", spy)
    s = optimizer.load_scenario(_two_hubs(1, 1))
    started = time.perf_counter()
    res = optimizer.solve(s, time_limit_s=60, threads=2)
    assert "joint" in res.stats["linked_by_county_fleet"]
    assert res.plan is None and res.status == "time_limit"
    why = res.diagnosis[0]["why"]
    assert "vehicle-days of trunk_reefer on day 0, the county has 1" in why, why
    assert "past the time limit" in why
    assert not any(len(h) > 1 for h in whole_runs)
    assert time.perf_counter() - started < 30


@pytest.mark.slow
def test_an_uncoordinated_baseline_over_the_county_fleet_is_infeasible_by_count(monkeypatch):
    """One county truck running three legs a day, two hubs each with ambient and chilled
    loads every day: each hub alone fits, together one class per trunk leg needs four
    legs, 4/3 vehicle-days, a day. The uncoordinated baseline is reported infeasible with
    that count and its linked model is not run (at 200 % of the county it ran 28 s past the
    limit to find nothing); the joint plan, one leg per hub and day, fits."""
    s = optimizer.load_scenario(_two_hubs(1, 3))
    assert planner.uncoordinated_trunk_shortfall(s) == (0, pytest.approx(4 / 3), 1.0)
    assert planner.uncoordinated_trunk_shortfall(optimizer.load_scenario(_two_hubs(2, 2))) is None
    linked_runs: list[bool] = []
    real = planner.solve_hubs

    def spy(*args, **kwargs):
        linked_runs.append(bool(kwargs.get("only_uncoordinated")))
        return real(*args, **kwargs)

    monkeypatch.setattr(planner, "solve_hubs", spy)
    res = optimizer.solve(s, time_limit_s=60, threads=2)
    unc = res.baselines["uncoordinated"]
    assert unc["status"] == "infeasible", unc
    assert "1.3 vehicle-days" in unc["diagnosis"][0]["why"]
    assert "uncoordinated" in res.stats["linked_by_county_fleet"]
    assert True not in linked_runs
    assert res.plan is not None
    check_result(res, s)


@pytest.mark.slow
def test_a_group_without_room_for_its_later_stages_still_has_a_bound(monkeypatch):
    """A group whose later stages never start keeps its first plan, with its joint model's
    LP relaxation as bound: the county has a gap, and a valid one. Before, such a group had
    no bound and the county no gap (the last of 40 groups at 200 % of the county)."""
    real = planner._Schedule.start

    def no_room_for_the_second(self):
        if self.phase == "later" and self.pending and self.pending[0] == 1:
            return None
        return real(self)

    monkeypatch.setattr(planner._Schedule, "start", no_room_for_the_second)
    s = optimizer.load_scenario(_two_hubs(10, 3))
    res = optimizer.solve(s, time_limit_s=60, threads=2)
    second = res.stats["hubs"][1]
    assert second["single_use"]["status"] == "time_limit_no_solution"
    assert second["joint"]["bound_from_relaxation"] == 1.0
    assert res.gap is not None and res.bound is not None
    monkeypatch.undo()
    best = optimizer.solve(s, time_limit_s=60, mip_gap=0.0, threads=2)
    assert res.bound <= best.objective * (1 + 1e-7)
    assert second["joint"]["bound"] < second["joint"]["objective"]
    check_result(res, s)


@pytest.mark.slow
def test_progress_reaches_the_caller_from_worker_processes():
    """Incumbent/bound reports from the HiGHS callbacks inside the hub workers reach the
    caller's progress function, labelled by hub, plus one report per finished hub."""
    s = optimizer.load_scenario(_two_hubs(10, 3))
    seen = []
    check_result(optimizer.solve(s, time_limit_s=30, threads=2, progress=seen.append), s)
    labels = [p.label for p in seen]
    assert any(lab.startswith("joint:H0") for lab in labels)
    assert sum(lab.startswith("hub ") for lab in labels) == 2


def test_refine_joint_keeps_the_better_plan_and_the_higher_bound():
    """The second pass starts from a group's stopped joint solve: a worse plan with a weak
    bound (here the uncoordinated plan, with half the joint optimum as its bound) comes back
    as the joint optimum with its proven bound."""
    s = optimizer.load_scenario(tiny_raw())
    out = stages.solve_hubs(s, ["H01"], None, 0.0, 1, None, True)
    unc, joint = out["uncoordinated"], out["joint"]
    assert joint.status == "optimal" and unc.objective > joint.objective
    prev = stages.StageOutcome("time_limit", unc.objective, joint.objective / 2, unc.plan)
    refined = stages.refine_joint(s, ["H01"], prev, 30, 0.0, 1)
    assert refined.objective == pytest.approx(joint.objective, rel=1e-7)
    assert refined.bound == pytest.approx(joint.objective, rel=1e-7)
    assert refined.status == "feasible"
    check_stage(refined, s, ["H01"])
    # a pass that finds nothing better keeps the plan it was given, and the better bound
    same = stages.refine_joint(s, ["H01"], joint, 30, 0.0, 1)
    assert same.plan is joint.plan and same.objective == joint.objective
    check_stage(same, s, ["H01"])


@pytest.mark.slow
def test_second_pass_gives_left_over_time_to_the_group_above_the_gap():
    """A group stopped above the gap (here: H01 made to look stuck at half its bound) is
    solved again with the time left, and comes back at its optimum with a closed gap; the
    group already at its gap is left alone."""
    s = optimizer.load_scenario(_two_hubs(10, 3))
    parts = [stages.solve_hubs(s, [h], None, 0.0, 1, None, False) for h in ("H01", "H02")]
    stuck = parts[0]["joint"]
    optimum = stuck.objective
    parts[0]["joint"] = stages.StageOutcome("time_limit", optimum, optimum / 2, stuck.plan,
                                             start={})
    ctx = mp.get_context("forkserver")
    with cf.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        planner._second_pass(s, parts, pool, time.time() + 40, 0.0, 2, None, lambda: None)
    assert "_second_pass" in parts[0] and "_second_pass" not in parts[1]
    assert parts[0]["joint"].bound == pytest.approx(optimum, rel=1e-7)
    assert parts[0]["joint"].objective == pytest.approx(optimum, rel=1e-7)
    assert parts[0]["_second_pass"].bound == pytest.approx(optimum / 2)
    for hub, part in zip(("H01", "H02"), parts, strict=True):
        check_stage(part["joint"], s, [hub])


def test_one_process_solves_with_different_thread_counts():
    """HiGHS keeps one thread pool per process; a solve asking for another size than the
    first one used to end in status "error"."""
    s = optimizer.load_scenario(tiny_raw())
    joints = [stages.solve_hubs(s, ["H01"], None, 0.0, n, None, False)["joint"]
              for n in (2, 1, 2)]
    assert [j.status for j in joints] == ["optimal"] * 3
    for j in joints:
        check_stage(j, s, ["H01"])


@pytest.mark.parametrize("seed", range(4))
def test_uncoordinated_plan_is_a_feasible_start_for_the_single_use_stage(seed):
    """The single-use stage starts from the uncoordinated plan: mapped onto the single-use
    model it must satisfy every row, and cost what the uncoordinated plan costs."""
    s = optimizer.load_scenario(_random_variant(seed))
    routes = routes_for(s)
    unc, b0 = stages.run_stage(s, routes, ["H01"], "uncoordinated", 30, 0.0, 1, None)
    dst = optimizer.build_model(s, routes, mode="single_use")
    assert uncoordinated_as_start(b0, dst)
    for c in dst.model.component_data_objects(pyo.Constraint, active=True):
        body = pyo.value(c.body)
        assert c.lower is None or body >= pyo.value(c.lower) - 1e-6, c.name
        assert c.upper is None or body <= pyo.value(c.upper) + 1e-6, c.name
    for v in dst.model.component_data_objects(pyo.Var):
        assert v.lb is None or v.value >= v.lb - 1e-9, v.name
        assert v.ub is None or v.value <= v.ub + 1e-9, v.name
    assert pyo.value(dst.model.cost) <= unc.objective + 1e-6
    out = stages.solve_hubs(s, ["H01"], 30, 0.0, 1, None, True)
    assert out["single_use"].objective <= out["uncoordinated"].objective + 1e-6
    for mode in ("uncoordinated", "single_use", "sequential", "joint"):
        check_stage(out[mode], s, ["H01"])


def test_a_single_group_reports_when_it_is_done():
    """The tiny scenario is settled before HiGHS branches (no callback fires), yet the
    caller still hears of the finished hub, with its objective."""
    seen = []
    s = optimizer.load_scenario(tiny_raw())
    res = optimizer.solve(s, time_limit_s=30, progress=seen.append)
    check_result(res, s)
    done = [p for p in seen if p.label == "hub 1/1 done"]
    assert len(done) == 1 and done[0].incumbent == pytest.approx(res.objective)


@pytest.mark.parametrize("seed", range(2))
def test_single_use_stage_cut_short_still_has_the_uncoordinated_start(seed):
    """HiGHS takes the mapped uncoordinated plan as its incumbent: a single-use stage stopped
    after a millisecond (no plan of its own; measured: none without the start) hands on a
    plan no worse than the uncoordinated one."""
    s = optimizer.load_scenario(_random_variant(seed))
    routes = routes_for(s)
    unc, b0 = stages.run_stage(s, routes, ["H01"], "uncoordinated", 30, 0.0, 1, None)
    cut, _ = stages.run_stage(s, routes, ["H01"], "single_use", 0.001, 0.0, 1, None, warm_from=b0)
    assert cut.plan is not None
    assert cut.objective <= unc.objective + 1e-6
    check_stage(unc, s, ["H01"])
    check_stage(cut, s, ["H01"])


def test_a_group_whose_later_stages_fail_keeps_its_first_plan(monkeypatch, caplog):
    """A hub group's later stages raise (a bug): the county still gets a plan, that group's
    first plan, and the result names the group and the error. Before, the exception ended
    the whole plan: every hub's plan lost to one group's optional stages."""
    real = planner.later_stages

    def fails_on_h02(s, hubs, *args, **kwargs):
        if hubs == ["H02"]:
            raise RuntimeError("boom in H02")
        return real(s, hubs, *args, **kwargs)

    monkeypatch.setattr(planner, "later_stages", fails_on_h02)
    s = optimizer.load_scenario(_two_hubs(10, 3))
    res = optimizer.solve(s, time_limit_s=60, threads=1)  # one worker: groups in-process
    assert res.plan is not None
    assert {t["hub_id"] for t in res.plan["trips"]} == {"H01", "H02"}
    why = [d for d in res.diagnosis if d["what"] == "hubs H02"]
    assert why and "later stages failed" in why[0]["why"] and "boom in H02" in why[0]["why"]
    second = res.stats["hubs"][1]
    assert second["joint"]["objective"] == pytest.approx(second["uncoordinated"]["objective"])
    assert "boom in H02" in caplog.text
    check_result(res, s)


def test_a_failed_bound_leaves_the_group_its_first_plan(monkeypatch):
    """The bound of a group without room for its later stages raises: the group keeps its
    first plan, without a bound, and the plan says why."""
    real = planner._Schedule.start

    def no_room_for_the_second(self):
        if self.phase == "later" and self.pending and self.pending[0] == 1:
            return None
        return real(self)

    def broken_bound(*args, **kwargs):
        raise ValueError("no LP today")

    monkeypatch.setattr(planner._Schedule, "start", no_room_for_the_second)
    monkeypatch.setattr(planner, "relaxation_bound", broken_bound)
    s = optimizer.load_scenario(_two_hubs(10, 3))
    res = optimizer.solve(s, time_limit_s=60, threads=1)
    assert res.plan is not None and res.bound is None
    assert any("its bound failed" in d["why"] and "no LP today" in d["why"]
               for d in res.diagnosis)
    check_result(res, s)


def test_a_scenario_without_county_vehicles_says_its_trunk_legs_are_not_planned():
    """A trunk vehicle typed base 'hub' by mistake made the county's trunk legs free (tiny:
    393 CNY instead of 823) without a word; the plan now says so, and only then."""
    raw = tiny_raw()
    for vt in raw["vehicle_types"]:
        if vt["base"] == "county":
            vt["base"] = "hub"
    s = optimizer.load_scenario(raw)
    res = optimizer.solve(s, time_limit_s=30, threads=1)
    assert res.plan is not None
    assert [d["what"] for d in res.diagnosis] == ["trunk legs"]
    assert "base 'county'" in res.diagnosis[0]["why"]
    ok = optimizer.solve(optimizer.load_scenario(tiny_raw()), time_limit_s=30, threads=1)
    assert ok.plan is not None and ok.diagnosis == []
