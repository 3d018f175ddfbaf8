"""The trade-off frontier's records and its whole-county model: the points and fronts
`optimizer.frontier` returns, the dominance filter, and `WholeModel`, one joint model
re-solved under changing objectives and ε rows (the whole county's, or one hub's for
`optimizer.frontier_hubs`). Kept apart from `optimizer.frontier`, which chooses between the
whole-county and the hub-by-hub method, so that neither method imports the other's caller.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import highspy
import numpy as np
import pyomo.environ as pyo

from optimizer.kpis import compute_kpis
from optimizer.model import BuiltModel, build_model
from optimizer.neighbourhood import LP_NEIGHBOURHOOD_SHARE, lp_neighbourhood, search_seconds
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
from optimizer.trunk_bound import trunk_rounding_bound

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
#: the LP neighbourhood's time in a least-criterion solve without a time limit
NEIGHBOURHOOD_UNLIMITED_S = 60.0
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


def marginal_to_cheaper(front: list[FrontierPoint], p: FrontierPoint
                        ) -> dict[str, float | bool | None]:
    """What the step from the next cheaper point of the front to `p` costs: CNY per kg of
    single-use packaging avoided, or CNY per tonne CO2e avoided (None at the cost-optimal
    end, or where the step avoids nothing); and `marginal_within_gaps`, whether the step's
    cost change is within what the two points' gaps leave open (cost × gap each), or a
    point has no bound: the optimal plans' step may then be far from it (steps of 22-66
    CNY printed as CNY per kg between points 3 % from their optima; an audit)."""
    key = ("marginal_cny_per_kg_single_use" if p.front == "single_use"
           else "marginal_cny_per_t_co2e")
    k = front.index(p)
    if k == 0:
        return {key: None, "marginal_within_gaps": None}
    q = front[k - 1]
    avoided = (q.criterion() - p.criterion()) / 1000.0  # kg → tonnes; g → kg
    if avoided <= 1e-9:
        return {key: None, "marginal_within_gaps": None}
    step = p.cost_cny - q.cost_cny
    if p.result.gap is None or q.result.gap is None:
        within = True  # a point with no bound could be anywhere above its optimum
    else:
        within = abs(step) <= p.cost_cny * p.result.gap + q.cost_cny * q.result.gap
    return {key: step / avoided, "marginal_within_gaps": within}


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

    def _set_rows(self, objective: Any, cap: tuple[str, float] | None = None,
                  eps: tuple[str, float, float] | None = None) -> None:
        """The solve's own rows in place of the last one's: min `objective` with `cap`
        (criterion ≤ value) or `eps` (criterion + s = ε, the slack rewarded at the given
        weight)."""
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

    def solve(self, label: str, objective: Any, *, cap: tuple[str, float] | None = None,
              eps: tuple[str, float, float] | None = None,
              time_limit_s: float | None = None, mip_gap: float | None = None,
              polish: bool = False, neighbourhood: bool = False) -> SolveResult:
        """min `objective` with `cap` (criterion ≤ value) or `eps` (criterion + s = ε, the
        slack rewarded at the given weight) from the model's current values; `mip_gap`
        instead of the frontier's, with `polish` the start first improved by `self.polish`,
        and with `neighbourhood` by the LP relaxation's neighbourhood
        (`neighbourhood.lp_neighbourhood`: the least-criterion solves, whose LP bound is
        tight and whose plans HiGHS finds late)."""
        m = self.b.model
        self._set_rows(objective, cap, eps)
        t = time.perf_counter()
        lp_start = self._start_on_planner_trips() if self.has_start else None
        limit = time_limit_s or self.time_limit_s
        if limit is not None:
            limit = self.highs_limit(limit, time.perf_counter() - t)
        gap = self.mip_gap if mip_gap is None else mip_gap
        use: Polish | None = None
        polish_s = 0.0
        if neighbourhood and self.has_start:
            use = lp_neighbourhood(self.threads, gap)
            polish_s = (NEIGHBOURHOOD_UNLIMITED_S if limit is None
                        else LP_NEIGHBOURHOOD_SHARE * limit)
        elif polish and self.has_start and self.polish is not None:
            use = self.polish
            polish_s = search_seconds(limit)
        r = run_highs(m, time_limit_s=limit, mip_gap=gap,
                      threads=self.threads, warm_start=self.has_start, progress=self.progress,
                      label=f"frontier:{label}", explain_infeasible=False,
                      polish=use, polish_s=polish_s)
        if limit is not None:
            self.overrun_s = max(0.0, r.highs_s - limit)
        if r.objective is not None:
            self.has_start = True
        self.solves.append({"label": label, "status": r.status, "highs_s": r.highs_s,
                            "wall_s": time.perf_counter() - t, "objective": r.objective,
                            "bound": r.bound, "warm": self.has_start,
                            "start_on_planner_trips": lp_start, **r.polished})
        return r

    def trunk_bound(self, label: str, cap: tuple[str, float], time_limit_s: float
                    ) -> float | None:
        """A lower bound on the least cost of a plan with `cap` (criterion ≤ value): the
        trunk rounding bound (`optimizer.trunk_bound`) of min cost under that row, or None
        when its LP did not finish. Why: at a tight ε HiGHS's bound stays near the LP, which
        runs a hub's trunk truck 1.2 times a day where every plan runs it whole (hub H10 of
        the county week at its least single-use: LP 17,405 CNY, trunk rounding 18,232 in
        2.6 s, HiGHS after 60 s 18,256, best plan found 18,435). The model's values (the
        next solve's start) are left as they are."""
        self._set_rows(self.expr("cost"), cap)
        try:
            tb = trunk_rounding_bound(self.b, time_limit_s, self.threads)
        finally:
            self._clear()
        self.solves.append({"label": label, "status": "trunk_rounding", "highs_s": tb.seconds,
                            "wall_s": tb.seconds, "objective": None, "bound": tb.bound,
                            "relaxation": tb.relaxation, "branched": tb.branched})
        return tb.bound

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
        return plan_result(self.s, extract_plan(self.b, self.s), self.value("cost"),
                           cost_bound, r.status.startswith("time_limit"), stats)


