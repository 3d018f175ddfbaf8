"""Single-visit trip selection (CVRP): set partitioning over every capacity-feasible route.

Every admissible customer subset gets its exact shortest tour (Held-Karp, optimizer.routes),
so the set-partitioning MILP over all of them is an exact CVRP formulation. Enumeration alone
can leave millions of columns, so we use the classical reduced-cost argument: with the
LP relaxation's optimum z_LP and duals, any integer solution using route r costs at least
z_LP + rc(r); given any incumbent of cost UB, routes with rc(r) > UB - z_LP cannot improve
it and are dropped. The LP over all columns is solved straight from arrays (one HiGHS call
pricing every enumerated route at once: column generation with a complete pricing step); the
reduced MILP is the same trip-selection model as the joint planner's, in Pyomo.
"""

from __future__ import annotations

import math
import time
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo

from optimizer.pyvrp_routes import pyvrp_pool
from optimizer.result import PlanResult, PlanStatus
from optimizer.routes import MAX_ENUM_CUSTOMERS, DistanceOracle, subset_tours, tour_order
from optimizer.scenario import Scenario
from optimizer.solver import INF, ProgressFn, make_highs, relative_gap, run_highs
from optimizer.vrplib import cvrplib_routes

MAX_MILP_COLUMNS = 60_000
#: PyVRP's time with no --time-limit, and its share of a limit (the rest: the MILP)
DEFAULT_POOL_S = 30.0
POOL_SHARE = 0.7


def _partition_lp(costs: np.ndarray, masks: np.ndarray, n: int, k: int | None,
                  exact: bool, threads: int | None):
    """LP relaxation over all columns, built as arrays. Returns (z, duals_cust, dual_fleet)."""
    m = len(costs)
    rows = n + (1 if k is not None else 0)
    bits = ((masks[:, None] >> np.arange(n)[None, :]) & 1).astype(bool)
    counts = bits.sum(axis=1)
    nnz_per = counts + (1 if k is not None else 0)
    start = np.zeros(m + 1, dtype=np.int64)
    np.cumsum(nnz_per, out=start[1:])
    col_idx, cust = np.nonzero(bits)
    if k is not None:
        index = np.empty(start[-1], dtype=np.int32)
        # place customer rows then the fleet row for each column
        pos = start[:-1][col_idx] + (np.arange(len(col_idx)) - np.repeat(
            np.concatenate([[0], np.cumsum(counts)[:-1]]), counts))
        index[pos] = cust
        index[start[1:] - 1] = n
    else:
        index = cust.astype(np.int32)
    lp = highspy.HighsLp()
    lp.num_col_ = m
    lp.num_row_ = rows
    lp.col_cost_ = costs.astype(np.float64)
    lp.col_lower_ = np.zeros(m)
    lp.col_upper_ = np.full(m, INF)
    lo = np.ones(rows)
    hi = np.ones(rows)
    if k is not None:
        lo[n] = k if exact else 0
        hi[n] = k
    lp.row_lower_ = lo
    lp.row_upper_ = hi
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = start.astype(np.int32)
    lp.a_matrix_.index_ = index.astype(np.int32)
    lp.a_matrix_.value_ = np.ones(len(index))
    lp.a_matrix_.num_col_ = m
    lp.a_matrix_.num_row_ = rows
    h = make_highs(None, None, threads)
    h.passModel(lp)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None, None, None
    sol = h.getSolution()
    duals = np.asarray(sol.row_dual)
    z = h.getInfo().objective_function_value
    return z, duals[:n], (duals[n] if k is not None else 0.0)


def _reduced_costs(costs, masks, n, pi, mu) -> np.ndarray:
    rc = costs - mu
    for j in range(n):
        rc = rc - pi[j] * ((masks >> j) & 1)
    return rc


