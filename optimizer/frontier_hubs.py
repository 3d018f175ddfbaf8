"""The trade-off frontier hub by hub, for counties whose hubs the planner plans apart.

Why: the ε row bounds a county-wide sum, and solved as one whole-county model (the
fallback in `optimizer.frontier`) each point got a minute of HiGHS on 190,000 columns. On
the county week that model's "least single-use" solve stopped at 24.5 t a week, while each
hub alone reaches its least in seconds and the hubs' least add up to about 17.2 t; and every
interior point's bound stayed at the least cost's, so gaps grew along the front.

Here each hub gets the county's points as its own:

- *ends*: the hub's least cost is the planner's plan; the lexicographic step (least
  criterion at that cost) and the other end (least criterion, then least cost at it) are
  solved per hub. Both ends are separable: the county's least criterion is the sum of the
  hubs' least, and at that sum every hub must sit at its own least.
- *interior points*: county level ε_k = f2* + k (f2nad − f2*)/(N − 1) is split among the hubs
  in proportion to each hub's own range, ε_hk = f2*_h + k (f2nad_h − f2*_h)/(N − 1) (these add
  up to ε_k); each hub solves AUGMECON2's point at ε_hk from its tighter neighbour's plan.
  The split is a restriction, so each point is a plan meeting ε_k, not the best such plan.
- *bounds*: what makes the gaps honest. For hub h every plan x satisfies
  cost_h(x) ≥ B_h (the planner's bound of its least cost), cost_h(x) ≥ L_h(λ) − λ f2_h(x)
  for every λ ≥ 0 (L_h(λ) the LP relaxation of min cost + λ f2, a Lagrangian line), and
  cost_h(x) ≥ B_hj whenever f2_h(x) ≤ ε_hj (the bound of each ε solve the hub made, and
  the far end's trunk rounding bound on a row a little looser than the end's, `steps`).
  `county_bound` minimises the sum of these per-hub lower bounds over every split of ε
  (a small MILP): a valid lower bound on the cost of any county plan meeting ε, whatever
  the split; each point is bounded at the criterion its plans reach (`point_bound`).

The per-hub tasks run in a pool of worker processes started as the planner's (forkserver,
warmed up once). `time_limit_s` is per point as on the whole-model path, but pooled: each hub
gets its size's share of (points' limits × workers) for all its solves. The least-cost solves
stop at half the frontier's gap, the criterion solves at 0.1 % (`CRITERION_GAP`).

The bound holds up to `SEGMENT_REL`/`SEGMENT_ABS`: a hub plan less than that above one of its
levels is charged that level's bound (measured: 5.8e-8 relative above a whole-model optimum
on the two-hub test case, at an ε chosen in that sliver).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, cast

import numpy as np
import pyomo.environ as pyo
from pyomo.repn import generate_standard_repn

from optimizer.scenario import Scenario

#: a hub's share of each front's worker time goes to its solves in these proportions: the
#: lexicographic step at the least cost, the least criterion, the least cost at it, that
#: solve's trunk rounding bound, and one interior point (at 6 points a front all but the
#: trunk bound add up to the whole-model path's 0.25 + 1 + 1 + 1 per interior point time
#: limits; the trunk bound's time comes on top: taken from the others, it had left hub H17
#: short of proving its least single-use). The least criterion gets twice an
#: interior point's share: hub H18 proves its least single-use in 11 s, and with half that
#: share it stopped 56 % above it (docs/optimizer.md)
WEIGHTS = {"cost_end": 0.25, "min": 2.0, "min_cost": 1.0, "trunk": 0.5, "interior": 0.75}
#: the gap of a hub's criterion solves (the ends' least criterion, and the least criterion at
#: the least cost): the frontier's gap is relative to the criterion, whose range is a
#: fraction of it (the county week's CO2e front spans 0.2 % of its CO2e, so at 2 % the
#: least-CO2e solves stopped where they started)
CRITERION_GAP = 1e-3
#: the share of a hub's size-proportional worker time its solves plan on: building its model,
#: reading plans back and its lines took about a tenth more (county week), and the last
#: hubs then met the frontier's deadline with 0.1 s for their last points
BUDGET_SHARE = 0.85
#: a hub's least-cost solves stop at this share of the frontier's gap: the county point's
#: bound (`county_bound`) lies below the sum of the hubs' own, and the hubs finish early
HUB_GAP_SHARE = 0.5
#: Lagrangian multipliers of a hub's lines, relative to its cost per unit of the criterion
#: at the least cost (where the front's marginal costs lie: 0.2-0.6 on the county week)
LAMBDA_GRID = tuple(float(x) for x in np.geomspace(0.01, 20.0, 13))
#: segments of a hub's bound start this far (relative) above the level before
#: (`county_bound`)
SEGMENT_REL = 1e-6
#: ... and at least this far, in the criterion's unit (grams or kg): above HiGHS's MIP
#: feasibility tolerance (1e-6), which would otherwise let a hub sit on the boundary
SEGMENT_ABS = 1e-4
#: the trunk rounding bound (`WholeModel.trunk_bound`) of the least cost at the least
#: criterion (unless HiGHS proved that point) is not run with less time than this (its LP
#: alone takes 0.1-0.3 s on a county hub). Why that point: there HiGHS's bound stays near
#: the LP, which runs the trunk truck a fraction of a day more than any plan (hub H10 of
#: the county week: LP 17,405 CNY, trunk rounding 18,232, HiGHS after 60 s 18,256); at the
#: interior points the bound's time cost the plans as much as it gained (docs/optimizer.md,
#: "Trade-off frontier")
TRUNK_MIN_S = 0.5
#: its limit without a time limit
TRUNK_UNLIMITED_S = 60.0
#: ... and its criterion row is this much (relative) looser than the end's: the end's plans
#: sit at their level, a millionth above the hubs' least (`LEX_REL`), and without a bound
#: a little above it the county bound moved a hub onto its next, far lower step with the
#: others' millionths (6.5 of 397.0 thousand CNY at the county week's least single-use)
TRUNK_WIDEN = 1e-4
#: each solve stops this long before the frontier's deadline at the latest
DEADLINE_MARGIN_S = 1.0


def front_weights(points: int) -> list[float]:
    """The weights (`WEIGHTS`) of a hub's solves of one front, in the order they run."""
    return ([WEIGHTS["cost_end"], WEIGHTS["min"], WEIGHTS["min_cost"], WEIGHTS["trunk"]]
            + [WEIGHTS["interior"]] * max(0, points - 2))