def plan_result(s: Scenario, plan: dict[str, Any], cost: float, bound: float | None,
                timed_out: bool, stats: dict[str, Any]) -> PlanResult:
    """A frontier point's plan as a complete `PlanResult` (the whole model's, or the hubs'
    merged): its objective the plan's cost, its gap against `bound` (a lower bound on the
    cost of any plan meeting the point's constraint), "optimal" only when that closes it."""
    if bound is not None:
        bound = min(bound, cost)
    gap = relative_gap(cost, bound) if bound is not None else None
    status: PlanStatus = "optimal" if gap is not None and gap <= PROVEN_GAP else (
        "time_limit" if timed_out else "feasible")
    return PlanResult(status=status, objective=cost, bound=bound, gap=gap, plan=plan,
                      kpis=compute_kpis(plan, s), stats=stats, factor_set=s.factor_set,
                      rounding=rounding_cost(plan, s),
                      marginal_values=frontier_marginals(plan))


#: why a frontier point's plan has no marginal values
FRONTIER_MARGINALS_WHY = (
    "not computed for a frontier's plans: at a point capped on single-use packaging or "
    "CO2e what one more box or unit of cleaning is worth depends on the cap; "
    "`packloop plan solve` gives them for the least-cost plan, `packloop plan whatif` prices "
    "a change at any scenario")


def frontier_marginals(plan: dict[str, Any]) -> dict[str, Any]:
    """A frontier point's `marginal_values`: not computed, each hub saying why (its plan
    JSON and report carried an empty object, read as "nothing binds"; an audit)."""
    return {"pools": [], "cleaning": [], "vehicles": [],
            "not_computed": [{"hub_id": h, "why": FRONTIER_MARGINALS_WHY}
                             for h in plan.get("hubs", [])]}


class FrontierError(RuntimeError):
    """A solve the frontier cannot do without (a payoff table's end) found no plan."""


def _cap_level(x: float, rel: float = 1e-9) -> float:
    """A criterion's value as a row's right-hand side, loose by a hair: the row must admit
    the plan that produced the value, whatever the last bits of the floating sums."""
    return x + rel * max(1.0, abs(x))


#: the lexicographic step's cap on the cost, relative to the least cost: half of
#: `solver.PROVEN_GAP`, so the cost-optimal end of a proven least cost reads "optimal"
#: (at 1e-9 it came out at gap 1.0000001e-9)
COST_CAP_REL = 0.5e-9

#: the lexicographic step's bound on the criterion, relative: a row held exactly at the
#: criterion's least value left HiGHS a plan off other rows by 1.5e-4 boxes (tiny.yaml)
LEX_REL = 1e-6

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

