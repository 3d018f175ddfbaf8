"""One hub group's solves: the uncoordinated baseline, the two stages of the sequential
baseline, the warm-started joint plan, and a second pass for a joint solve that stopped
above its gap. What runs here runs in a worker process; how the groups share the time
and the workers, and how their plans combine, is :mod:`optimizer.planner`'s business.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import pyomo.environ as pyo

from optimizer.diagnose import describe_row, describe_unservable
from optimizer.model import BuiltModel, build_model
from optimizer.plan import extract_plan
from optimizer.routes import hub_routes
from optimizer.scenario import Scenario
from optimizer.solver import Progress, ProgressFn, SolveResult, relative_gap, run_highs
from optimizer.trips import Mode, TripType
from optimizer.warmstart import copy_values, set_values, uncoordinated_as_start, values_of

# Share of the time limit given to each stage; the joint solve gets what is left.
# (of the time left when the stage starts; a stage that reaches its gap early leaves the rest)
STAGE_SHARE = {"uncoordinated": 0.1, "single_use": 0.25, "sequential": 0.1}
UNCOORDINATED_GAP = 0.03
# HiGHS options of the warm-started joint solve. Its start (the sequential plan) is usually
# within the requested gap of the optimum already; what the solve has to do is prove it, i.e.
# raise the bound, and HiGHS's default primal heuristics spend most of the time in sub-MIPs
# that do not improve that start (figures in docs/optimizer.md).
JOINT_WARM_OPTIONS: dict[str, Any] = {"mip_heuristic_effort": 0.0}
# ... unless the single-use stage stopped above max(3 x the requested gap, 3 %)
POOR_START_FACTOR = 3.0
POOR_START_MIN = 0.03
# a model's mode, or stage 2 of the sequential baseline (a joint model with fixed trips)
StageMode = Mode | Literal["sequential"]


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


# HiGHS's own mip_rel_gap, which applies when the caller gives none
HIGHS_DEFAULT_GAP = 1e-4


def above_gap(o: StageOutcome, mip_gap: float | None) -> bool:
    gap = HIGHS_DEFAULT_GAP if mip_gap is None else max(mip_gap, 1e-9)
    return (o.objective is not None and o.bound is not None
            and relative_gap(o.objective, o.bound) > gap + 1e-12)


def queue_reporter(queue) -> ProgressFn | None:
    """Progress from a worker process, sent to the parent's `drain` through `queue`."""
    if queue is None:
        return None

    def report(p: Progress) -> None:
        queue.put((p.incumbent, p.bound, p.gap, p.elapsed_s, p.label))
    return report


def run_stage(
    s: Scenario, routes, hubs: list[str], mode: StageMode, time_limit_s, mip_gap, threads, progress,
    fixed_trips=None, warm_from: BuiltModel | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[StageOutcome, BuiltModel]:
    """Build and solve one stage (mode) for `hubs`, started from `warm_from`'s solution
    when given; returns the model too, as the next stage's start."""
    reused = warm_from is not None and mode == "joint" and warm_from.mode == "joint"
    if reused:
        # the sequential stage-2 model *is* the joint model with its trips fixed: free them
        # and start from its solution, instead of building the same model again
        assert warm_from is not None  # implied by `reused`
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
        warm = uncoordinated_as_start(warm_from, b)
    elif warm_from is not None:
        if not reused:
            copy_values(warm_from.model, b.model)
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


def fixed_trips_of(b: BuiltModel) -> dict[TripType, int]:
    return {t: int(round(pyo.value(b.model.trips[k]))) for k, t in enumerate(b.trips)}


def solve_hubs(
    s: Scenario, hubs: list[str], time_limit_s: float | None, mip_gap: float | None,
    threads: int | None, progress: ProgressFn | None, baselines: bool = True,
    only_uncoordinated: bool = False, skip_joint: bool = False,
) -> dict[str, StageOutcome]:
    """All stages for one group of hubs: uncoordinated, sequential (2 stages), joint."""
    routes = hub_routes(s, hubs)
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
        out["uncoordinated"], b0 = run_stage(
            s, routes, hubs, "uncoordinated",
            budget(None if only_uncoordinated else STAGE_SHARE["uncoordinated"]),
            max(mip_gap or 0.0, UNCOORDINATED_GAP), threads, None)
        if only_uncoordinated:
            return out
    unc = out.get("uncoordinated")
    seq1, b1 = run_stage(s, routes, hubs, "single_use", budget(STAGE_SHARE["single_use"]), mip_gap,
                      threads, None,
                      warm_from=b0 if unc is not None and unc.plan is not None else None)
    out["single_use"] = seq1
    warm = None
    if seq1.plan is not None:
        seq2, b2 = run_stage(s, routes, hubs, "sequential", budget(STAGE_SHARE["sequential"]),
                          mip_gap, threads, None, fixed_trips=fixed_trips_of(b1))
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
    joint, bj = run_stage(s, routes, hubs, "joint", budget(None), mip_gap, threads, progress,
                       warm_from=warm,
                       options=JOINT_WARM_OPTIONS if warm is not None and good_start else None)
    if above_gap(joint, mip_gap) and joint.plan is not None:
        joint.start = values_of(bj.model)
    out["joint"] = no_worse_than_sequential(joint, out.get("sequential"))
    # wall time of this group's stages (objective) and the budget it was given (bound)
    out["_time_s"] = StageOutcome("ok", time.perf_counter() - t0, time_limit_s, None)
    return out


def no_worse_than_sequential(joint: StageOutcome, seq: StageOutcome | None,
                             status: str | None = None) -> StageOutcome:
    """The joint outcome, or the sequential plan in its place when the joint solve has no
    plan or a worse one. The warm start makes the latter impossible; this guards against
    HiGHS rejecting the start. Its status: `status`, else the joint solve's (no plan:
    "time_limit")."""
    if seq is None or seq.plan is None or seq.objective is None:
        return joint
    if joint.plan is not None and joint.objective is not None and (
            joint.objective <= seq.objective + 1e-6 * max(1.0, abs(seq.objective))):
        return joint
    status = status or (joint.status if joint.plan is not None else "time_limit")
    return StageOutcome(status, seq.objective, joint.bound, seq.plan, joint.stats)


def refine_joint(
    s: Scenario, hubs: list[str], prev: StageOutcome, time_limit_s: float,
    mip_gap: float | None, threads: int | None, progress: ProgressFn | None = None,
) -> StageOutcome:
    """Second pass for a hub group whose joint solve hit its time budget above the gap:
    solve the joint model again from its incumbent with the time the quicker groups left.
    HiGHS's search tree is lost between the passes, but its root (cuts included) takes a
    few seconds and the bound then rises past where the first pass stopped. The better
    objective and the higher bound of the two passes are kept: both are valid."""
    routes = hub_routes(s, hubs)
    b = build_model(s, routes, mode="joint", hubs=hubs)
    set_values(b.model, prev.start or {})
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
    if above_gap(out, mip_gap):
        out.status = "time_limit"
    return out
