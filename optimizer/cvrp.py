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
import warnings
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo

from optimizer.pyvrp_routes import PyvrpRuns, VanType, pyvrp_solve
from optimizer.result import PlanResult, PlanStatus
from optimizer.route_bound import enumerate_within_gap, qroute_bound
from optimizer.routes import (
    MAX_ENUM_CUSTOMERS,
    DistanceOracle,
    subset_tours,
    tour_km,
    tour_order,
)
from optimizer.scenario import Scenario
from optimizer.solver import (
    INF,
    PROVEN_GAP,
    ProgressFn,
    make_highs,
    relative_gap,
    run_highs,
)

MAX_MILP_COLUMNS = 60_000
#: enumerate every feasible route only when this is cheap: at most this many customers
#: (two below `routes.MAX_ENUM_CUSTOMERS`, the hard cap of `subset_tours`: its Held-Karp
#: tables are 2^n long, 0.5 GB each at 26) and at most this many admissible subsets
#: (E-n23-k3's 2 million take about 15 s)
ENUM_MAX_CUSTOMERS = MAX_ENUM_CUSTOMERS - 2
ENUM_MAX_SUBSETS = 3_000_000
#: what `stats.bound_covers` says of the bound
ALL_ROUTES = "all feasible routes (every admissible subset enumerated)"
POOL_ROUTES = ("the route pool only (PyVRP routes and their one-customer-shorter variants): "
               "not a bound over all routes")
QROUTE_BOUND = ("all routes: the LP over q-routes (walks within capacity, no i-j-i "
                "cycles), priced exactly by dynamic programming; a relaxation of every route")
ENUMERATED_WITHIN_GAP = ("all routes: every route whose reduced cost under the converged "
                         "all-routes LP's duals is within the gap between the plan and that "
                         "LP was enumerated, and the MILP over them solved to optimality")
#: share of the time limit the all-routes bound may take at most
BOUND_SHARE = 0.15
#: share of what is left after the pool MILP that the enumeration within the gap may take
ENUMERATE_SHARE = 0.6
#: share of the time limit PyVRP gets to build the pool; the MILP over it gets the rest
PYVRP_SHARE = 0.3
DEFAULT_POOL_SECONDS = 30.0


def admissible_subsets(demand: np.ndarray, capacity: float, max_size: int) -> float:
    """Upper estimate of the customer subsets within `capacity` and `max_size`: a count by
    dynamic programme over (size, load), with loads floored onto at most 2,000 steps, so
    the estimate never falls below the true number."""
    steps = min(2000, max(1, math.floor(capacity)))
    unit = capacity / steps
    w = np.floor(demand / unit + 1e-9).astype(np.int64)
    count = np.zeros((max_size + 1, steps + 1))
    count[0, 0] = 1.0
    for wk in w.tolist():
        if wk > steps:
            continue
        count[1:, wk:] += count[:-1, : steps + 1 - wk].copy()
    return float(count[1:].sum())


def integral_costs(dist: np.ndarray, cost_per_km: float, fixed_cost: float) -> bool:
    """Whether every arc cost (`dist` × `cost_per_km`) and the fixed cost per route are whole
    numbers, so that every plan costs a whole number and a better plan than one costing UB
    costs at most UB − 1. Judged with an absolute tolerance only: a relative one (numpy's
    default rtol) takes 123456.4 for a whole number."""
    arc = np.asarray(dist, dtype=float) * cost_per_km
    return bool(np.allclose(arc, np.round(arc), rtol=0.0, atol=1e-6)) and abs(
        fixed_cost - round(fixed_cost)) <= 1e-6