def _column_generation(costs, masks, n, k, exact, threads, batch: int = 3000):
    """LP relaxation over all enumerated routes by column generation: a restricted master
    over a few thousand routes, priced against every route with HiGHS's duals (a vectorised
    pass over the enumeration), until no route has a negative reduced cost. Same optimum as
    the LP over all columns; far smaller LPs on instances with millions of routes."""
    if len(costs) <= 4 * batch:
        z, pi, mu = _partition_lp(costs, masks, n, k, exact, threads)
        return z, pi, mu, 1
    sizes = np.zeros(len(masks))
    for j in range(n):
        sizes += (masks >> j) & 1
    # start: every single-customer route plus the cheapest routes per customer served
    start = set(np.nonzero(sizes == 1)[0].tolist())
    start |= set(np.argsort(costs / sizes, kind="stable")[:batch].tolist())
    active = np.array(sorted(start))
    rounds = 0
    while True:
        rounds += 1
        z, pi, mu = _partition_lp(costs[active], masks[active], n, k, exact, threads)
        if z is None:  # restricted master infeasible (exact fleet): widen and retry
            active = np.union1d(active, np.argsort(costs, kind="stable")[: len(active) * 2])
            if len(active) >= len(costs):
                z, pi, mu = _partition_lp(costs, masks, n, k, exact, threads)
                return z, pi, mu, rounds
            continue
        rc = _reduced_costs(costs, masks, n, pi, mu)
        neg = np.nonzero(rc < -1e-7)[0]
        if len(neg) == 0:
            return z, pi, mu, rounds
        add = neg[np.argsort(rc[neg], kind="stable")[:batch]]
        active = np.union1d(active, add)


def _partition_milp(costs, masks, n, k, exact, time_limit_s, mip_gap, threads, progress,
                    warm: list[int] | None):
    m = pyo.ConcreteModel()
    cols = range(len(costs))
    m.x = pyo.Var(cols, domain=pyo.Binary)
    by_cust: list[list[int]] = [[] for _ in range(n)]
    for r, mask in enumerate(masks.tolist()):
        for j in range(n):
            if (mask >> j) & 1:
                by_cust[j].append(r)
    m.cover = pyo.Constraint(range(n), rule=lambda m, j: sum(m.x[r] for r in by_cust[j]) == 1)
    if k is not None:
        if exact:
            m.fleet = pyo.Constraint(expr=sum(m.x[r] for r in cols) == k)
        else:
            m.fleet = pyo.Constraint(expr=sum(m.x[r] for r in cols) <= k)
    cl = costs.tolist()
    m.cost = pyo.Objective(expr=sum(cl[r] * m.x[r] for r in cols))
    if warm is not None:
        for r in cols:
            m.x[r].set_value(1 if r in warm else 0)
    res = run_highs(m, time_limit_s=time_limit_s, mip_gap=mip_gap, threads=threads,
                    warm_start=warm is not None, progress=progress, label="cvrp")
    chosen = [r for r in cols if (m.x[r].value or 0) > 0.5] if res.objective is not None else []
    return res, chosen