def limits_per_front(points: int) -> float:
    """How many point time limits the hubs' solves of one front take together (`WEIGHTS`)."""
    return sum(front_weights(points))


class HubFrontError(RuntimeError):
    """A hub's solves gave no plan where its start should have kept one: the caller falls
    back to the whole-county model."""


@dataclass
class HubPoint:
    """One hub's plan at one point of a front: `eps` its bound on the criterion (None at the
    least-cost end), `bound` a lower bound on the hub's cost of any plan meeting `eps`."""

    eps: float | None
    cost: float
    criteria: dict[str, float]
    bound: float | None
    status: str
    plan: dict[str, Any]


@dataclass
class HubFront:
    """A hub's share of one front, and what bounds its cost at any level of the criterion."""

    hub: str
    cost_end: HubPoint
    crit_end: HubPoint
    interior: list[HubPoint]
    #: a lower bound on the hub's criterion (the least-criterion solve's bound)
    crit_floor: float
    #: (λ, L(λ)): cost ≥ L(λ) − λ·criterion for every plan of the hub
    lines: list[tuple[float, float]]
    solves: list[dict[str, Any]] = field(default_factory=list)
    #: (ε, bound) of bounds beyond the points' own: cost ≥ bound for every plan of the hub
    #: with criterion ≤ ε (the far end's trunk bound, on its widened row)
    steps: list[tuple[float, float]] = field(default_factory=list)


def hub_front_json(f: HubFront) -> dict[str, Any]:
    """`f` as JSON: a hub's fronts solved by another planner worker come back through the
    job store (`services.planner.parts`)."""
    return dataclasses.asdict(f)


