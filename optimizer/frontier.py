"""The trade-off frontier: what a waste or carbon target costs.

AUGMECON2 (Mavrotas & Florios 2013) on the joint model, for two fronts: cost against
single-use grams, and cost against CO2e. For a front with second criterion f2:

1. *Lexicographic payoff table.* min cost → c*, then min f2 with cost ≤ c* → f2 at the
   cost-optimal end (the nadir); min f2 → f2*, then min cost with f2 ≤ f2* → the cost at the
   other end. The lexicographic second step keeps a weakly dominated plan (same cost, more
   waste; or same waste, more cost) off the front's ends.
2. *Grid.* ε_k = f2* + k (f2nad − f2*) / (N − 1), k = 1 … N − 2, and for each
   min cost − δ r1 · s/r2  subject to  f2 + s = ε_k, s ≥ 0,
   with r1, r2 the ranges of the payoff table and δ = 1e-3: the slack's small reward makes
   every point efficient (not merely weakly so) without a second solve.

The grid is walked from the waste-optimal end upwards, each point started from its
neighbour's plan (HiGHS `setSolution`): a plan meeting ε_k meets every looser ε_{k+1}, so
every start is feasible and a point cut short by its time limit is never dearer than its
neighbour. (AUGMECON2's bypass, which skips grid points from the loose end down, needs the
opposite direction, where the neighbour's plan is infeasible as a start; with N points per
front it is not worth losing the warm start.)

The ε row bounds a county-wide sum, which couples every hub. When the planner planned the
hubs apart (several hubs, the county trunk fleet not binding), the fronts are solved hub by
hub (`optimizer.frontier_hubs`: each hub's share of ε, and a county bound over every split
of it); otherwise, or with `by_hub=False`, each point solves the whole county model (one
model of all busy hubs, as `optimizer.solve(decompose=False)`), with `threads` HiGHS
threads. Points are mutually non-dominated on their front up to their gaps; a point some
other point dominates (possible only when solves stop at a gap) is dropped and counted in
`stats.dropped_dominated`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pyomo.environ as pyo

from optimizer.frontier_model import (  # re-exported: the frontier's public records
    COST_CAP_REL,
    CRITERION,
    DELTA,
    FRONTS,
    LEX_REL,
    LEX_SHARE,
    MIN_LIMIT_SHARE,
    Front,
    Frontier,
    FrontierError,
    FrontierPoint,
    WholeModel,
    _cap_level,
    _non_dominated,
    marginal_to_cheaper,
)
from optimizer.result import PlanResult
from optimizer.scenario import Scenario
from optimizer.solver import ProgressFn, SolveResult, relative_gap

if TYPE_CHECKING:
    from optimizer.frontier_hubs import TaskRunner

#: the planner's time for the cost-optimal end, in time limits: it plans every hub (the
#: county week's documented 1 % takes it 100 s; 3 hubs of it found no plan in 20 s on a
#: loaded machine)
PLANNER_SHARE = 2.0

__all__ = ["CRITERION", "DELTA", "FRONTS", "LEX_REL", "LEX_SHARE", "MIN_LIMIT_SHARE",
           "PLANNER_SHARE", "Front", "Frontier", "FrontierError", "FrontierPoint",
           "NoFrontier", "WholeModel", "marginal_to_cheaper", "solve_frontier"]


class NoFrontier(FrontierError):
    """An end of the payoff table has no plan, with the solve's `status` and a `diagnosis`
    in the words `plan solve` uses (a list of {what, why}): a frontier of an infeasible
    scenario is answered as `plan solve` answers it, not with a bare status."""

    def __init__(self, message: str, status: str, diagnosis: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.status = status
        self.diagnosis = diagnosis


def _need(r: SolveResult, what: str, s: Scenario, planned: PlanResult | None = None) -> float:
    """`r`'s objective, or NoFrontier saying why there is none: the planner's diagnosis
    (`planned`, for the cost-optimal end), else the rows `r` had to violate, else its
    status."""
    if r.objective is not None:
        return r.objective
    from optimizer.diagnose import describe_rows

    diagnosis = list(planned.diagnosis) if planned is not None and planned.plan is None else []
    raise NoFrontier(f"{what}: no plan ({r.status})", r.status, diagnosis or describe_rows(
        s, r.violated_rows, what, f"no plan ({r.status})"))


def solve_frontier(
    scenario: Scenario,
    *,
    points: int = 7,
    fronts: tuple[Front, ...] = FRONTS,
    time_limit_s: float | None = None,
    mip_gap: float | None = None,
    threads: int | None = None,
    progress: ProgressFn | None = None,
    on_point: Callable[[FrontierPoint], None] | None = None,
    on_hub: Callable[[str, int, int], None] | None = None,
    planner_start: bool = True,
    by_hub: bool = True,
    run_tasks: TaskRunner | None = None,
) -> Frontier:
    """`points` plans on each of `fronts` (fewer when a front's range is empty or points
    coincide); `time_limit_s` and `mip_gap` apply to each solve. `on_point` hears of each
    point as it is found (a CLI's progress); hub by hub, the points come together at the
    end, and `on_hub(hub, done, hubs)` hears of each hub's fronts as they finish.

    With `planner_start` the cost-optimal plan is the planner's (`optimizer.solve`: hub by
    hub in worker processes, the staged warm starts, its bound), loaded into the
    whole-county model; every later solve starts from it or from its trips
    (`WholeModel._start_on_planner_trips`) when that is better than the neighbour's plan. A
    cold solve of a county's whole model spends its time finding a first plan (one hub of
    the county week found none in 30 s). With `by_hub` (and a planner's plan of several
    hubs planned apart) every later solve is a hub's own (`optimizer.frontier_hubs`): the
    whole-county model stopped at 24.5 t a week as the least single-use packaging of the
    county week, where the hubs alone reach 19.1 t and prove 17.2 t a bound. `run_tasks`
    runs those hubs' tasks elsewhere (a planner job's, `services.planner.parts`)."""
    if points < 2:
        raise ValueError("points: at least 2 (the front's two ends)")
    t0 = time.perf_counter()
    planned = _planner_solve(scenario, time_limit_s, mip_gap, threads, progress) \
        if planner_start else None
    if planned is not None and by_hub and _separable(planned):
        from optimizer.frontier_hubs import solve_by_hub

        hubwise = solve_by_hub(scenario, planned, points=points, fronts=fronts,
                               time_limit_s=time_limit_s, mip_gap=mip_gap, threads=threads,
                               on_point=on_point, on_hub=on_hub, t0=t0,
                               run_tasks=run_tasks)
        if hubwise is not None:
            return hubwise
    sv = WholeModel(scenario, time_limit_s, mip_gap, threads, progress)
    found: list[FrontierPoint] = []

    def add(p: FrontierPoint, to: list[FrontierPoint]) -> None:
        to.append(p)
        if on_point is not None:
            on_point(p)

    first = _planner_plan(sv, planned) if planned is not None else None
    if first is None:
        first = sv.solve("cost", sv.expr("cost"))
    c_star = _need(first, "cost-optimal plan", scenario, planned)

    def cost_bound(b: float | None) -> float | None:
        """A point's cost bound, at least the least cost's: an ε or criterion row only
        raises the least cost, so `first.bound` holds for every point. On the county week
        the planner's bound (hub by hub, floors and trunk rounding) is 1,000 CNY above the
        whole model's root bound that an interior point's solve reaches in 60 s."""
        if first.bound is None:
            return b
        return first.bound if b is None else max(b, first.bound)
    cost_start = [(v, v.value) for v in sv.b.model.component_data_objects(pyo.Var)]
    payoff: dict[str, dict[str, float | None]] = {}
    dropped = 0
    ends: dict[str, FrontierPoint] = {}
    for front in fronts:
        crit = CRITERION[front]
        pts: list[FrontierPoint] = []
        for v, x in cost_start:
            v.set_value(x, skip_validation=True)
        sv.has_start = True
        # the cost-optimal end: the least criterion at the least cost found (its cost bound
        # is the first solve's)
        lex = sv.solve(f"{front}:cost_end", sv.expr(crit),
                       cap=("cost", _cap_level(c_star, COST_CAP_REL)),
                       time_limit_s=None if time_limit_s is None else time_limit_s * LEX_SHARE)
        if lex.objective is None:  # cannot happen from a feasible start; keep the first plan
            for v, x in cost_start:
                v.set_value(x, skip_validation=True)
        add(FrontierPoint(front, "cost_optimal", None,
                          sv.result(first, first.bound, {"solves": sv.solves[-2:]})), pts)
        ends.setdefault("cost_optimal", pts[0])
        f2_nad = sv.value(crit)
        # the other end: the least criterion, then the least cost at it
        low = sv.solve(f"{front}:min", sv.expr(crit), neighbourhood=True)
        f2_star = _need(low, f"{front}-optimal plan", scenario)
        other = sv.solve(f"{front}:min_cost", sv.expr("cost"),
                         cap=(crit, _cap_level(f2_star, LEX_REL)))
        other_end = FrontierPoint(front, front + "_optimal", None, sv.result(
            other, cost_bound(other.bound),
            {"solves": sv.solves[-2:], "criterion_bound": low.bound}))
        ends[other_end.role] = other_end
        c_nad = other_end.cost_cny
        r1 = max(c_nad - c_star, 1e-6)
        r2 = f2_nad - f2_star
        payoff[front] = {"cost_min": c_star, f"cost_at_min_{front}": c_nad,
                         f"{front}_min": f2_star, f"{front}_at_min_cost": f2_nad,
                         f"{front}_min_bound": low.bound}
        interior: list[FrontierPoint] = []
        if r2 > 1e-6 * max(1.0, abs(f2_nad)):
            for k in range(1, points - 1):
                level = f2_star + k * r2 / (points - 1)
                r = sv.solve(f"{front}:eps{k}", sv.expr("cost"),
                             eps=(crit, level, DELTA * r1 / r2))
                if r.objective is None:
                    continue
                # for every plan meeting ε, cost ≥ cost − w·s ≥ the solve's bound
                add(FrontierPoint(front, "interior", level, sv.result(
                    r, cost_bound(r.bound), {"solves": sv.solves[-1:]})), interior)
        add(other_end, pts)
        pts += interior  # after the ends: a point equal to an end is dropped, not the end
        kept, n_drop = _non_dominated(pts)
        dropped += n_drop
        found += kept
    stats = {"wall_s": time.perf_counter() - t0, "solves": sv.solves,
             "dropped_dominated": dropped, "points_per_front": points}
    return Frontier(points=found, payoff=payoff, ends=ends, stats=stats)


def _planner_solve(s: Scenario, time_limit_s: float | None, mip_gap: float | None,
                   threads: int | None, progress: ProgressFn | None) -> PlanResult:
    """The planner's least-cost plan (`optimizer.solve`, hub by hub), given `PLANNER_SHARE`
    time limits."""
    from optimizer.planner import solve

    limit = None if time_limit_s is None else time_limit_s * PLANNER_SHARE
    return solve(s, time_limit_s=limit, mip_gap=mip_gap, threads=threads,
                 progress=progress, baselines=False, marginals=False)


def _separable(r: PlanResult) -> bool:
    """Whether the fronts can be solved hub by hub (`optimizer.frontier_hubs`): a plan of
    several hubs, planned apart (the county's trunk fleet did not link them)."""
    return (r.plan is not None and len(r.plan["hubs"]) > 1
            and not r.stats.get("linked_by_county_fleet"))


def _planner_plan(sv: WholeModel, r: PlanResult) -> SolveResult | None:
    """The planner's least-cost plan `r` in `sv`'s variables (None if it has none or it
    does not fit), as if the whole model had been solved to the planner's bound."""
    from optimizer.marginal import plan_as_start

    t = time.perf_counter()
    if r.plan is None or not plan_as_start(sv.b, r.plan, sv.threads):
        return None
    sv.has_start = True
    sv.planner_plan = r.plan
    cost = sv.value("cost")
    bound = None if r.bound is None else min(r.bound, cost)
    sv.solves.append({"label": "cost (planner)", "status": r.status,
                      "wall_s": r.stats.get("wall_s", 0.0) + time.perf_counter() - t,
                      "objective": cost, "bound": bound,
                      "warm": False})
    return SolveResult(status=r.status, objective=cost, bound=bound,
                       gap=None if bound is None else relative_gap(cost, bound), highs_s=0.0,
                       compile_s=0.0, handover_s=0.0, load_s=0.0, num_cols=0, num_rows=0,
                       num_integers=0, nonzeros=0)