def min_routes(demand: np.ndarray, capacity: float) -> tuple[int, str]:
    """A lower bound on the number of routes of capacity `capacity` that serve every
    customer (customer demands `demand`, each at most `capacity`), and why: the
    Martello–Toth bin-packing bound L2, at least ceil(total demand / capacity).

    For a threshold K (0 or a demand up to half the capacity Q): J1 are the demands over
    Q − K, J2 those from there down to over Q/2, J3 those from Q/2 down to K. No two of
    J1 ∪ J2 share a route; no J3 demand fits beside a J1 demand (that leaves less than K);
    so L(K) = |J1| + |J2| + ceil((sum J3 − (|J2|·Q − sum J2)) / Q)⁺. The capacity is taken
    with the routes' tolerance (a load may exceed it by 1e-9, or by 1e-9 of it when larger),
    so the bound holds for every route this module accepts."""
    d = np.sort(np.asarray(demand, dtype=float))
    q = capacity + 1e-9 * max(1.0, abs(capacity))
    total = float(d.sum())
    by_total = max(0, math.ceil(total / q - 1e-9))
    if d.size == 0:
        return 0, "no customers"
    pre = np.concatenate([[0.0], np.cumsum(d)])
    half = q / 2
    h = int(np.searchsorted(d, half, side="right"))  # d[:h] <= Q/2 < d[h:]
    n_big = d.size - h
    best, best_k, best_extra = -1, 0.0, 0
    for k_thr in np.unique(np.concatenate([[0.0], d[:h]])).tolist():
        top = int(np.searchsorted(d, q - k_thr, side="right"))  # d[top:] > Q − K: J1
        n2, sum2 = top - h, float(pre[top] - pre[h])
        lo = int(np.searchsorted(d, k_thr, side="left"))  # d[lo:h] in [K, Q/2]: J3
        sum3 = float(pre[h] - pre[lo])
        extra = max(0, math.ceil((sum3 - (n2 * q - sum2)) / q - 1e-9))
        if n_big + extra > best:
            best, best_k, best_extra = n_big + extra, k_thr, extra
    cap = f"{capacity:,.6g}"
    if by_total >= best:
        return by_total, (f"the customers' demand ({total:,.6g}) needs {by_total} routes of "
                          f"capacity {cap}")
    why = (f"{n_big} customers each have demand over half the capacity {cap}, so no two of "
           "them can share a route" if n_big > 1 else
           f"{n_big} customer has demand over half the capacity {cap}")
    if best_extra:
        top = int(np.searchsorted(d, q - best_k, side="right"))
        lo = int(np.searchsorted(d, best_k, side="left"))
        n2, room = top - h, (top - h) * capacity - float(pre[top] - pre[h])
        small = (f"the {h - lo} customers with demand from {best_k:,.6g} to half the capacity "
                 f"(total {float(pre[h] - pre[lo]):,.6g})")
        why += (f"; {small} fit beside those only in the {room:,.6g} of room left by the {n2} "
                f"with demand at most {capacity - best_k:,.6g}" if n2 else
                f"; none of {small} fits beside any of those")
        why += f", so they need {best_extra} more (Martello–Toth bin-packing bound)"
    return best, why


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
    if exact and k is not None and k > n:
        return PlanResult.infeasible([
            {"what": "fleet", "why": f"exactly {k} routes cannot each serve some of only {n} "
             "customers (--fleet free lets the number of routes float)"}])
    total = float(demand.sum())
    if exact and k is not None and total > k * cap * (1 + 1e-9):
        # arithmetic, before any search (PyVRP would only warn that it finds nothing)
        return PlanResult.infeasible([{"what": "fleet", "why": (
            f"the customers' demand ({total:,.6g}) exceeds {k} routes × capacity "
            f"{cap:,.6g} = {k * cap:,.6g}: no plan with exactly {k} routes exists "
            "(--fleet free lets the number of routes float)")}])
    need, why_need = min_routes(demand, cap)
    if exact and k is not None and need > k:
        # bin packing, before any search: customers too big to pair need their own routes
        return PlanResult.infeasible([{"what": "fleet", "why": (
            f"at least {need} routes are needed: {why_need}; no plan with exactly {k} routes "
            "exists (--fleet free lets the number of routes float)")}])
    max_size = min(vt.max_stops, n)
    if n > ENUM_MAX_CUSTOMERS or admissible_subsets(demand, cap, max_size) > ENUM_MAX_SUBSETS:
        return _solve_by_pool(s, dist, demand, cap, k, exact, time_limit_s=time_limit_s,
                              mip_gap=mip_gap, threads=threads, progress=progress, t0=t0)
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
    if z_lp is None:  # only an exact fleet can make the LP over every route infeasible
        return PlanResult.infeasible([
            {"what": "all customers", "why": f"no {k} routes within capacity {cap:g} serve "
             f"every customer once: even the LP relaxation over every feasible route has no "
             f"solution, though the demand bounds need only {need} routes (--fleet free lets "
             "the number of routes float)"}], stats=stats)
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
    if res2.objective is None and res1.objective is not None:
        res2, chosen2 = res1, chosen1
        keep = first
    if res2.objective is None:  # neither MILP found a plan: no plan (not one of no routes)
        fleet = f" with exactly {k} routes" if exact and k is not None else ""
        if res2.status.startswith("infeasible") and complete:  # over every route: proven
            return PlanResult.infeasible([{"what": "all customers", "why": (
                f"no plan{fleet} exists within capacity {cap:g} (every feasible route "
                "enumerated" + ("; --fleet free lets the number of routes float)"
                                if fleet else ")"))}], stats=stats)
        why = (f"no plan{fleet} found within the time limit (give a longer one)"
               if res2.status.startswith("time_limit") else
               f"no plan{fleet} found (HiGHS: {res2.status})")
        return PlanResult(status="time_limit", objective=None, bound=None, gap=None,
                          plan=None, kpis=None, stats=stats,
                          diagnosis=[{"what": "all customers", "why": why}])
    sel = keep[chosen2]
    obj = float(costs[sel].sum())
    bound = z_lp
    if complete and res2.bound is not None:
        bound = max(z_lp, res2.bound)
    gap = relative_gap(obj, bound)
    status: PlanStatus = "optimal" if gap <= PROVEN_GAP else (
        "time_limit" if res2.status.startswith("time_limit") else "feasible")
    stats["bound_covers"] = ALL_ROUTES if complete else (
        "the LP over all feasible routes (the MILP ran on a reduced set)")
    orders = [(tour_order(dist, int(masks[r])), float(km[r])) for r in sel]
    return _plan_result(s, orders, demand, status, obj, bound, stats, t0, res2.highs_s,
                        route_gap=0.0)