def hub_front_from_json(d: dict[str, Any]) -> HubFront:
    """The inverse of `hub_front_json` (JSON's lists back to the tuples the bounds use)."""
    return HubFront(hub=d["hub"], cost_end=HubPoint(**d["cost_end"]),
                    crit_end=HubPoint(**d["crit_end"]),
                    interior=[HubPoint(**q) for q in d["interior"]], crit_floor=d["crit_floor"],
                    lines=[(float(a), float(b)) for a, b in d["lines"]],
                    solves=list(d.get("solves") or []),
                    steps=[(float(a), float(b)) for a, b in d.get("steps") or []])


def hub_plan(plan: dict[str, Any], hub: str) -> dict[str, Any]:
    """What a hub's solves need of the planner's county plan: its own trips
    (`marginal.plan_as_start`). Why: a county week's plan is 4 MB of JSON, and each hub's
    task carried all of it to its worker (or, as a frontier job's part, into the job
    store) where 60 kB are used."""
    return {"hubs": [hub], "trips": [t for t in plan["trips"] if t["hub_id"] == hub]}


#: what runs the hubs' tasks: (scenario, tasks, workers, on_hub) -> each task's fronts, in
#: the tasks' order; `run_hub_tasks` in this process's worker pool, or a planner job's
#: parts shared with other planner workers (`services.planner.parts`)
TaskRunner = Callable[[Scenario, list[tuple[Any, ...]], int, Any], list[list[HubFront]]]


def hub_task(args: tuple[Any, ...]) -> list[HubFront]:
    """Every front of one hub, in a worker process (the scenario is the worker's)."""
    from optimizer.planner import _scenario

    (s, hub, fronts, plan, cost_bound, points, budget_s, deadline, mip_gap,
     threads) = args
    return hub_fronts(_scenario(s), hub, fronts, plan, cost_bound, points, budget_s,
                      deadline, mip_gap, threads)


