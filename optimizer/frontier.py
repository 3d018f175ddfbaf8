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

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import highspy
import numpy as np
import pyomo.environ as pyo

from optimizer.kpis import compute_kpis
from optimizer.model import BuiltModel, build_model
from optimizer.neighbourhood import search_seconds
from optimizer.plan import extract_plan, rounding_cost
from optimizer.result import PlanResult, PlanStatus
from optimizer.routes import active_villages, hub_routes
from optimizer.scenario import Scenario, ScenarioError
from optimizer.solver import (
    PROVEN_GAP,
    Polish,
    ProgressFn,
    SolveResult,
    compile_model,
    make_highs,
    objective_of,
    relative_gap,
    run_highs,
)

Front = Literal["single_use", "co2e"]
FRONTS: tuple[Front, ...] = ("single_use", "co2e")
#: the model expression each front bounds (optimizer/model/objective.py, `add_criteria`)
CRITERION = {"single_use": "single_use_grams", "co2e": "co2e_kg"}
#: the slack's weight in the augmented objective, relative to the payoff table's ranges
DELTA = 1e-3
#: the share of the time limit for the cost-optimal end's lexicographic step (least
#: criterion at the least cost): its start, the LP on the planner's trips, is most of what
#: it can gain when the least cost itself is known only to the planner's gap
LEX_SHARE = 0.25
#: the planner's time for the cost-optimal end, in time limits: it plans every hub (the
#: county week's documented 1 % takes it 100 s; 3 hubs of it found no plan in 20 s on a
#: loaded machine)
PLANNER_SHARE = 2.0
#: the least share of the time limit HiGHS gets after the start's LP and its last overrun
MIN_LIMIT_SHARE = 0.5


@dataclass(frozen=True)
class FrontierPoint:
    """One plan of a front: `role` is `cost_optimal`, `single_use_optimal`, `co2e_optimal`
    (the front's ends) or `interior`; `epsilon` the bound on the front's criterion (None
    at the ends, which are lexicographic solves)."""

    front: Front
    role: str
    epsilon: float | None
    result: PlanResult

    @property
    def cost_cny(self) -> float:
        return float(self.result.kpis["cost_cny"]["total"]) if self.result.kpis else math.nan

    @property
    def co2e_kg(self) -> float:
        return float(self.result.kpis["co2e_kg"]["total"]) if self.result.kpis else math.nan

    @property
    def single_use_grams(self) -> float:
        return float(self.result.kpis["single_use_grams"]) if self.result.kpis else math.nan

    def criterion(self) -> float:
        return self.single_use_grams if self.front == "single_use" else self.co2e_kg


@dataclass(frozen=True)
class Frontier:
    """Both fronts, each ordered from its cost-optimal end to its other end."""

    points: list[FrontierPoint]
    payoff: dict[str, dict[str, float | None]]
    #: the payoff table's plans by role, kept even when a front collapses to one point
    ends: dict[str, FrontierPoint] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def front(self, name: Front) -> list[FrontierPoint]:
        return [p for p in self.points if p.front == name]

    def to_json_dict(self, plans: dict[int, Any] | None = None) -> dict[str, Any]:
        """The `plan frontier --json` document. `plans` replaces a point's plan document by
        something else (the path of its plan.json when the plans are written to files)."""
        out_points = []
        for k, p in enumerate(self.points):
            r = p.result
            entry: dict[str, Any] = {
                "cost_cny": p.cost_cny, "co2e_kg": p.co2e_kg,
                "single_use_grams": p.single_use_grams, "gap": r.gap, "status": r.status,
                "plan": plans[k] if plans is not None and k in plans else r.to_json_dict(),
                "front": p.front, "role": p.role, "epsilon": p.epsilon,
            }
            entry.update(marginal_to_cheaper(self.front(p.front), p))
            out_points.append(entry)
        extremes: dict[str, Any] = {}
        for role, p in self.ends.items():
            extremes[role] = {"cost_cny": p.cost_cny, "co2e_kg": p.co2e_kg,
                                    "single_use_grams": p.single_use_grams, "gap": p.result.gap,
                                    "status": p.result.status, "front": p.front}
        extremes["payoff"] = self.payoff
        return {"points": out_points, "extremes": extremes, "stats": self.stats}