def _plan_result(s: Scenario, orders: list[tuple[list[int], float]], demand: np.ndarray,
                 status: PlanStatus, obj: float, bound: float | None, stats: dict[str, Any],
                 t0: float, milp_highs_s: float, route_gap: float | None) -> PlanResult:
    """The PlanResult of chosen routes (customer positions 1..n in driving order, km)."""
    hub = s.hubs[0].hub_id
    vids = [v.village_id for v in s.villages]
    vt = next(v for v in s.vehicle_types if v.base == "hub")
    cap = sum(vt.compartments_litres.values())
    lpp = s.class_by_id()
    trips: list[dict[str, Any]] = []
    for order_nodes, route_km in orders:
        stops = [vids[j - 1] for j in order_nodes]
        trips.append({
            "day": 0, "hub_id": hub, "kind": "milk_run", "vehicle_type": vt.vehicle_type,
            "purpose": "all", "stops": stops, "km": route_km,
            "loads": {"down_litres": {next(iter(lpp)): float(sum(
                demand[j - 1] for j in order_nodes))}, "up_litres": {}, "empties": {},
                "recyclables_grams": 0.0},
        })
    stats.update({"wall_s": time.perf_counter() - t0, "milk_runs": len(trips),
                  "milp_highs_s": milp_highs_s})
    total_km = float(sum(t["km"] for t in trips))
    kpis = {"km": total_km, "trips": len(trips),
            "vehicle_utilisation": {"outbound": float(demand.sum() / (cap * max(1, len(trips))))},
            "cost_cny": {"total": obj}}
    plan = {"mode": "joint", "horizon_days": 1, "horizon_end": s.horizon_end, "hubs": [hub],
            "trips": trips, "packaging": [], "service": [], "containers": [], "recyclables": []}
    gap = None if bound is None else relative_gap(obj, bound)
    # CVRPLIB's `.sol` numbering is the customers' positions: customer c is the c-th village
    # of the scenario, which for a `--vrplib` import is the c-th node of the file other than
    # the depot, wherever the depot is (the depot is 0)
    return PlanResult(status=status, objective=obj, bound=bound, gap=gap, plan=plan, kpis=kpis,
                      stats=stats, factor_set=s.factor_set,
                      routes=[[int(j) for j in order_nodes] for order_nodes, _km in orders],
                      route_gap=route_gap)