def hub_fronts(s: Scenario, hub: str, fronts: tuple[str, ...], plan: dict[str, Any],
               cost_bound: float | None, points: int, budget_s: float | None,
               deadline: float | None, mip_gap: float | None,
               threads: int | None) -> list[HubFront]:
    """One hub's ends, interior points and lines on each of `fronts`, within `budget_s` of
    its own time; no HiGHS limit reaches past `deadline` (time.time()), though a solve may
    overrun its limit and each gets 0.2 s at least."""
    from optimizer.frontier_model import (
        COST_CAP_REL,
        CRITERION,
        DELTA,
        LEX_REL,
        WholeModel,
        _cap_level,
    )
    from optimizer.marginal import plan_as_start
    from optimizer.neighbourhood import trip_day_polish
    from optimizer.plan import extract_plan

    t0 = time.perf_counter()
    sv = WholeModel(s, None, mip_gap, threads, None, hubs=[hub])
    if not plan_as_start(sv.b, plan, threads):
        raise HubFrontError(f"hub {hub}: the planner's plan does not fit its model")
    sv.has_start = True
    sv.planner_plan = plan
    sv.polish = trip_day_polish(sv.b, s, threads)
    gap = None if mip_gap is None else HUB_GAP_SHARE * mip_gap
    crit_gap = None if mip_gap is None else min(mip_gap, CRITERION_GAP)
    start = [(v, v.value) for v in sv.b.model.component_data_objects(pyo.Var)]
    weights = front_weights(points) * len(fronts)
    done = 0

    def limit() -> float | None:
        nonlocal done
        left_w = sum(weights[done:])
        w = weights[done]
        done += 1
        out = None
        if budget_s is not None:
            out = max(0.2, (budget_s - (time.perf_counter() - t0)) * w / left_w)
        if deadline is not None:
            room = max(0.2, deadline - time.time() - DEADLINE_MARGIN_S)
            out = room if out is None else min(out, room)
        return out

    def point(r: Any, eps: float | None, bound: float | None) -> HubPoint:
        cost = sv.value("cost")
        return HubPoint(eps, cost, {c: sv.value(c) for c in CRITERION.values()},
                        None if bound is None else min(bound, cost), r.status,
                        extract_plan(sv.b, s))

    out: list[HubFront] = []
    for front in fronts:
        crit = CRITERION[front]
        for v, x in start:
            v.set_value(x, skip_validation=True)
        c_star = sv.value("cost")
        # lines on a grid around the hub's cost per unit of the criterion; none when its
        # least-cost plan has none of it (nothing to cut, and λ would run to 1e13)
        scale = c_star / sv.value(crit) if sv.value(crit) > 1e-9 else None
        lex = sv.solve(f"{hub}:{front}:cost_end", sv.expr(crit),
                       cap=("cost", _cap_level(c_star, COST_CAP_REL)), time_limit_s=limit(),
                       mip_gap=crit_gap)
        if lex.objective is None:
            for v, x in start:
                v.set_value(x, skip_validation=True)
        cost_end = point(lex, None, cost_bound)
        g_nad = cost_end.criteria[crit]
        low = sv.solve(f"{hub}:{front}:min", sv.expr(crit), time_limit_s=limit(),
                       mip_gap=crit_gap, neighbourhood=True)
        if low.objective is None:  # cannot happen from a feasible start
            raise HubFrontError(f"hub {hub}: no plan of least {crit}")
        g_star = low.objective
        level_end = _cap_level(g_star, LEX_REL)
        other = sv.solve(f"{hub}:{front}:min_cost", sv.expr("cost"),
                         cap=(crit, level_end), time_limit_s=limit(), mip_gap=gap,
                         polish=True)
        end_bound = other.bound
        steps: list[tuple[float, float]] = []
        trunk_s = limit()  # its share of the budget is spent either way
        if other.status != "optimal" and (trunk_s is None or trunk_s >= TRUNK_MIN_S):
            wide = _cap_level(g_star, TRUNK_WIDEN)
            tb = sv.trunk_bound(f"{hub}:{front}:min_cost:trunk", (crit, wide),
                                TRUNK_UNLIMITED_S if trunk_s is None else trunk_s)
            if tb is not None:
                steps.append((wide, tb))
                if end_bound is None or tb > end_bound:
                    end_bound = tb
        crit_end = point(other, level_end, end_bound)
        r1 = max(crit_end.cost - cost_end.cost, 1e-6)
        r2 = g_nad - g_star
        interior: list[HubPoint] = []
        flat = r2 <= 1e-6 * max(1.0, abs(g_nad))
        for k in range(1, points - 1):
            level = g_star + k * r2 / (points - 1)
            if flat:
                # nothing to trade at this hub (the whole model's test): every point is its
                # least-cost plan, which meets any level from its own criterion up
                interior.append(HubPoint(_cap_level(g_nad), cost_end.cost, cost_end.criteria,
                                         cost_end.bound, cost_end.status, cost_end.plan))
                done += 1
                continue
            r = sv.solve(f"{hub}:{front}:eps{k}", sv.expr("cost"),
                         eps=(crit, level, DELTA * r1 / max(r2, 1e-9)), time_limit_s=limit(),
                         mip_gap=gap, polish=True)
            if r.objective is None:  # from a feasible start HiGHS keeps it; be safe
                raise HubFrontError(f"hub {hub}: no plan at {crit} <= {level}")
            interior.append(point(r, _cap_level(level), r.bound))
        # the lines at the slopes between the hub's own points (where its front bends) and on
        # a grid around its average cost per unit of the criterion
        pts = sorted([(q.criteria[crit], q.cost) for q in [cost_end, *interior, crit_end]])
        slopes = [(c0 - c1) / (g1 - g0) for (g0, c0), (g1, c1) in pairwise(pts)
                  if g1 - g0 > 1e-9 * max(1.0, abs(g1)) and c0 > c1]
        grid = [] if scale is None else [rel * scale for rel in LAMBDA_GRID]
        lines = _lines(sv, crit, sorted({*grid, *slopes}), deadline) if grid or slopes else []
        floor = low.bound if low.bound is not None else 0.0
        out.append(HubFront(hub, cost_end, crit_end, interior, min(floor, g_star), lines,
                            sv.solves[:], steps))
        sv.solves.clear()
    return out