def marginal_to_cheaper(front: list[FrontierPoint], p: FrontierPoint) -> dict[str, float | None]:
    """What the step from the next cheaper point of the front to `p` costs: CNY per kg of
    single-use packaging avoided, or CNY per tonne CO2e avoided (None at the cost-optimal
    end, or where the step avoids nothing)."""
    key = ("marginal_cny_per_kg_single_use" if p.front == "single_use"
           else "marginal_cny_per_t_co2e")
    k = front.index(p)
    if k == 0:
        return {key: None}
    q = front[k - 1]
    avoided = q.criterion() - p.criterion()
    if p.front == "single_use":
        avoided /= 1000.0
    else:
        avoided /= 1000.0  # kg → tonnes
    if avoided <= 1e-9:
        return {key: None}
    return {key: (p.cost_cny - q.cost_cny) / avoided}


class WholeModel:
    """The whole-county joint model, built once, re-solved under changing objectives and
    ε rows; every solve starts from the values the last one left in the model."""

    def __init__(self, s: Scenario, time_limit_s: float | None, mip_gap: float | None,
                 threads: int | None, progress: ProgressFn | None,
                 hubs: list[str] | None = None) -> None:
        self.s, self.time_limit_s, self.mip_gap, self.threads = s, time_limit_s, mip_gap, threads
        self.progress = progress
        if hubs is None:
            vill_hub = {v.village_id: v.hub_id for v in s.villages}
            hubs = sorted({vill_hub[i] for i in active_villages(s)})
        self.b: BuiltModel = build_model(s, hub_routes(s, hubs), mode="joint", hubs=hubs)
        if self.b.unservable:
            from optimizer.diagnose import describe_unservable

            raise ScenarioError([(d["what"], d["why"]) for d in
                                 describe_unservable(s, self.b.unservable)])
        m = self.b.model
        m.cost.deactivate()
        self.solves: list[dict[str, Any]] = []
        self.has_start = False
        #: the cost-optimal plan from the planner, whose trips seed later starts
        self.planner_plan: dict[str, Any] | None = None
        #: how far past its time limit HiGHS ran in the last solve
        self.overrun_s = 0.0
        #: improves the start of a least-cost solve before HiGHS (`frontier_hubs`: a hub's
        #: model, small enough for the planner's drop and window search)
        self.polish: Polish | None = None

    def highs_limit(self, limit_s: float, spent_s: float) -> float:
        """HiGHS's limit for a solve allowed `limit_s` of which `spent_s` went on its start:
        less what HiGHS overran its limit by last time. On the county week's whole model it
        ran 6-11 s past a 60 s limit (a node's LP there takes seconds), and the start's LP
        took 4-6 s more, so six points at 60 s took 600 s; `--time-limit` is each point's
        wall time. Never below `MIN_LIMIT_SHARE` of the limit."""
        return max(MIN_LIMIT_SHARE * limit_s, limit_s - spent_s - self.overrun_s)

    def value(self, name: str) -> float:
        m = self.b.model
        if name == "cost":
            return float(pyo.value(m.cost.expr))
        return float(pyo.value(getattr(m, name)))

    def _clear(self) -> None:
        m = self.b.model
        for c in ("fr_obj", "fr_cap", "fr_eps", "fr_slack"):
            if hasattr(m, c):
                m.del_component(c)

    def solve(self, label: str, objective: Any, *, cap: tuple[str, float] | None = None,
              eps: tuple[str, float, float] | None = None,
              time_limit_s: float | None = None, mip_gap: float | None = None,
              polish: bool = False) -> SolveResult:
        """min `objective` with `cap` (criterion ≤ value) or `eps` (criterion + s = ε, the
        slack rewarded at the given weight) from the model's current values; `mip_gap`
        instead of the frontier's, and with `polish` the start first improved by
        `self.polish`."""
        m = self.b.model
        self._clear()
        if cap is not None:
            name, bound = cap
            m.fr_cap = pyo.Constraint(expr=self.expr(name) <= bound)
        if eps is not None:
            name, level, weight = eps
            m.fr_slack = pyo.Var(domain=pyo.NonNegativeReals)
            m.fr_eps = pyo.Constraint(expr=self.expr(name) + m.fr_slack == level)
            if self.has_start:
                m.fr_slack.set_value(max(0.0, level - self.value(name)))
            objective = objective - weight * m.fr_slack
        m.fr_obj = pyo.Objective(expr=objective, sense=pyo.minimize)
        t = time.perf_counter()
        lp_start = self._start_on_planner_trips() if self.has_start else None
        limit = time_limit_s or self.time_limit_s
        if limit is not None:
            limit = self.highs_limit(limit, time.perf_counter() - t)
        use = self.polish if polish and self.has_start else None
        r = run_highs(m, time_limit_s=limit, mip_gap=self.mip_gap if mip_gap is None else mip_gap,
                      threads=self.threads, warm_start=self.has_start, progress=self.progress,
                      label=f"frontier:{label}", explain_infeasible=False,
                      polish=use, polish_s=0.0 if use is None else search_seconds(limit))
        if limit is not None:
            self.overrun_s = max(0.0, r.highs_s - limit)
        if r.objective is not None:
            self.has_start = True
        self.solves.append({"label": label, "status": r.status, "highs_s": r.highs_s,
                            "wall_s": time.perf_counter() - t, "objective": r.objective,
                            "bound": r.bound, "warm": self.has_start,
                            "start_on_planner_trips": lp_start, **r.polished})
        return r

    def _start_on_planner_trips(self) -> bool | None:
        """Start from the planner's trips when that is better: the LP of the current
        objective and rows with the cost-optimal plan's trips fixed (packaging, pools and
        loads free) is solved, and its solution replaces the current start (always feasible:
        the tighter neighbour's plan) if it is feasible and cheaper. True when the LP's plan
        is the start, None without planner trips."""
        if self.planner_plan is None:
            return None
        from optimizer.marginal import fix_plan_trips, unfix_trips

        m = self.b.model
        current = [(v, v.value) for v in m.component_data_objects(pyo.Var)]
        was = pyo.value(m.fr_obj.expr)
        relaxed = fix_plan_trips(self.b, self.planner_plan)
        if relaxed is None:
            return False
        try:
            comp = compile_model(m)
            h = make_highs(self.time_limit_s, None, self.threads)
            h.passModel(comp.lp)
            h.run()
            better = False
            if h.getModelStatus() == highspy.HighsModelStatus.kOptimal:
                x = h.getSolution().col_value
                lp_obj = objective_of(comp, np.asarray(x))
                better = lp_obj < was - 1e-9 * max(1.0, abs(was))
                if better:
                    for v, val in zip(comp.columns, x, strict=True):
                        v.set_value(float(val), skip_validation=True)
        finally:
            unfix_trips(self.b, relaxed)
        if not better:
            for v, val in current:
                v.set_value(val, skip_validation=True)
        return better

    def expr(self, name: str) -> Any:
        m = self.b.model
        return m.cost.expr if name == "cost" else getattr(m, name)

    def result(self, r: SolveResult, cost_bound: float | None, stats: dict[str, Any]
               ) -> PlanResult:
        """The model's current values as a complete plan; its objective is the plan's cost
        and its gap is against `cost_bound`, a lower bound on the cost of any plan meeting
        the point's constraint."""
        plan = extract_plan(self.b, self.s)
        cost = self.value("cost")
        if cost_bound is not None:
            cost_bound = min(cost_bound, cost)
        gap = relative_gap(cost, cost_bound) if cost_bound is not None else None
        status: PlanStatus = "optimal" if gap is not None and gap <= PROVEN_GAP else (
            "time_limit" if r.status.startswith("time_limit") else "feasible")
        return PlanResult(status=status, objective=cost, bound=cost_bound, gap=gap, plan=plan,
                          kpis=compute_kpis(plan, self.s), stats=stats,
                          factor_set=self.s.factor_set, rounding=rounding_cost(plan, self.s))