def solve_cvrp(s: Scenario, *, time_limit_s: float | None = None, mip_gap: float | None = None,
               threads: int | None = None, progress: ProgressFn | None = None) -> PlanResult:
    """Solve a single-visit scenario (one hub, one day, one class; `routing.single_visit`)
    as a CVRP: each village on exactly one route, with the fleet `count` as the number of
    routes (exactly, with `routing.exact_fleet`). The CVRPLIB import
    (`optimizer.vrplib.scenario_from_vrp`) builds such scenarios."""
    t0 = time.perf_counter()
    hub = s.hubs[0].hub_id
    vids = [v.village_id for v in s.villages]
    n = len(vids)
    lpp = s.class_by_id()
    demand = np.zeros(n)
    pos = {v: k for k, v in enumerate(vids)}
    for g in s.demand:
        demand[pos[g.village_id]] += g.parcels * lpp[g.class_id].litres_per_parcel
    vt = next(v for v in s.vehicle_types if v.base == "hub")
    cap = sum(vt.compartments_litres.values())
    k = vt.count
    exact = s.routing.exact_fleet
    oracle = DistanceOracle(s)
    dist = oracle.matrix([hub, *vids])
    if (demand > cap + 1e-9).any():
        bad = [vids[j] for j in np.nonzero(demand > cap + 1e-9)[0]]
        return PlanResult.infeasible([
            {"what": f"demand at {v}", "why": f"exceeds vehicle capacity {cap:g}"} for v in bad])
    if n > MAX_ENUM_CUSTOMERS:
        return _solve_from_pool(s, dist, demand, cap, n if k is None else k, exact,
                                time_limit_s, mip_gap, threads, progress, t0)
    te = time.perf_counter()
    masks, km, _last = subset_tours(dist, demand, cap, vt.max_stops)
    costs = km * vt.cost_per_km_cny + vt.fixed_cost_cny
    enum_s = time.perf_counter() - te
    tl = time.perf_counter()
    z_lp, pi, mu, cg_rounds = _column_generation(costs, masks, n, k, exact, threads)
    stats_cg = {"cg_rounds": cg_rounds}
    lp_s = time.perf_counter() - tl
    stats: dict[str, Any] = {"routes_enumerated": int(len(masks)), "enumerate_s": enum_s,
                             "lp_s": lp_s, **stats_cg}
    if z_lp is None:
        return PlanResult.infeasible([
            {"what": "all customers", "why": f"cannot be covered by {k} vehicles of capacity "
             f"{cap:g} (total demand {demand.sum():g})"}], stats=stats)
    rc = _reduced_costs(costs, masks, n, pi, mu)
    stats["lp_bound"] = z_lp
    # incumbent: MILP over the columns with the smallest reduced costs
    order = np.argsort(rc, kind="stable")
    remaining = None if time_limit_s is None else time_limit_s
    first = order[: min(len(order), 3000)]
    res1, chosen1 = _partition_milp(costs[first], masks[first], n, k, exact,
                                    None if remaining is None else max(1.0, remaining * 0.3),
                                    None, threads, progress, None)
    ub = res1.objective if res1.objective is not None else math.inf
    if math.isfinite(ub):
        keep = np.nonzero(rc <= (ub - z_lp) + 1e-6)[0]
    else:
        keep = order[:MAX_MILP_COLUMNS]
    complete = len(keep) <= MAX_MILP_COLUMNS
    if not complete:
        keep = order[:MAX_MILP_COLUMNS]
    stats["routes_after_reduced_cost_fixing"] = int(len(keep))
    stats["reduced_set_complete"] = bool(complete)
    warm = None
    if chosen1:
        chosen_masks = set(masks[first][chosen1].tolist())
        keep_masks = masks[keep].tolist()
        warm = [r for r, mk in enumerate(keep_masks) if mk in chosen_masks]
        if len(warm) != len(chosen1):
            keep = np.concatenate([keep, first[chosen1]])
            keep_masks = masks[keep].tolist()
            warm = [r for r, mk in enumerate(keep_masks) if mk in chosen_masks][: len(chosen1)]
    left = None if time_limit_s is None else max(1.0, time_limit_s - (time.perf_counter() - t0))
    res2, chosen2 = _partition_milp(costs[keep], masks[keep], n, k, exact, left, mip_gap,
                                    threads, progress, warm)
    if res2.objective is None:
        res2, chosen2 = res1, chosen1
        keep = first
    sel = keep[chosen2]
    obj = float(costs[sel].sum())
    bound = z_lp
    if complete and res2.bound is not None:
        bound = max(z_lp, res2.bound)
    gap = relative_gap(obj, bound)
    status: PlanStatus = "optimal" if gap <= 1e-9 else (
        "time_limit" if res2.status.startswith("time_limit") else "feasible")
    chosen = [([j - 1 for j in tour_order(dist, int(masks[r]))], float(km[r])) for r in sel]
    stats["milp_highs_s"] = res2.highs_s
    return _result(s, chosen, obj, bound, gap, status, demand, cap, stats, t0)