def _lines(sv: Any, crit: str, lambdas: list[float],
           deadline: float | None) -> list[tuple[float, float]]:
    """(λ, L(λ)) for the hub's LP relaxation of min cost + λ·criterion at each of
    `lambdas` (one LP, re-solved warm per λ; what is left of 30 s, or of the time to
    `deadline`, at least 1 s)."""
    from optimizer.neighbourhood import relaxed_highs
    from optimizer.solver import compile_model

    sv._clear()  # the last point's objective and rows
    m = sv.b.model
    m.fr_lines = pyo.Objective(expr=m.cost.expr, sense=pyo.minimize)
    try:
        comp = compile_model(m)
    finally:
        m.del_component("fr_lines")
    col = {id(v): j for j, v in enumerate(comp.columns)}
    repn = generate_standard_repn(sv.expr(crit), compute_values=True)
    g = np.zeros(len(comp.columns))
    for v, a in zip(repn.linear_vars, repn.linear_coefs, strict=True):
        if id(v) in col:
            g[col[id(v)]] += a
    g0 = float(repn.constant)
    c0 = np.asarray(comp.lp.col_cost_, dtype=np.float64).copy()
    limit = 30.0 if deadline is None else min(30.0, max(1.0, deadline - time.time()))
    h = relaxed_highs(comp, limit, sv.threads)
    out = []
    import highspy

    idx = np.arange(len(c0), dtype=np.int32)
    for lam in lambdas:
        h.changeColsCost(len(c0), idx, c0 + lam * g)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            continue
        # the LP's optimum proven by its dual: a valid line only at optimality
        out.append((lam, float(h.getInfo().objective_function_value) + lam * g0))
    return out


def county_bound(eps: float, parts: list[HubFront], crit: str) -> float | None:
    """The least Σ_h φ_h(f2_h) over every split with Σ_h f2_h ≤ eps, φ_h the hub's lower
    bound on its cost at criterion f2_h (module docstring): a lower bound on the cost of
    every county plan meeting eps, up to the segments' sliver. None when a hub has no bound
    at its least cost."""
    from optimizer.solver import run_highs

    m = pyo.ConcreteModel()
    H = range(len(parts))
    m.g = pyo.Var(H, domain=pyo.NonNegativeReals)
    m.t = pyo.Var(H, domain=pyo.Reals)
    m.rows = pyo.ConstraintList()
    obj = 0
    for i, p in zip(H, parts, strict=True):
        if p.cost_end.bound is None:
            return None
        m.rows.add(m.g[i] >= p.crit_floor)
        m.rows.add(m.t[i] >= p.cost_end.bound)
        for lam, L in p.lines:
            m.rows.add(m.t[i] + lam * m.g[i] >= L)
        # segments of the hub's ε solves: f2 in (ε_{j-1}, ε_j] ⇒ cost ≥ max_{i≥j} B_i
        levels = sorted([(q.eps, q.bound) for q in [p.crit_end, *p.interior]
                         if q.eps is not None and q.bound is not None] + p.steps)
        if levels:
            best = -float("inf")
            segs = []
            for e, b in reversed(levels):
                best = max(best, b)
                segs.append((e, best))
            segs.reverse()
            n = len(segs)
            y = pyo.Var(range(n + 1), domain=pyo.Binary)
            m.add_component(f"y{i}", y)
            m.rows.add(sum(y[j] for j in range(n + 1)) == 1)
            # segment j starts a millionth above ε_{j-1} (a gram of the county week's
            # 1.7 t a hub; `SEGMENT_ABS` at least): a strict "above" is no MILP row, and
            # at ε_{j-1} itself every hub would take the looser bound of segment j. A plan
            # within that sliver above a level is charged the level's bound: the bound
            # holds up to it (module docstring).
            lo = [p.crit_floor] + [e + SEGMENT_REL * abs(e) + SEGMENT_ABS for e, _b in segs]
            big = max(eps, lo[-1])  # every g_h ≤ ε: the g's are ≥ 0 and add up to ≤ ε
            m.rows.add(m.g[i] <= sum(y[j] * segs[j][0] for j in range(n)) + y[n] * big)
            m.rows.add(m.g[i] >= sum(y[j] * lo[j] for j in range(n + 1)))
            m.rows.add(m.t[i] >= sum(y[j] * segs[j][1] for j in range(n))
                       + y[n] * p.cost_end.bound)
        obj += m.t[i]
    m.rows.add(sum(m.g[i] for i in H) <= eps)
    m.obj = pyo.Objective(expr=obj, sense=pyo.minimize)
    r = run_highs(m, mip_gap=0.0, threads=1, explain_infeasible=False)
    if r.bound is None:
        return None
    return r.bound


