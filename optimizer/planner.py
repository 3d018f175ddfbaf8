"""Plan a scenario: decompose by hub, compute the two baselines and the warm-started joint
plan with the same model code, and package the result.

Hubs share nothing but the county trunk fleet, so each hub is solved as its own sub-problem
(in parallel processes). The sum of the sub-problems' optima is a lower bound of the whole
problem (dropping the shared-fleet rows is a relaxation); when the combined plan also respects
the county fleet it is optimal for the whole problem, otherwise the whole problem is solved
in one model with the county fleet rows linking the hubs.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import multiprocessing as mp
import os
import time
from collections import defaultdict
from typing import Any

from optimizer.kpis import compute_kpis, reductions
from optimizer.plan import merge_plans, rounding_cost
from optimizer.result import PlanResult, PlanStatus
from optimizer.routes import active_villages
from optimizer.scenario import Scenario, ScenarioError
from optimizer.solver import Progress, ProgressFn, relative_gap
from optimizer.stages import (
    StageOutcome,
    above_gap,
    no_worse_than_sequential,
    queue_reporter,
    refine_joint,
    solve_hubs,
)

# A hub group's budget is OVERCOMMIT times its proportional share of the time left (always
# capped by the deadline). Groups go out largest first and many stop at the requested gap
# before their budget: a strictly proportional split leaves the large groups at their time
# limit above the gap while the last ones finish early and the workers idle.
OVERCOMMIT = 1.25
# Wall time a small hub group needs at the least (four stages at their 1 s floors, building
# included), kept back for the groups not yet started so that the last ones are not pushed
# past the deadline.
MIN_GROUP_S = 2.5


def _report_done(progress: ProgressFn | None, parts: list[dict[str, StageOutcome]],
                 total: int, t0: float) -> None:
    """One report per finished hub group (its HiGHS solve may have sent none): the joint
    objectives of the groups done so far."""
    res = parts[-1]
    if progress is None or res["joint"].objective is None:
        return
    done = sum(p["joint"].objective for p in parts if p["joint"].objective is not None)
    progress(Progress(done, math.nan, math.nan, time.perf_counter() - t0,
                      f"hub {len(parts)}/{total} done"))


def _refine_worker(args):
    s, hubs, prev, deadline, gap, threads, queue = args
    tl = max(1.0, deadline - time.time())
    return hubs, refine_joint(s, hubs, prev, tl, gap, threads, queue_reporter(queue))


def _worker(args):
    """One hub group in a worker process. Its time budget is set when it starts: its share of
    the time left before the global deadline, in proportion to its size among the groups not
    yet started (groups go out largest first), so time a quick hub leaves over goes to the
    hubs after it."""
    s, hubs, deadline, share, gap, threads, baselines, queue, reserve = args
    tl = None
    if deadline is not None:
        tl = max(1.0, (deadline - time.time() - reserve) * min(1.0, OVERCOMMIT * share))
    return hubs, solve_hubs(s, hubs, tl, gap, threads, queue_reporter(queue), baselines)


# A second pass runs only if at least this much time is left before the deadline: below
# it, HiGHS would spend the pass re-solving the root and stop where the first pass did.
MIN_SECOND_PASS_S = 6.0
# kept free before the deadline for building the model, HiGHS's overshoot and the KPIs
SECOND_PASS_MARGIN_S = 2.0


def _second_pass(s: Scenario, parts: list[dict[str, StageOutcome]], pool, deadline,
                 mip_gap, workers: int, queue, drain) -> None:
    """Give the time the quick hub groups left over to the groups that stopped above the
    gap at their budget, most absolute gap first, until the deadline.

    Budgets are set when a group starts, before anyone knows which groups are hard: most
    groups reach the gap in a fraction of their budget, while one or two may hold the
    county gap above the target."""
    if deadline is None:
        return

    def abs_gap(p: dict[str, StageOutcome]) -> float:
        o = p["joint"]
        assert o.objective is not None and o.bound is not None  # above_gap checked both
        return o.objective - o.bound

    todo = sorted((p for p in parts if above_gap(p["joint"], mip_gap)
                   and p["joint"].start is not None),
                  key=lambda p: -abs_gap(p))
    if not todo or deadline - SECOND_PASS_MARGIN_S - time.time() < MIN_SECOND_PASS_S:
        return
    joint = _combine(parts, "joint")
    if joint.plan is None or not _county_fleet_ok(s, joint.plan):
        return  # the linked whole-county solve replaces these plans and needs the time
    waiting = list(todo)
    futs: dict = {}

    def submit() -> None:
        # each gets its share of the time left among the groups still to refine
        while waiting and len(futs) < workers:
            left = deadline - SECOND_PASS_MARGIN_S - time.time()
            share = left * min(1.0, workers / (len(waiting) + len(futs)))
            if share < MIN_SECOND_PASS_S:
                waiting.clear()
                return
            p = waiting.pop(0)
            plan = p["joint"].plan
            assert plan is not None  # solve_hubs keeps a start only with a plan
            args = (s, plan["hubs"], p["joint"], time.time() + share, mip_gap, 1, queue)
            futs[pool.submit(_refine_worker, args)] = p

    submit()
    while futs:
        finished, _ = cf.wait(set(futs), timeout=0.5, return_when=cf.FIRST_COMPLETED)
        drain()
        for f in finished:
            p = futs.pop(f)
            _hubs, refined = f.result()
            p["_second_pass"] = StageOutcome("ok", p["joint"].objective, p["joint"].bound, None)
            p["joint"] = refined
        submit()


def _combine(parts: list[dict[str, StageOutcome]], mode: str) -> StageOutcome:
    outs = [p[mode] for p in parts if mode in p]
    if not outs:
        return StageOutcome("error", None, None, None)
    diag = [d for o in outs for d in o.diagnosis]
    plans = [o.plan for o in outs if o.plan is not None]
    if len(plans) < len(outs):
        bad = [o.status for o in outs if o.plan is None]
        return StageOutcome("infeasible" if "infeasible" in bad else bad[0], None, None, None,
                            diagnosis=diag)
    objectives = [o.objective for o in outs if o.objective is not None]
    assert len(objectives) == len(outs)  # every stage that returns a plan has its objective
    obj = sum(objectives)
    bounds = [o.bound for o in outs if o.bound is not None]
    bound = sum(bounds) if len(bounds) == len(outs) else None
    statuses = {o.status for o in outs}
    status = "optimal" if statuses == {"optimal"} else (
        "time_limit" if "time_limit" in statuses else "feasible")
    stats: dict[str, float] = defaultdict(float)
    for o in outs:
        for k, v in o.stats.items():
            stats[k] += v
    return StageOutcome(status, obj, bound, merge_plans(plans), dict(stats), diag)


def _hub_stats(part: dict[str, StageOutcome]) -> dict[str, Any]:
    """Per hub group: each stage's objective, bound, gap and HiGHS time (where the county's
    time and gap come from)."""
    t = part.get("_time_s")
    some = next((o.plan for o in part.values() if o.plan is not None), None)
    out: dict[str, Any] = {"hubs": some["hubs"] if some else None,
                           "time_s": t.objective if t else None,
                           "budget_s": t.bound if t else None}
    second = part.get("_second_pass")
    if second is not None:
        out["second_pass"] = {"objective_before": second.objective, "bound_before": second.bound}
    for m, o in part.items():
        if m.startswith("_"):
            continue
        out[m] = {"status": o.status, "objective": o.objective, "bound": o.bound,
                  "gap": None if o.objective is None or o.bound is None
                  else relative_gap(o.objective, o.bound),
                  "highs_s": o.stats.get("highs_s"), "build_s": o.stats.get("build_s"),
                  "compile_s": o.stats.get("compile_s")}
    return out


def _county_fleet_ok(s: Scenario, plan: dict[str, Any]) -> bool:
    used: dict[tuple[str, int], int] = defaultdict(int)
    for t in plan["trips"]:
        if t["kind"] == "trunk":
            used[(t["vehicle_type"], t["day"])] += 1
    vts = {v.vehicle_type: v for v in s.vehicle_types}
    for (v, _d), n in used.items():
        count = vts[v].count
        if count is not None and n > count * vts[v].max_trips_per_day:
            return False
    return True


def solve(
    scenario: Scenario,
    *,
    time_limit_s: float | None = None,
    mip_gap: float | None = None,
    threads: int | None = None,
    progress: ProgressFn | None = None,
    baselines: bool = True,
    decompose: bool = True,
) -> PlanResult:
    """Plan `scenario`: joint plan, KPIs, and the uncoordinated and sequential baselines.

    A single-visit scenario (CVRP set partitioning, as imported from CVRPLIB) is another
    problem with its own solver, `optimizer.solve_cvrp`; it is refused here."""
    t0 = time.perf_counter()
    s = scenario
    if s.routing.single_visit:
        raise ScenarioError([("routing.single_visit", "a single-visit (CVRP) scenario is "
                              "solved by optimizer.solve_cvrp, not by the joint planner")])
    active = active_villages(s)
    vill_hub = {v.village_id: v.hub_id for v in s.villages}
    busy = sorted({vill_hub[i] for i in active})
    groups = [[h] for h in busy] if decompose else [busy]
    workers = max(1, min(len(groups), threads or os.cpu_count() or 1))
    parts: list[dict[str, StageOutcome]] = []
    if len(groups) == 1 or workers == 1:
        for g in groups:
            tl = None if time_limit_s is None else time_limit_s / len(groups)
            parts.append(solve_hubs(s, g, tl, mip_gap, 1 if len(groups) > 1 else threads,
                                    progress, baselines))
            _report_done(progress, parts, len(groups), t0)
    else:
        size: dict[str, int] = defaultdict(int)
        for dg in s.demand:
            size[vill_hub[dg.village_id]] += 1
        for w in s.outstanding_waste:
            size[vill_hub[w.village_id]] += 1
        groups.sort(key=lambda g: -sum(size[h] for h in g))
        weights = [sum(size[h] for h in g) + 1 for g in groups]
        suffix = [sum(weights[k:]) for k in range(len(weights))]
        deadline = None if time_limit_s is None else time.time() + time_limit_s
        # not "fork": HiGHS keeps a global thread pool that a forked child inherits broken.
        # (Callers from a script need the usual `if __name__ == "__main__":` guard.)
        ctx = mp.get_context("forkserver")
        manager = ctx.Manager() if progress is not None else None
        queue = manager.Queue() if manager is not None else None

        def drain() -> None:
            # the workers' HiGHS callbacks (joint stage: incumbent, bound, gap) arrive here
            while queue is not None and not queue.empty():
                inc, bnd, gp, el, label = queue.get_nowait()
                assert progress is not None  # the queue exists only for a progress callback
                progress(Progress(inc, bnd, gp, el, label))

        try:
            with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                # the groups still to start after this one keep MIN_GROUP_S each per worker
                futs = {pool.submit(_worker, (s, g, deadline, workers * weights[k] / suffix[k],
                                              mip_gap, 1, baselines, queue,
                                              MIN_GROUP_S * (len(groups) - k - 1) / workers))
                        for k, g in enumerate(groups)}
                try:
                    while futs:
                        finished, futs = cf.wait(futs, timeout=0.5,
                                                 return_when=cf.FIRST_COMPLETED)
                        drain()
                        for f in finished:
                            parts.append(f.result()[1])
                            _report_done(progress, parts, len(groups), t0)
                    _second_pass(s, parts, pool, deadline, mip_gap, workers, queue, drain)
                except BaseException:
                    # Ctrl-C / SIGTERM: stop the hub solves now, not at their time limit.
                    for proc in list(getattr(pool, "_processes", {}).values()):
                        proc.terminate()
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
        finally:
            if manager is not None:
                manager.shutdown()
    modes = ["joint", "sequential", "single_use"] + (["uncoordinated"] if baselines else [])
    combined = {m: _combine(parts, m) for m in modes}
    linked: list[str] = []
    if len(groups) > 1:
        # (combined's keys are `modes`, in order)
        linked = [m for m, c in combined.items()
                  if c.plan is not None and not _county_fleet_ok(s, c.plan)]
        left = None if time_limit_s is None else max(
            10.0, time_limit_s - (time.perf_counter() - t0))
        if "uncoordinated" in linked:
            # the county fleet binds: solve all hubs in one model, linked by its rows
            combined["uncoordinated"] = _combine([solve_hubs(
                s, busy, left, mip_gap, threads, None, True, only_uncoordinated=True)],
                "uncoordinated")
        chain = set(linked) & {"joint", "sequential", "single_use"}
        if chain:
            whole = solve_hubs(s, busy, left, mip_gap, threads, progress, False,
                               skip_joint="joint" not in chain)
            for m in ("sequential", "single_use"):
                if m in chain or m in whole:
                    combined[m] = whole.get(m, StageOutcome(
                        "time_limit_no_solution", None, None, None,
                        diagnosis=[{"what": f"{m} plan", "why": "the county trunk fleet binds "
                                    "and the linked model found no plan in the time left"}]))
            if "joint" in chain:
                combined["joint"] = whole["joint"]
            combined["joint"] = no_worse_than_sequential(
                combined["joint"], combined["sequential"], status="feasible")
    return _result(s, combined, t0, {"groups": len(groups), "workers": workers,
                                     "linked_by_county_fleet": linked,
                                     "hubs": [_hub_stats(p) for p in parts]})


def _result(s: Scenario, combined: dict[str, StageOutcome], t0: float,
            extra: dict[str, Any]) -> PlanResult:
    joint = combined["joint"]
    base: dict[str, Any] = {}
    for name, key in (("uncoordinated", "uncoordinated"), ("sequential", "sequential")):
        c = combined.get(key)
        if c is None:
            continue
        entry: dict[str, Any] = {"status": c.status, "objective": c.objective,
                                 "bound": c.bound,
                                 "gap": None if c.objective is None or c.bound is None
                                 else relative_gap(c.objective, c.bound)}
        if c.plan is not None:
            entry["kpis"] = compute_kpis(c.plan, s)
            entry["trips"] = len(c.plan["trips"])
        else:
            entry["diagnosis"] = c.diagnosis
        base[name] = entry
    kpis = compute_kpis(joint.plan, s) if joint.plan is not None else None
    if kpis is not None:
        for name in ("sequential", "uncoordinated"):
            if name in base and "kpis" in base[name]:
                base[name]["reduction_by_joint"] = reductions(kpis, base[name]["kpis"])
    gap = None
    if joint.objective is not None and joint.bound is not None:
        gap = relative_gap(joint.objective, joint.bound)
    status: PlanStatus
    if joint.plan is not None:
        status = "optimal" if gap is not None and gap <= 1e-9 else (
            "time_limit" if joint.status.startswith("time_limit") else "feasible")
    elif joint.status.startswith("time_limit"):
        status = "time_limit"
    else:
        status = "infeasible"
    stats = {"wall_s": time.perf_counter() - t0, **extra, "joint": joint.stats,
             "stages": {m: c.stats for m, c in combined.items() if m != "joint"}}
    return PlanResult(
        status=status,
        objective=joint.objective,
        bound=joint.bound,
        gap=gap,
        plan=joint.plan,
        kpis=kpis,
        baselines=base,
        stats=stats,
        diagnosis=joint.diagnosis,
        factor_set=s.factor_set,
        rounding=rounding_cost(joint.plan, s) if joint.plan is not None else {},
    )

