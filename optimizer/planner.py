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
import dataclasses
import math
import multiprocessing as mp
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pyomo.environ as pyo

from optimizer.diagnose import describe_row, describe_unservable
from optimizer.kpis import compute_kpis, reductions
from optimizer.model import ALL, BuiltModel, TripType, build_model
from optimizer.plan import extract_plan, merge_plans, rounding_cost
from optimizer.routes import candidate_routes
from optimizer.scenario import Scenario
from optimizer.solver import Progress, ProgressFn, SolveResult, relative_gap, run_highs

# Share of the time limit given to each stage; the joint solve gets what is left.
# (of the time left when the stage starts; a stage that reaches its gap early leaves the rest)
STAGE_SHARE = {"uncoordinated": 0.1, "single_use": 0.25, "sequential": 0.1}
UNCOORDINATED_GAP = 0.03
# HiGHS options of the warm-started joint solve. Its start (the sequential plan) is usually
# within the requested gap of the optimum already; what the solve has to do is prove it, i.e.
# raise the bound. HiGHS's default heuristic effort (0.05) spent more than half of the joint
# time in RINS/RENS sub-MIPs that did not improve that start (largest hubs: 3-4 % gap after
# 12 s with it, 2.7 % without; 1 % reached after 17 s instead of > 20 s). See docs/optimizer.md.
JOINT_WARM_OPTIONS: dict[str, Any] = {"mip_heuristic_effort": 0.0}
# ... unless the single-use stage stopped above max(3 x the requested gap, 3 %)
POOR_START_FACTOR = 3.0
POOR_START_MIN = 0.03
# A hub group's budget is OVERCOMMIT times its proportional share of the time left (always
# capped by the deadline). Groups go out largest first and many stop at the requested gap
# before their budget, so a strictly proportional split left the large groups at their time
# limit above the gap while the last ones finished early and left both workers idle for the
# last ~20 s of the county week.
OVERCOMMIT = 1.25
# Wall time a small hub group needs at the least (four stages at their 1 s floors, building
# included; measured 2-3.5 s): kept back for the groups not yet started, so that the last
# groups are not pushed past the deadline (at 200 % of the county they were, by 5 s).
MIN_GROUP_S = 2.5


@dataclass
class StageOutcome:
    """One mode's plan for a set of hubs."""

    status: str
    objective: float | None
    bound: float | None
    plan: dict[str, Any] | None
    stats: dict[str, float] = field(default_factory=dict)
    diagnosis: list[dict[str, Any]] = field(default_factory=list)
    # the joint solution by (variable name, index), kept when a hub group stopped above the
    # requested gap so that a second pass can start from it (see `refine_joint`)
    start: dict[tuple[str, Any], float] | None = None


@dataclass
class PlanResult:
    """Everything `packloop plan solve` prints or writes."""

    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    plan: dict[str, Any] | None
    kpis: dict[str, Any] | None
    baselines: dict[str, Any]
    stats: dict[str, Any]
    diagnosis: list[dict[str, Any]]
    factor_set: str = ""
    rounding: dict[str, float] = field(default_factory=dict)
    routes: list[list[int]] | None = None  # CVRPLIB numbering, for --vrplib

    def to_json_dict(self) -> dict[str, Any]:
        trips = []
        for t in (self.plan or {}).get("trips", []):
            trips.append(t)
        out: dict[str, Any] = {
            "status": self.status,
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap,
            "trips": trips,
            "kpis": self.kpis,
            "baselines": self.baselines,
        }
        if self.routes is not None:
            out["routes"] = self.routes
        if self.plan is not None:
            for key in ("packaging", "containers", "recyclables", "service"):
                out[key] = self.plan.get(key, [])
        out["rounding"] = self.rounding
        out["diagnosis"] = self.diagnosis
        out["stats"] = self.stats
        out["factor_set"] = self.factor_set
        return out


def _active_villages(s: Scenario) -> set[str]:
    act = {g.village_id for g in s.demand if g.parcels > 0 or (g.volume_litres or 0) > 0}
    act |= {w.village_id for w in s.outstanding_waste if w.grams > 0}
    return act