def point_bound(qs: list[HubPoint], parts: list[HubFront], crit: str) -> float | None:
    """The county bound of the point made of the hubs' plans `qs`: `county_bound` at the
    criterion those plans reach, a bound on every county plan no worse on the criterion
    than the point. Why not at the point's level Σ ε_h: the far end's levels sit a millionth
    above the hubs' least (`LEX_REL`), and that sliver let the bound move hubs whose least
    is proven onto their next, far lower step."""
    reached = sum(q.criteria[crit] for q in qs)
    return county_bound(max(reached, sum(p.crit_floor for p in parts)), parts, crit)


def run_hub_tasks(s: Scenario, tasks: list[tuple[Any, ...]], workers: int,
                  on_hub: Any = None) -> list[list[HubFront]]:
    """`hub_task` for each task, `workers` at a time in the planner's `worker_pool` (the
    largest hubs first: the caller orders them); `on_hub(hub, done, hubs)` as each
    finishes."""
    from optimizer.planner import worker_pool

    def told(k: int, hub: str) -> None:
        if on_hub is not None:
            on_hub(hub, k, len(tasks))

    if workers <= 1 or len(tasks) <= 1:
        out = []
        for k, t in enumerate(tasks, 1):
            out.append(hub_fronts(s, *t[1:]))
            told(k, t[1])
        return out
    with worker_pool(s, workers) as pool:
        futures = {pool.submit(hub_task, t): t[1] for t in tasks}
        for k, f in enumerate(cf.as_completed(futures), 1):
            f.result()  # a hub's failure ends the wait now, not after the others
            told(k, futures[f])
        return [f.result() for f in futures]