def _pool(dist: np.ndarray, demand: np.ndarray, cap: float, k: int | None,
          runs: PyvrpRuns) -> tuple[list[list[int]], list[list[int]] | None]:
    """Routes for the partitioning pool: PyVRP's, each with one customer left out (so
    routes of different runs recombine into a partition), and every customer alone.
    Returns the pool and the cheapest PyVRP solution whole (the warm start)."""
    van = VanType((cap,), k if k is not None else len(demand))
    with warnings.catch_warnings():
        # PyVRP's warnings (e.g. its multi-line PenaltyBoundWarning when it finds no feasible
        # solution) are not the user's business: the plan's status and diagnosis say it
        warnings.simplefilter("ignore")
        found, best = pyvrp_solve(dist, demand, None, [van], runs)
    pool: dict[frozenset[int], list[int]] = {}

    def add(order: list[int]) -> None:
        key = frozenset(order)
        if order and (key not in pool or tour_km(dist, order) < tour_km(dist, pool[key])):
            pool[key] = order

    for order in found:
        add(order)
        if len(order) > 1:
            for drop in range(len(order)):
                add(order[:drop] + order[drop + 1:])
    for c in range(1, len(demand) + 1):
        add([c])
    return list(pool.values()), best


def _split_to(routes: list[list[int]], k: int) -> list[list[int]] | None:
    """`routes` made exactly k routes by splitting the last customer off the longest one,
    again and again, or None when there are more than k routes or too few customers."""
    if len(routes) > k or sum(len(r) for r in routes) < k:
        return None
    out = [list(r) for r in routes]
    while len(out) < k:
        longest = max(range(len(out)), key=lambda i: len(out[i]))
        out.append([out[longest].pop()])
    return out


def _solve_by_pool(s: Scenario, dist: np.ndarray, demand: np.ndarray, cap: float,
                   k: int | None, exact: bool, *, time_limit_s: float | None,
                   mip_gap: float | None, threads: int | None, progress: ProgressFn | None,
                   t0: float) -> PlanResult:
    """Above the enumeration limit: a set-partitioning MILP over a PyVRP route pool. Its
    bound covers that pool only, so the status is never "optimal"."""
    vt = next(v for v in s.vehicle_types if v.base == "hub")
    n = len(demand)
    budget = DEFAULT_POOL_SECONDS if time_limit_s is None else time_limit_s
    pyvrp_s = max(0.5, budget * PYVRP_SHARE)
    # a run needs time to reach feasibility on big instances: ~3 s up to 150 customers,
    # n / 50 s beyond
    per_run = max(3.0, n / 50)
    seeds = tuple(range(1, 1 + max(1, min(8, round(pyvrp_s / per_run)))))
    runs = PyvrpRuns(seeds=seeds, seconds_per_run=pyvrp_s / len(seeds),
                     iterations_per_run=10**9)
    tp = time.perf_counter()
    orders, best = _pool(dist, demand, cap, k, runs)
    pool_s = time.perf_counter() - tp
    warm = None
    if best is not None and exact and k is not None:
        best = _split_to(best, k)
    if best is not None and (not exact or k is None or len(best) == k):
        have = {frozenset(o) for o in orders}
        orders += [o for o in best if frozenset(o) not in have]
        keys = {frozenset(o) for o in best}
        warm = [r for r, o in enumerate(orders) if frozenset(o) in keys]
    km = np.array([tour_km(dist, o) for o in orders])
    costs = km * vt.cost_per_km_cny + vt.fixed_cost_cny
    members = [[c - 1 for c in o] for o in orders]
    scale = vt.cost_per_km_cny
    integral = integral_costs(dist, scale, vt.fixed_cost_cny)
    arc_cost = dist * scale
    arc_cost[0, 1:] += vt.fixed_cost_cny  # a route's fixed cost on the arc leaving the hub
    rb = qroute_bound(arc_cost, demand, cap, k, exact, orders,
                      time_limit_s=budget * BOUND_SHARE, threads=threads,
                      integral_costs=integral)
    left = None if time_limit_s is None else max(
        1.0, time_limit_s - (time.perf_counter() - t0))
    res, chosen = _pool_milp(costs, members, n, k, exact, left, mip_gap, threads, progress,
                             warm)
    stats: dict[str, Any] = {"routes_in_pool": len(orders), "pyvrp_runs": len(seeds),
                             "pyvrp_s": pool_s, "bound_covers": POOL_ROUTES,
                             "pyvrp_best": (None if warm is None
                                            else float(costs[warm].sum())),
                             "pool_lp": rb.pool_lp, "all_routes_bound": rb.bound,
                             "all_routes_bound_covers": QROUTE_BOUND,
                             "all_routes_bound_converged": rb.converged,
                             "all_routes_cg_rounds": rb.rounds}
    if res.objective is None or not chosen:
        # no plan: nothing for a bound to cover (the report and summary say nothing of one)
        for key in ("bound_covers", "all_routes_bound_covers"):
            stats.pop(key, None)
        why = (f"no partition of the PyVRP route pool into exactly {k} routes"
               if exact and k is not None else "no plan found over the PyVRP route pool")
        if exact and k is not None:
            # the pool lacks such a partition; that none exists is not proven
            return PlanResult(status="time_limit", objective=None, bound=None, gap=None,
                              plan=None, kpis=None, stats=stats, diagnosis=[
                                  {"what": "all customers", "why": why + ": whether a plan "
                                   "with exactly that many routes exists is not proven (give "
                                   "a longer time limit, or --fleet free)"}])
        if res.status.startswith("time_limit"):
            return PlanResult(status="time_limit", objective=None, bound=None, gap=None,
                              plan=None, kpis=None, stats=stats, diagnosis=[
                                  {"what": "all customers", "why": why + " within the time "
                                   "limit (give a longer one, or --fleet free)"}])
        return PlanResult.infeasible([{"what": "all customers", "why": why}], stats=stats)
    obj = float(costs[chosen].sum())
    bound = res.bound if res.bound is not None else None
    status: PlanStatus = "time_limit" if res.status.startswith("time_limit") else "feasible"
    route_gap = None
    milp_s = res.highs_s
    plan_routes = [(orders[r], float(km[r])) for r in chosen]
    if rb.bound is not None and rb.pool_lp is not None:
        route_gap = max(0.0, rb.pool_lp - rb.bound) / max(abs(rb.pool_lp), 1e-9)
        if relative_gap(obj, rb.bound) <= 1e-9:  # the all-routes bound proves the plan
            status, bound = "optimal", rb.bound
            stats["bound_covers"] = QROUTE_BOUND
    if status != "optimal" and rb.duals is not None and rb.lp is not None:
        proof = _prove_by_enumeration(dist, arc_cost, demand, cap, k, exact, obj, rb.lp,
                                      rb.duals, [orders[r] for r in chosen], integral,
                                      time_limit_s, threads, t0, stats)
        if proof is not None:
            obj, plan_routes, extra_s = proof
            status, bound = "optimal", obj
            milp_s += extra_s
            stats["bound_covers"] = ENUMERATED_WITHIN_GAP
    return _plan_result(s, plan_routes, demand, status, obj, bound, stats, t0, milp_s,
                        route_gap=route_gap)