def _max_stops(s: Scenario) -> int:
    return max(v.max_stops for v in s.vehicle_types if v.base == "hub")


def _routes_for(s: Scenario, hubs: list[str]) -> dict[str, list]:
    """Candidate trips of `hubs`' milk runs (each group's worker derives them itself)."""
    routes = candidate_routes(s, _active_villages(s), _max_stops(s))
    return {h: r for h, r in routes.items() if h in hubs}


def _queue_reporter(queue) -> ProgressFn | None:
    """Progress from a worker process, sent to the parent's `drain` through `queue`."""
    if queue is None:
        return None

    def report(p: Progress) -> None:
        queue.put((p.incumbent, p.bound, p.gap, p.elapsed_s, p.label))
    return report


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


def _copy_values(src: pyo.ConcreteModel, dst: pyo.ConcreteModel) -> None:
    """Stage-2 (joint, trips fixed) values as the joint model's starting point: the models
    are built by the same code from the same data, so components and indices coincide."""
    for comp in src.component_objects(pyo.Var, active=True):
        other = dst.find_component(comp.name)
        for idx, v in comp.items():
            if idx in other:
                other[idx].set_value(v.value, skip_validation=True)


_TRIP_INDEXED = {"trips": 0, "trunk_collect": 0, "load_down": 1, "load_up": 1, "pick": 1,
                 "collect": 1, "trunk_down": 1, "trunk_up": 1}  # 0: the index is t; 1: t first


def _uncoordinated_as_start(src: BuiltModel, dst: BuiltModel) -> bool:
    """Set the single-use model's variables to the uncoordinated plan, which is feasible for
    it: each single-purpose trip becomes a trip of the same route, vehicle and day that may
    carry everything (counts added up, capped at the trip type's bound, which still has room
    for all its villages may need), presale groups on their first day. Returns False if a trip
    has no counterpart (then the stage starts cold).

    With it the single-use stage never ends worse than the uncoordinated baseline, so
    sequential <= uncoordinated holds by construction, and a single-use stage cut short by the
    deadline still has a plan to hand on."""
    index = {t: k for k, t in enumerate(dst.trips)}
    mapped = []
    for t in src.trips:
        k = index.get(dataclasses.replace(t, purpose=ALL))
        if k is None:
            return False
        mapped.append(k)
    vals: dict[tuple[str, Any], float] = defaultdict(float)
    for comp in src.model.component_objects(pyo.Var, active=True):
        where = _TRIP_INDEXED.get(comp.name)
        for idx, v in comp.items():
            if not v.value:
                continue
            if where == 0:
                idx = mapped[idx]
            elif where == 1:
                idx = (mapped[idx[0]], *idx[1:])
            vals[(comp.name, idx)] += v.value
    for gi, days in dst.flex_groups.items():
        vals[("serve", (gi, days[0]))] = 1.0
    m = dst.model
    for comp in m.component_objects(pyo.Var, active=True):
        for v in comp.values():
            v.set_value(0.0, skip_validation=True)
    for (name, idx), x in vals.items():
        comp = m.find_component(name)
        if comp is None or idx not in comp:
            return False
        var = comp[idx]
        if name == "trips" and var.ub is not None:
            x = min(x, var.ub)
        var.set_value(x, skip_validation=True)
    return True