def solve_by_hub(s: Scenario, first: Any, *, points: int, fronts: tuple[str, ...],
                 time_limit_s: float | None, mip_gap: float | None, threads: int | None,
                 on_point: Any, t0: float, on_hub: Any = None,
                 run_tasks: TaskRunner | None = None) -> Any:
    """The fronts from the planner's least-cost plan `first` (a `PlanResult` over several
    hubs whose plans keep the county fleet), each hub on its own (module docstring); None
    when a hub's solves failed where they should not (`HubFrontError`). `run_tasks` runs
    the hubs' tasks (`TaskRunner`; default `run_hub_tasks`)."""
    import os

    from optimizer.frontier_model import (
        CRITERION,
        Front,
        Frontier,
        FrontierPoint,
        _non_dominated,
    )
    from optimizer.stages import group_rows

    hubs = sorted(first.plan["hubs"])
    by_hub: dict[str, float | None] = {}
    for h in first.stats.get("hubs", []):
        for hub in h["hubs"]:
            by_hub[hub] = (h.get("joint") or {}).get("bound")
    rows = {h: max(1, group_rows(s, [h])) for h in hubs}
    order = sorted(hubs, key=lambda h: -rows[h])
    workers = max(1, min(len(hubs), threads or os.cpu_count() or 1))
    hub_threads = 1 if workers > 1 else threads
    n_int = max(0, points - 2)
    total = None if time_limit_s is None else time_limit_s * limits_per_front(points) * len(
        fronts)
    deadline = None if total is None else time.time() + total
    tasks = []
    for h in order:
        budget = None if total is None else (
            BUDGET_SHARE * total * workers * rows[h] / sum(rows.values()))
        tasks.append((None, h, fronts, hub_plan(first.plan, h), by_hub.get(h), points, budget,
                      deadline, mip_gap, hub_threads))
    try:
        results = dict(zip(order, (run_tasks or run_hub_tasks)(s, tasks, workers, on_hub),
                           strict=True))
    except HubFrontError:
        return None
    found: list[FrontierPoint] = []
    payoff: dict[str, dict[str, float | None]] = {}
    ends: dict[str, FrontierPoint] = {}
    dropped = 0
    solves = [q for h in hubs for f in results[h] for q in f.solves]
    for i, name in enumerate(fronts):
        front = cast(Front, name)
        crit = CRITERION[front]
        parts = [results[h][i] for h in hubs]

        def county(qs: list[HubPoint], bound: float | None, role: str,
                   eps: float | None, front: Front = front) -> FrontierPoint:
            # the least cost's bound holds at every ε: an ε row only raises the least cost
            if first.bound is not None:
                bound = first.bound if bound is None else max(bound, first.bound)
            return FrontierPoint(front, role, eps, _county_result(s, qs, bound, {
                "by_hub": True, "hub_bounds": [q.bound for q in qs]}))

        cost_pt = county([p.cost_end for p in parts], first.bound, "cost_optimal", None)
        ends_q = [p.crit_end for p in parts]
        other = county(ends_q, point_bound(ends_q, parts, crit), front + "_optimal", None)
        interior = []
        for k in range(n_int):
            qs = [p.interior[k] for p in parts]
            eps_k = sum(q.eps or 0.0 for q in qs)
            interior.append(county(qs, point_bound(qs, parts, crit), "interior", eps_k))
        pts = [cost_pt, other, *interior]
        for p in pts:
            if on_point is not None:
                on_point(p)
        kept, n_drop = _non_dominated(pts)
        dropped += n_drop
        kept, cost_pt, other = _ends(kept, front)
        if "cost_optimal" not in ends or cost_pt.cost_cny < ends["cost_optimal"].cost_cny:
            ends["cost_optimal"] = cost_pt  # the cheapest of the fronts' (both fronts')
        ends[front + "_optimal"] = other
        found += kept
        payoff[front] = {"cost_min": cost_pt.cost_cny, f"cost_at_min_{front}": other.cost_cny,
                         f"{front}_min": other.criterion(),
                         f"{front}_at_min_cost": cost_pt.criterion(),
                         f"{front}_min_bound": sum(p.crit_floor for p in parts)}
    stats = {"wall_s": time.perf_counter() - t0, "by_hub": True, "hubs": len(hubs),
             "workers": workers, "solves": [{"label": "cost (planner)", "status": first.status,
                                             "objective": first.objective,
                                             "bound": first.bound}, *solves],
             "dropped_dominated": dropped, "points_per_front": points}
    return Frontier(points=found, payoff=payoff, ends=ends, stats=stats)


def _ends(kept: list[Any], front: str) -> tuple[list[Any], Any, Any]:
    """The kept points (ordered by cost) with the cheapest as the cost-optimal end and the
    least criterion as the other end. Hub by hub, a point's solves may find a plan cheaper
    than the planner's least-cost one and no worse on the criterion (the county week's CO2e
    front: the hubs' CO2e solves went on cutting cost, which the carbon price aligns with
    CO2e); the planner's plan is then dominated and dropped, and the ends are the best
    found."""
    import dataclasses

    role = front + "_optimal"
    cheap = kept[0]
    if cheap.role != "cost_optimal":
        kept = [dataclasses.replace(p, role="interior") if p.role == "cost_optimal" else p
                for p in kept]
        cheap = kept[0] = dataclasses.replace(kept[0], role="cost_optimal", epsilon=None)
    low = min(kept, key=lambda p: (p.criterion(), p.cost_cny))
    if low is not cheap and low.role != role:
        k = kept.index(low)
        kept = [dataclasses.replace(p, role="interior") if p.role == role else p
                for p in kept]
        low = kept[k] = dataclasses.replace(kept[k], role=role, epsilon=None)
    return kept, cheap, low


def _county_result(s: Scenario, qs: list[HubPoint], bound: float | None,
                   stats: dict[str, Any]) -> Any:
    """The hubs' plans at one point as the county's `PlanResult`, its gap against `bound`."""
    from optimizer.frontier_model import plan_result
    from optimizer.plan import merge_plans

    return plan_result(s, merge_plans([q.plan for q in qs]), sum(q.cost for q in qs), bound,
                       any(q.status.startswith("time_limit") for q in qs), stats)