def _need(r: SolveResult, what: str) -> float:
    if r.objective is None:
        raise FrontierError(f"{what}: no plan ({r.status})")
    return r.objective


class FrontierError(RuntimeError):
    """A solve the frontier cannot do without (a payoff table's end) found no plan."""


def _cap_level(x: float, rel: float = 1e-9) -> float:
    """A criterion's value as a row's right-hand side, loose by a hair: the row must admit
    the plan that produced the value, whatever the last bits of the floating sums."""
    return x + rel * max(1.0, abs(x))


#: the lexicographic step's bound on the criterion, relative: a row held exactly at the
#: criterion's least value left HiGHS a plan off other rows by 1.5e-4 boxes (tiny.yaml)
LEX_REL = 1e-6


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
    county week, where the hubs alone reach 19.1 t and prove 17.2 t a bound."""
    if points < 2:
        raise ValueError("points: at least 2 (the front's two ends)")
    t0 = time.perf_counter()
    planned = _planner_solve(scenario, time_limit_s, mip_gap, threads, progress) \
        if planner_start else None
    if planned is not None and by_hub and _separable(planned):
        from optimizer.frontier_hubs import solve_by_hub

        hubwise = solve_by_hub(scenario, planned, points=points, fronts=fronts,
                               time_limit_s=time_limit_s, mip_gap=mip_gap, threads=threads,
                               on_point=on_point, on_hub=on_hub, t0=t0)
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
    c_star = _need(first, "cost-optimal plan")

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
        lex = sv.solve(f"{front}:cost_end", sv.expr(crit), cap=("cost", _cap_level(c_star)),
                       time_limit_s=None if time_limit_s is None else time_limit_s * LEX_SHARE)
        if lex.objective is None:  # cannot happen from a feasible start; keep the first plan
            for v, x in cost_start:
                v.set_value(x, skip_validation=True)
        add(FrontierPoint(front, "cost_optimal", None,
                          sv.result(first, first.bound, {"solves": sv.solves[-2:]})), pts)
        ends.setdefault("cost_optimal", pts[0])
        f2_nad = sv.value(crit)
        # the other end: the least criterion, then the least cost at it
        low = sv.solve(f"{front}:min", sv.expr(crit))
        f2_star = _need(low, f"{front}-optimal plan")
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


def _non_dominated(pts: list[FrontierPoint]) -> tuple[list[FrontierPoint], int]:
    """The points no other point of the same front dominates on (cost, criterion), and of
    points equal on both the first; ordered by cost."""
    keep: list[FrontierPoint] = []
    for p in pts:
        a = (p.cost_cny, p.criterion())
        dominated = False
        for q in pts:
            if q is p:
                continue
            b = (q.cost_cny, q.criterion())
            if _leq(b, a) and (_lt(b, a) or (_same(a, b) and pts.index(q) < pts.index(p))):
                dominated = True
                break
        if not dominated:
            keep.append(p)
    keep.sort(key=lambda p: p.cost_cny)
    return keep, len(pts) - len(keep)


def _tol(x: float) -> float:
    return 1e-6 * max(1.0, abs(x))


def _leq(b: tuple[float, float], a: tuple[float, float]) -> bool:
    return all(y <= x + _tol(x) for x, y in zip(a, b, strict=True))


def _lt(b: tuple[float, float], a: tuple[float, float]) -> bool:
    return any(y < x - _tol(x) for x, y in zip(a, b, strict=True))


def _same(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return _leq(a, b) and _leq(b, a)