def _stage(
    s: Scenario, routes, hubs: list[str], mode: str, time_limit_s, mip_gap, threads, progress,
    fixed_trips=None, warm_from: BuiltModel | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[StageOutcome, BuiltModel]:
    reused = warm_from is not None and mode == "joint" and warm_from.mode == "joint"
    if reused:
        # the sequential stage-2 model *is* the joint model with its trips fixed: free them
        # and start from its solution, instead of building the same model again
        b = warm_from
        for v in b.model.trips.values():
            v.unfix()
        build_s = 0.0
    else:
        b = build_model(s, routes, mode=mode if mode != "sequential" else "joint", hubs=hubs,
                        fixed_trips=fixed_trips)
        build_s = b.build_s
    if b.unservable:
        return StageOutcome("infeasible", None, None, None,
                            diagnosis=describe_unservable(s, b.unservable)), b
    warm = False
    if warm_from is not None and warm_from.mode == "uncoordinated":
        warm = _uncoordinated_as_start(warm_from, b)
    elif warm_from is not None:
        if not reused:
            _copy_values(warm_from.model, b.model)
        warm = True
    r: SolveResult = run_highs(b.model, time_limit_s=time_limit_s, mip_gap=mip_gap,
                               threads=threads, warm_start=warm, progress=progress,
                               label=f"{mode}:{','.join(hubs) if len(hubs) < 4 else len(hubs)}",
                               options=options)
    stats = {
        "build_s": build_s, "compile_s": r.compile_s, "handover_s": r.handover_s,
        "highs_s": r.highs_s, "load_s": r.load_s, "columns": r.num_cols, "rows": r.num_rows,
        "integers": r.num_integers, "nonzeros": r.nonzeros,
    }
    if r.objective is None:
        diag = [describe_row(s, name, amount) for name, amount in r.violated_rows]
        if not diag:
            diag = [{"what": "solver", "why": f"no solution found ({r.status})"}]
        return StageOutcome(r.status, None, None, None, stats, diag), b
    plan = extract_plan(b, s)
    return StageOutcome(r.status, r.objective, r.bound, plan, stats), b


def _values_of(b: BuiltModel) -> dict[tuple[str, Any], float]:
    return {(comp.name, idx): v.value
            for comp in b.model.component_objects(pyo.Var, active=True)
            for idx, v in comp.items() if v.value}


# HiGHS's own mip_rel_gap, which applies when the caller gives none
HIGHS_DEFAULT_GAP = 1e-4


def _above_gap(o: StageOutcome, mip_gap: float | None) -> bool:
    gap = HIGHS_DEFAULT_GAP if mip_gap is None else max(mip_gap, 1e-9)
    return (o.objective is not None and o.bound is not None
            and relative_gap(o.objective, o.bound) > gap + 1e-12)


def refine_joint(
    s: Scenario, hubs: list[str], prev: StageOutcome, time_limit_s: float,
    mip_gap: float | None, threads: int | None, progress: ProgressFn | None = None,
) -> StageOutcome:
    """Second pass for a hub group whose joint solve hit its time budget above the gap:
    solve the joint model again from its incumbent with the time the quicker groups left.
    HiGHS's search tree is lost between the passes, but its root (cuts included) takes a
    few seconds and the bound then rises past where the first pass stopped. The better
    objective and the higher bound of the two passes are kept: both are valid."""
    routes = _routes_for(s, hubs)
    b = build_model(s, routes, mode="joint", hubs=hubs)
    for (name, idx), x in (prev.start or {}).items():
        comp = b.model.find_component(name)
        if comp is not None and idx in comp:
            comp[idx].set_value(x, skip_validation=True)
    r = run_highs(b.model, time_limit_s=time_limit_s, mip_gap=mip_gap, threads=threads,
                  warm_start=bool(prev.start), progress=progress,
                  label=f"joint-refine:{','.join(hubs) if len(hubs) < 4 else len(hubs)}",
                  options=JOINT_WARM_OPTIONS)
    stats = dict(prev.stats)
    stats["refine_highs_s"] = r.highs_s
    bound = prev.bound
    if r.bound is not None and (bound is None or r.bound > bound):
        bound = r.bound
    better = r.objective is not None and prev.objective is not None and (
        r.objective < prev.objective - 1e-9 * max(1.0, abs(prev.objective)))
    objective = r.objective if better else prev.objective
    out = StageOutcome("feasible", objective, bound, extract_plan(b, s) if better else prev.plan,
                       stats, prev.diagnosis)
    if _above_gap(out, mip_gap):
        out.status = "time_limit"
    return out


def _refine_worker(args):
    s, hubs, prev, deadline, gap, threads, queue = args
    tl = max(1.0, deadline - time.time())
    return hubs, refine_joint(s, hubs, prev, tl, gap, threads, _queue_reporter(queue))


def _fixed_trips_of(b: BuiltModel) -> dict[TripType, int]:
    return {t: int(round(pyo.value(b.model.trips[k]))) for k, t in enumerate(b.trips)}


def solve_hubs(
    s: Scenario, hubs: list[str], time_limit_s: float | None, mip_gap: float | None,
    threads: int | None, progress: ProgressFn | None, baselines: bool = True,
    only_uncoordinated: bool = False, skip_joint: bool = False,
) -> dict[str, StageOutcome]:
    """All stages for one group of hubs: uncoordinated, sequential (2 stages), joint."""
    routes = _routes_for(s, hubs)
    out: dict[str, StageOutcome] = {}
    t0 = time.perf_counter()

    def budget(share: float | None) -> float | None:
        if time_limit_s is None:
            return None
        left = time_limit_s - (time.perf_counter() - t0)
        if share is None:
            return max(1.0, left)
        return max(1.0, left * share)

    b0: BuiltModel | None = None
    if baselines:
        # The uncoordinated baseline is solved to a looser gap (at least 3 %, reported with
        # it): it is tens of per cent worse than the joint plan, and its solve time is better
        # spent proving the joint plan's bound.
        out["uncoordinated"], b0 = _stage(
            s, routes, hubs, "uncoordinated",
            budget(None if only_uncoordinated else STAGE_SHARE["uncoordinated"]),
            max(mip_gap or 0.0, UNCOORDINATED_GAP), threads, None)
        if only_uncoordinated:
            return out
    unc = out.get("uncoordinated")
    seq1, b1 = _stage(s, routes, hubs, "single_use", budget(STAGE_SHARE["single_use"]), mip_gap,
                      threads, None,
                      warm_from=b0 if unc is not None and unc.plan is not None else None)
    out["single_use"] = seq1
    warm = None
    if seq1.plan is not None:
        seq2, b2 = _stage(s, routes, hubs, "sequential", budget(STAGE_SHARE["sequential"]),
                          mip_gap, threads, None, fixed_trips=_fixed_trips_of(b1))
        # Stage 2 of the sequential baseline only chooses packaging and loads for fixed trips:
        # its bound is not a bound of any wider problem.
        seq2.bound = seq2.objective if seq2.objective is not None else None
        out["sequential"] = seq2
        if seq2.plan is not None:
            warm = b2
    if skip_joint:
        return out
    # Without primal heuristics only when the start is good: a single-use stage cut short
    # far above the gap (hub groups squeezed by the deadline) leaves a start that the
    # heuristics do improve.
    good_start = seq1.objective is not None and seq1.bound is not None and (
        relative_gap(seq1.objective, seq1.bound) <= max(POOR_START_FACTOR * (mip_gap or 0.0),
                                                        POOR_START_MIN))
    joint, bj = _stage(s, routes, hubs, "joint", budget(None), mip_gap, threads, progress,
                       warm_from=warm,
                       options=JOINT_WARM_OPTIONS if warm is not None and good_start else None)
    if _above_gap(joint, mip_gap) and joint.plan is not None:
        joint.start = _values_of(bj)
    seq = out.get("sequential")
    if (seq is not None and seq.plan is not None and joint.objective is not None
            and joint.objective > seq.objective + 1e-6 * max(1.0, abs(seq.objective))):
        # cannot happen with a feasible warm start; kept as a guard for HiGHS rejecting it
        joint = StageOutcome(joint.status, seq.objective, joint.bound, seq.plan, joint.stats)
    if joint.plan is None and seq is not None and seq.plan is not None:
        joint = StageOutcome("time_limit", seq.objective, joint.bound, seq.plan, joint.stats)
    out["joint"] = joint
    # wall time of this group's stages (objective) and the budget it was given (bound)
    out["_time_s"] = StageOutcome("ok", time.perf_counter() - t0, time_limit_s, None)
    return out


def _worker(args):
    """One hub group in a worker process. Its time budget is set when it starts: its share of
    the time left before the global deadline, in proportion to its size among the groups not
    yet started (groups go out largest first), so time a quick hub leaves over goes to the
    hubs after it."""
    s, hubs, deadline, share, gap, threads, baselines, queue, reserve = args
    tl = None
    if deadline is not None:
        tl = max(1.0, (deadline - time.time() - reserve) * min(1.0, OVERCOMMIT * share))
    return hubs, solve_hubs(s, hubs, tl, gap, threads, _queue_reporter(queue), baselines)


# A second pass runs only if at least this much time is left before the deadline: below
# it, HiGHS would spend the pass re-solving the root and stop where the first pass did.
MIN_SECOND_PASS_S = 6.0
# kept free before the deadline for building the model, HiGHS's overshoot and the KPIs
SECOND_PASS_MARGIN_S = 2.0


def _second_pass(s: Scenario, parts: list[dict[str, StageOutcome]], pool, deadline,
                 mip_gap, workers: int, queue, drain) -> None:
    """Give the time the quick hub groups left over to the groups that stopped above the
    gap at their budget, most absolute gap first, until the deadline.

    Budgets are set when a group starts, before anyone knows which groups are hard; on the
    county week most groups reach the gap in a fraction of their budget and the last
    seconds were left idle while one or two hubs held the county gap above the target."""
    if deadline is None:
        return
    todo = sorted((p for p in parts if _above_gap(p["joint"], mip_gap)
                   and p["joint"].start is not None),
                  key=lambda p: -(p["joint"].objective - p["joint"].bound))
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
            args = (s, p["joint"].plan["hubs"], p["joint"], time.time() + share, mip_gap, 1,
                    queue)
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
    if any(o.plan is None for o in outs):
        bad = [o.status for o in outs if o.plan is None]
        return StageOutcome("infeasible" if "infeasible" in bad else bad[0], None, None, None,
                            diagnosis=diag)
    obj = sum(o.objective for o in outs)
    bound = sum(o.bound for o in outs) if all(o.bound is not None for o in outs) else None
    statuses = {o.status for o in outs}
    status = "optimal" if statuses == {"optimal"} else (
        "time_limit" if "time_limit" in statuses else "feasible")
    stats: dict[str, float] = defaultdict(float)
    for o in outs:
        for k, v in o.stats.items():
            stats[k] += v
    return StageOutcome(status, obj, bound, merge_plans([o.plan for o in outs]), dict(stats), diag)


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
    used = defaultdict(int)
    for t in plan["trips"]:
        if t["kind"] == "trunk":
            used[(t["vehicle_type"], t["day"])] += 1
    vts = {v.vehicle_type: v for v in s.vehicle_types}
    return all(vts[v].count is None or n <= vts[v].count * vts[v].max_trips_per_day
               for (v, _d), n in used.items())


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
    """Plan `scenario`: joint plan, KPIs, and the uncoordinated and sequential baselines."""
    t0 = time.perf_counter()
    s = scenario
    if s.routing.single_visit:
        from optimizer.cvrp import solve_partition

        return solve_partition(s, time_limit_s=time_limit_s, mip_gap=mip_gap, threads=threads,
                               progress=progress)
    active = _active_villages(s)
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
        size = defaultdict(int)
        for g in s.demand:
            size[vill_hub[g.village_id]] += 1
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
        linked = [m for m in modes
                  if combined[m].plan is not None and not _county_fleet_ok(s, combined[m].plan)]
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
            seq = combined["sequential"]
            joint = combined["joint"]
            if (seq.plan is not None and (joint.plan is None or joint.objective
                                          > seq.objective + 1e-6 * max(1.0, abs(seq.objective)))):
                combined["joint"] = StageOutcome("feasible", seq.objective, joint.bound,
                                                 seq.plan, joint.stats)
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
    status = joint.status
    if joint.plan is not None:
        status = "optimal" if gap is not None and gap <= 1e-9 else (
            "time_limit" if status.startswith("time_limit") else "feasible")
    elif status.startswith("time_limit"):
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


__all__ = ["ALL", "PlanResult", "solve"]