def _prove_by_enumeration(dist, arc_cost, demand, cap, k, exact, ub: float, lp: float, duals,
                          incumbent: list[list[int]], integral: bool,
                          time_limit_s: float | None, threads: int | None, t0: float,
                          stats: dict[str, Any]):
    """The optimum over all routes, proven, or None if the time is too short.

    Every route a plan costing at most `ub` can use has a reduced cost within ub − lp under
    the converged all-routes LP's duals (`route_bound.enumerate_within_gap`), so the MILP
    over those routes, each in its cheapest order found, holds every such plan: its optimum
    is the optimum. With integral costs a better plan costs at most ub − 1, so only routes
    within ub − 1 − lp are needed; if none of their combinations is a plan, the incumbent
    is optimal. Returns (cost, [(order, km)], HiGHS seconds)."""
    left = (DEFAULT_POOL_SECONDS if time_limit_s is None
            else time_limit_s - (time.perf_counter() - t0))
    if left <= 1.0:
        return None
    te = time.perf_counter()
    tol = 1e-9 * max(1.0, abs(ub))
    found = enumerate_within_gap(arc_cost, demand, cap, duals,
                                 ub - lp - (1.0 - 1e-6 if integral else 0.0) + tol,
                                 time_limit_s=left * ENUMERATE_SHARE)
    stats["enumerate_within_gap_s"] = time.perf_counter() - te
    if found is None:
        stats["enumerate_within_gap"] = "stopped (time or label limit): plan not proven"
        return None
    orders = [[c + 1 for c in order] for order, _cost in found.values()]
    costs_of = [cost for _order, cost in found.values()]  # arc costs: as the plan's
    stats["routes_within_gap"] = len(found)
    if not orders:
        return ub, [(o, tour_km(dist, o)) for o in incumbent], 0.0
    if not integral:  # then the incumbent's routes are within the gap: columns, each set once
        have = {frozenset(o) for o in orders}
        for o in incumbent:
            if frozenset(o) not in have:
                orders.append(o)
                costs_of.append(float(sum(arc_cost[a, b]
                                          for a, b in zip([0, *o], [*o, 0], strict=True))))
    costs = np.array(costs_of)
    keys = {frozenset(o) for o in incumbent}
    warm = [r for r, o in enumerate(orders) if frozenset(o) in keys]  # one column per set
    milp_s = None if time_limit_s is None else max(
        1.0, time_limit_s - (time.perf_counter() - t0))
    th = time.perf_counter()
    done = _proof_milp(costs, [[c - 1 for c in o] for o in orders], len(demand), k, exact,
                       milp_s, threads, warm if len(warm) == len(incumbent) else [])
    if done is None:
        return None
    outcome, chosen = done
    if outcome == "infeasible" or float(costs[chosen].sum()) >= ub - tol:
        if not integral and outcome == "infeasible":
            return None  # cannot happen: the incumbent's routes are columns
        return ub, [(o, tour_km(dist, o)) for o in incumbent], time.perf_counter() - th
    return (float(costs[chosen].sum()), [(orders[r], tour_km(dist, orders[r])) for r in chosen],
            time.perf_counter() - th)