def _result(s: Scenario, chosen: list[tuple[list[int], float]], obj: float,
            bound: float | None, gap: float | None, status: PlanStatus, demand: np.ndarray,
            cap: float, stats: dict[str, Any], t0: float) -> PlanResult:
    """The plan of the chosen routes (customer positions 0..n-1 in visiting order, km)."""
    hub = s.hubs[0].hub_id
    vids = [v.village_id for v in s.villages]
    lpp = s.class_by_id()
    vt = next(v for v in s.vehicle_types if v.base == "hub")
    routes_stops = []
    trips: list[dict[str, Any]] = []
    for order, route_km in chosen:
        stops = [vids[j] for j in order]
        routes_stops.append(stops)
        trips.append({
            "day": 0, "hub_id": hub, "kind": "milk_run", "vehicle_type": vt.vehicle_type,
            "purpose": "all", "stops": stops, "km": route_km,
            "loads": {"down_litres": {next(iter(lpp)): float(sum(demand[j] for j in order))},
                      "up_litres": {}, "empties": {}, "recyclables_grams": 0.0},
        })
    stats.update({"wall_s": time.perf_counter() - t0, "milk_runs": len(trips)})
    total_km = float(sum(t["km"] for t in trips))
    kpis = {"km": total_km, "trips": len(trips),
            "vehicle_utilisation": {"outbound": float(demand.sum() / (cap * max(1, len(trips))))},
            "cost_cny": {"total": obj}}
    plan = {"mode": "joint", "horizon_days": 1, "horizon_end": s.horizon_end, "hubs": [hub],
            "trips": trips, "packaging": [], "service": [], "containers": [], "recyclables": []}
    return PlanResult(status=status, objective=obj, bound=bound, gap=gap, plan=plan, kpis=kpis,
                      stats=stats, factor_set=s.factor_set, routes=cvrplib_routes(routes_stops))


def _solve_from_pool(s: Scenario, dist: np.ndarray, demand: np.ndarray, cap: float,
                     k: int, exact: bool, time_limit_s: float | None, mip_gap: float | None,
                     threads: int | None, progress: ProgressFn | None,
                     t0: float) -> PlanResult:
    """Above the enumeration limit: PyVRP's routes (several seeds), then the set-partitioning
    MILP over them. No bound over all routes: `bound` and `gap` are None; what the MILP
    proves about the pool is in `stats` (`pool_bound`)."""
    n = len(demand)
    vt = next(v for v in s.vehicle_types if v.base == "hub")
    budget = DEFAULT_POOL_S if time_limit_s is None else max(1.0, time_limit_s)
    tp = time.perf_counter()
    pool = pyvrp_pool(dist, demand, cap, k, POOL_SHARE * budget)
    stats: dict[str, Any] = {"route_source": "pyvrp", "pool_routes": len(pool),
                             "pyvrp_s": time.perf_counter() - tp, "route_gap": None,
                             "bound_covers": "the routes PyVRP found only: no bound over "
                                             "all routes (route_gap null)"}
    if not pool:
        return PlanResult.infeasible([{"what": "PyVRP", "why": f"no feasible solution with "
                                       f"{k} vehicles of capacity {cap:g}"}], stats=stats)
    masks = np.array([sum(1 << (j - 1) for j in r.visits) for r in pool], dtype=object)
    costs = np.array([r.km * vt.cost_per_km_cny + vt.fixed_cost_cny for r in pool])
    left = max(1.0, budget - (time.perf_counter() - t0))
    # no progress lines: the MILP's bound is the pool's, and would read as the instance's
    res, chosen = _partition_milp(costs, masks, n, k, exact, left, mip_gap, threads, None, None)
    if res.objective is None:
        return PlanResult.infeasible([{"what": "route pool", "why": (
            f"PyVRP's {len(pool)} routes do not combine into exactly {k} routes; try "
            "--fleet free") if exact else f"no combination of PyVRP's {len(pool)} routes "
            "serves every customer"}], stats=stats)
    stats.update({"pool_bound": res.bound, "milp_highs_s": res.highs_s})
    obj = float(costs[chosen].sum())
    picked = [([j - 1 for j in pool[r].visits], pool[r].km) for r in chosen]
    return _result(s, picked, obj, None, None, "feasible", demand, cap, stats, t0)