def _proof_milp(costs: np.ndarray, members: list[list[int]], n: int, k: int | None,
                exact: bool, time_limit_s: float | None, threads: int | None,
                warm: list[int]) -> tuple[str, list[int]] | None:
    """Set partitioning over `members` (customers 0..n-1), built from arrays (tens of
    thousands of columns): ("optimal", chosen columns), ("infeasible", []), or None when
    stopped first. (The bound's capacity cuts as rows made HiGHS slower here: A-n55-k9 not
    closed in 50 s with them, in 29 s without.)"""
    cols = len(members)
    rows_of: list[list[int]] = [list(o) for o in members]
    vals_of: list[list[float]] = [[1.0] * len(o) for o in members]
    lo = [1.0] * n
    hi = [1.0] * n
    if k is not None:
        for r in range(cols):
            rows_of[r].append(n)
            vals_of[r].append(1.0)
        lo.append(float(k) if exact else 0.0)
        hi.append(float(k))
    lp = highspy.HighsLp()
    lp.num_col_ = cols
    lp.num_row_ = len(lo)
    lp.col_cost_ = np.asarray(costs, dtype=np.float64)
    lp.col_lower_ = np.zeros(cols)
    lp.col_upper_ = np.ones(cols)
    lp.row_lower_ = np.array(lo)
    lp.row_upper_ = np.array(hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = np.cumsum([0] + [len(x) for x in rows_of]).astype(np.int32)
    lp.a_matrix_.index_ = np.array([i for x in rows_of for i in x], dtype=np.int32)
    lp.a_matrix_.value_ = np.array([v for x in vals_of for v in x], dtype=np.float64)
    lp.integrality_ = [highspy.HighsVarType.kInteger] * cols
    h = make_highs(time_limit_s, 0.0, threads)
    h.passModel(lp)
    if warm:
        start = np.zeros(cols)
        start[warm] = 1.0
        sol = highspy.HighsSolution()
        sol.col_value = start.tolist()
        h.setSolution(sol)
    h.run()
    if h.getModelStatus() == highspy.HighsModelStatus.kInfeasible:
        return "infeasible", []
    info = h.getInfo()
    if info.primal_solution_status != 2:
        return None
    obj, bound = info.objective_function_value, info.mip_dual_bound
    if bound < obj - 1e-6 * max(1.0, abs(obj)):
        return None
    x = np.asarray(h.getSolution().col_value)
    return "optimal", np.nonzero(x > 0.5)[0].tolist()


def _pool_milp(costs, members, n, k, exact, time_limit_s, mip_gap, threads, progress,
               warm: list[int] | None):
    m = pyo.ConcreteModel()
    cols = range(len(costs))
    m.x = pyo.Var(cols, domain=pyo.Binary)
    by_cust: list[list[int]] = [[] for _ in range(n)]
    for r, cs in enumerate(members):
        for j in cs:
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
        chosen = set(warm)
        for r in cols:
            m.x[r].set_value(1 if r in chosen else 0)
    res = run_highs(m, time_limit_s=time_limit_s, mip_gap=mip_gap, threads=threads,
                    warm_start=warm is not None, progress=progress, label="cvrp pool")
    chosen_cols = ([r for r in cols if (m.x[r].value or 0) > 0.5]
                   if res.objective is not None else [])
    return res, chosen_cols
