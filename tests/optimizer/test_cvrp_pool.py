"""`plan solve --vrplib` above the enumeration limit: PyVRP routes seeding a partitioning pool.

Optima here come from this file's own brute force (every route by permutations, every
partition by a subset DP) or from routes recomputed from the written instance file.
"""

from __future__ import annotations

import itertools
import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest

import optimizer
from optimizer import cvrp
from optimizer.vrplib import parse_vrp, scenario_from_vrp
from tests.optimizer.helpers import ROOT


def _write_instance(path: Path, name: str, customers: int, capacity: int, seed: int) -> None:
    """A random EUC_2D CVRP instance in TSPLIB format."""
    rnd = random.Random(seed)
    pts = [(50, 50)] + [(rnd.randint(0, 100), rnd.randint(0, 100)) for _ in range(customers)]
    dem = [0] + [rnd.randint(1, 30) for _ in range(customers)]
    lines = [f"NAME : {name}", "TYPE : CVRP", f"DIMENSION : {customers + 1}",
             "EDGE_WEIGHT_TYPE : EUC_2D", f"CAPACITY : {capacity}", "NODE_COORD_SECTION"]
    lines += [f"{k + 1} {x} {y}" for k, (x, y) in enumerate(pts)]
    lines += ["DEMAND_SECTION"] + [f"{k + 1} {d}" for k, d in enumerate(dem)]
    lines += ["DEPOT_SECTION", "1", "-1", "EOF"]
    path.write_text("\n".join(lines) + "\n")


def _own_instance(path: Path) -> tuple[list[list[float]], list[int], int]:
    """Distances (TSPLIB nint), demands and capacity, read without optimizer code."""
    lines = path.read_text().splitlines()
    cap = int(next(ln for ln in lines if ln.startswith("CAPACITY")).split(":")[1])
    a = lines.index("NODE_COORD_SECTION")
    b = lines.index("DEMAND_SECTION")
    c = lines.index("DEPOT_SECTION")
    xy = [tuple(map(float, ln.split()[1:])) for ln in lines[a + 1:b]]
    dem = [int(ln.split()[1]) for ln in lines[b + 1:c]]
    d = [[math.floor(math.dist(p, q) + 0.5) for q in xy] for p in xy]
    return d, dem, cap


def _brute_force(d, dem, cap, k: int | None) -> float:
    """Optimal CVRP cost: every feasible customer set's best tour by permutations, then the
    cheapest partition into exactly k sets (any number when k is None) by a subset DP."""
    n = len(dem) - 1
    best_tour: dict[int, float] = {}
    for mask in range(1, 1 << n):
        cs = [c + 1 for c in range(n) if mask >> c & 1]
        if sum(dem[c] for c in cs) > cap:
            continue
        best_tour[mask] = min(
            sum(d[a][b] for a, b in itertools.pairwise([0, *p, 0]))
            for p in itertools.permutations(cs))
    full = (1 << n) - 1
    layers = [{0: 0.0}]
    for _ in range(k if k is not None else n):
        nxt: dict[int, float] = {}
        for done, cost in layers[-1].items():
            low = (~done) & -(~done)  # the lowest uncovered customer goes in the next route
            for mask, t in best_tour.items():
                if mask & low and not mask & done:
                    key = done | mask
                    if cost + t < nxt.get(key, math.inf):
                        nxt[key] = cost + t
        layers.append(nxt)
    if k is not None:
        return layers[k].get(full, math.inf)
    return min(layer.get(full, math.inf) for layer in layers)


def _route_cost(d, routes) -> float:
    return sum(d[a][b] for r in routes for a, b in itertools.pairwise([0, *r, 0]))


@pytest.mark.parametrize("seed", [3, 8])
def test_pool_path_reaches_the_brute_force_optimum(tmp_path, monkeypatch, seed):
    """With enumeration switched off, the PyVRP pool finds the brute-force optimum of an
    8-customer instance with exactly 3 routes, and the routes recomputed from the file cost
    the objective. "optimal" only when the bound covers all routes (and then it is at most
    the optimum); a bound over the pool alone says so."""
    path = tmp_path / "R-n9-k3.vrp"
    _write_instance(path, "R-n9-k3", 8, 50, seed)
    d, dem, cap = _own_instance(path)
    optimum = _brute_force(d, dem, cap, 3)
    monkeypatch.setattr(cvrp, "ENUM_MAX_CUSTOMERS", 0)
    res = optimizer.solve_cvrp(scenario_from_vrp(parse_vrp(path)), time_limit_s=5, threads=1)
    assert res.routes is not None and len(res.routes) == 3
    assert _route_cost(d, res.routes) == pytest.approx(res.objective)
    assert res.objective == pytest.approx(optimum)
    if res.status == "optimal":
        assert res.stats["bound_covers"] in (cvrp.QROUTE_BOUND, cvrp.ENUMERATED_WITHIN_GAP)
        assert res.bound <= optimum + 1e-6
    else:
        assert res.stats["bound_covers"] == cvrp.POOL_ROUTES


def test_enumeration_within_the_gap_finds_every_route_within_it(tmp_path):
    """`enumerate_within_gap` against brute force on 7 customers: with the converged LP's
    duals, the customer sets found are exactly those with some order whose reduced cost
    (by permutations) is within the gap, each at no more than its cheapest such order."""
    import numpy as np

    from optimizer.route_bound import _reduced_arcs, enumerate_within_gap, qroute_bound
    path = tmp_path / "R-n8-k3.vrp"
    _write_instance(path, "R-n8-k3", 7, 45, 4)
    d, dem, cap = _own_instance(path)
    dist = np.array(d, dtype=float)
    demand = np.array(dem[1:], dtype=float)
    singles = [[c] for c in range(1, 8)]
    rb = qroute_bound(dist, demand, cap, None, False, singles, time_limit_s=30)
    assert rb.converged and rb.duals is not None and rb.lp is not None
    red = _reduced_arcs(dist, rb.duals)
    for gap in (0.0, 0.05 * rb.lp, 0.3 * rb.lp):
        found = enumerate_within_gap(dist, demand, cap, rb.duals, gap, time_limit_s=30)
        assert found is not None
        expected: dict[int, float] = {}
        for mask in range(1, 1 << 7):
            cs = [c + 1 for c in range(7) if mask >> c & 1]
            if sum(dem[c] for c in cs) > cap:
                continue
            within = [sum(dist[a, b] for a, b in itertools.pairwise([0, *p, 0]))
                      for p in itertools.permutations(cs)
                      if sum(red[a, b] for a, b in itertools.pairwise([0, *p, 0]))
                      - rb.duals.mu <= gap + 1e-6]
            if within:
                expected[mask] = min(within)
        assert set(found) == set(expected)
        for mask, (order, cost) in found.items():
            assert sorted(order) == [c for c in range(7) if mask >> c & 1]
            assert cost == pytest.approx(_route_cost(d, [[c + 1 for c in order]]))
            assert cost <= expected[mask] + 1e-9


def test_pool_path_proves_the_optimum_from_a_poor_pool(tmp_path, monkeypatch):
    """Enumeration off and PyVRP replaced by a poor pool (customers in index order, one van
    filled after another): the plan is still the brute-force optimum, proven by the routes
    within the gap of the all-routes LP (not by the pool, which does not hold it)."""
    path = tmp_path / "R-n10-k3.vrp"
    _write_instance(path, "R-n10-k3", 9, 70, 6)
    d, dem, cap = _own_instance(path)
    optimum = _brute_force(d, dem, cap, None)

    def poor_pool(dist, demand, cap_, k, runs):
        routes, load = [[]], 0.0
        for c in range(1, len(demand) + 1):
            if load + demand[c - 1] > cap_:
                routes.append([])
                load = 0.0
            routes[-1].append(c)
            load += demand[c - 1]
        return routes + [[c] for c in range(1, len(demand) + 1)], routes

    monkeypatch.setattr(cvrp, "ENUM_MAX_CUSTOMERS", 0)
    monkeypatch.setattr(cvrp, "_pool", poor_pool)
    poor = _route_cost(d, poor_pool(None, dem[1:], cap, None, None)[1])
    assert poor > optimum + 1  # the pool's own best is not the optimum
    res = optimizer.solve_cvrp(scenario_from_vrp(parse_vrp(path), "free"), time_limit_s=20,
                               threads=1)
    assert res.status == "optimal"
    assert res.stats["bound_covers"] == cvrp.ENUMERATED_WITHIN_GAP
    assert res.objective == pytest.approx(optimum)
    assert res.bound == pytest.approx(optimum)
    assert res.routes is not None and _route_cost(d, res.routes) == pytest.approx(optimum)


def test_exact_fleet_too_small_for_the_demand_is_infeasible_and_says_why(tmp_path, monkeypatch):
    """Pool path, 4 customers of 6 in an instance named -k2 with capacity 10: 24 > 2 × 10, so
    no plan with exactly 2 routes exists, and the diagnosis gives the arithmetic; with
    --fleet free each customer rides alone (two would be 12 > 10): 4 routes."""
    path = tmp_path / "tight-n5-k2.vrp"
    path.write_text("NAME : tight-n5-k2\nTYPE : CVRP\nDIMENSION : 5\nEDGE_WEIGHT_TYPE : EUC_2D\n"
                    "CAPACITY : 10\nNODE_COORD_SECTION\n1 0 0\n2 3 4\n3 6 8\n4 0 5\n5 5 0\n"
                    "DEMAND_SECTION\n1 0\n2 6\n3 6\n4 6\n5 6\nDEPOT_SECTION\n1\n-1\nEOF\n")
    monkeypatch.setattr(cvrp, "ENUM_MAX_CUSTOMERS", 0)
    res = optimizer.solve_cvrp(scenario_from_vrp(parse_vrp(path)), time_limit_s=5, threads=1)
    assert res.status == "infeasible" and res.plan is None
    assert "exceeds 2 routes × capacity 10 = 20" in res.diagnosis[0]["why"]
    free = optimizer.solve_cvrp(scenario_from_vrp(parse_vrp(path), "free"), time_limit_s=5,
                                threads=1)
    assert free.routes is not None and len(free.routes) == 4


def test_enumeration_proves_the_brute_force_optimum_in_both_fleets(tmp_path):
    """Below the limit every route is enumerated: exact fleet and free fleet each reach
    their brute-force optimum, proven, with the bound covering all routes."""
    path = tmp_path / "R-n9-k4.vrp"
    _write_instance(path, "R-n9-k4", 8, 60, 5)
    d, dem, cap = _own_instance(path)
    for fleet, k in (("exact", 4), ("free", None)):
        res = optimizer.solve_cvrp(scenario_from_vrp(parse_vrp(path), fleet), threads=1)
        assert res.status == "optimal"
        assert res.objective == pytest.approx(_brute_force(d, dem, cap, k))
        assert res.bound is not None and res.bound <= res.objective + 1e-6
        assert res.stats["bound_covers"] == cvrp.ALL_ROUTES
        if k is not None:
            assert res.routes is not None and len(res.routes) == k


def _cli(path: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", "plan", "solve", "--vrplib", str(path), "--json",
         "--threads", "1", *extra],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_thirty_customers_run_without_traceback_and_fleet_exact_gives_n_routes(tmp_path):
    """A 30-customer instance (above the old 26-customer limit) solves through the CLI:
    --fleet exact gives exactly the -k5 routes, --fleet free floats (never costlier), every
    customer once within capacity, objective = the routes' cost from the file."""
    path = tmp_path / "R-n31-k5.vrp"
    _write_instance(path, "R-n31-k5", 30, 150, 11)
    d, dem, cap = _own_instance(path)
    results = {}
    for fleet in ("exact", "free"):
        out = _cli(path, "--time-limit", "8", "--fleet", fleet)
        assert out.returncode == 0, out.stderr
        assert "Traceback" not in out.stderr
        data = json.loads(out.stdout)
        routes = data["routes"]
        assert sorted(c for r in routes for c in r) == list(range(1, 31))
        assert all(sum(dem[c] for c in r) <= cap for r in routes)
        assert _route_cost(d, routes) == pytest.approx(data["objective"])
        assert data["bound"] <= data["objective"] + 1e-6
        # the best PyVRP plan warm-starts the pool MILP, which can only improve on it
        assert data["stats"]["pyvrp_best"] is not None
        assert data["objective"] <= data["stats"]["pyvrp_best"] + 1e-6
        results[fleet] = data
    assert len(results["exact"]["routes"]) == 5
    assert results["free"]["objective"] <= results["exact"]["objective"] + 1e-6


def _partition_lp(d, dem, cap) -> float:
    """The set-partitioning LP over every feasible route (each with its best tour by
    permutations), any number of routes, solved by scipy's linprog."""
    import numpy as np
    from scipy.optimize import linprog

    n = len(dem) - 1
    cols, costs = [], []
    for size in range(1, n + 1):
        for cs in itertools.combinations(range(1, n + 1), size):
            if sum(dem[c] for c in cs) > cap:
                continue
            costs.append(min(sum(d[a][b] for a, b in itertools.pairwise([0, *p, 0]))
                             for p in itertools.permutations(cs)))
            cols.append([1.0 if c in cs else 0.0 for c in range(1, n + 1)])
    a_eq = np.array(cols).T
    b_eq = np.ones(n)
    res = linprog(costs, A_eq=a_eq, b_eq=b_eq, bounds=(0, None), method="highs")
    assert res.status == 0
    return float(res.fun)


@pytest.mark.parametrize("seed", [2, 6, 13])
def test_all_routes_bound_never_exceeds_the_brute_force_optimum(tmp_path, seed):
    """The q-route bound (exact pricing over a relaxation of all routes) lies at or below
    the set-partitioning LP over every enumerated route, which lies at or below the
    brute-force optimum (free fleet); run from a pool holding only single-customer routes,
    so column generation, not the start, has to get it there."""
    import numpy as np

    from optimizer.route_bound import qroute_bound

    path = tmp_path / "R-n9-k3.vrp"
    _write_instance(path, "R-n9-k3", 8, 50, seed)
    d, dem, cap = _own_instance(path)
    optimum = _brute_force(d, dem, cap, None)
    lp = _partition_lp(d, dem, cap)
    dist = np.array(d, dtype=float)
    singles = [[c] for c in range(1, 9)]
    rb = qroute_bound(dist, np.array(dem[1:], dtype=float), cap, None, False, singles,
                      time_limit_s=30)
    assert rb.converged and rb.bound is not None
    assert rb.bound <= lp + 1e-6 <= optimum + 2e-6
    # far above the trivial bound: the starting LP over singletons is far worse than lp
    assert rb.pool_lp is not None and rb.pool_lp > lp
    assert rb.bound >= 0.8 * lp


def test_pool_path_reports_route_gap_and_a_bound_over_all_routes(tmp_path, monkeypatch):
    """On the pool path the JSON's route_gap is (pool LP - all-routes bound) / pool LP and
    the all-routes bound stays below the brute-force optimum."""
    path = tmp_path / "R-n10-k3.vrp"
    _write_instance(path, "R-n10-k3", 9, 60, 21)
    d, dem, cap = _own_instance(path)
    optimum = _brute_force(d, dem, cap, 3)
    monkeypatch.setattr(cvrp, "ENUM_MAX_CUSTOMERS", 0)
    res = optimizer.solve_cvrp(scenario_from_vrp(parse_vrp(path)), time_limit_s=5, threads=1)
    lb, pool_lp = res.stats["all_routes_bound"], res.stats["pool_lp"]
    assert lb <= optimum + 1e-6
    assert res.route_gap == pytest.approx((pool_lp - lb) / pool_lp)
    assert res.to_json_dict()["route_gap"] == res.route_gap


@pytest.mark.slow
def test_capacity_cuts_close_the_bound_on_e_n22_k4():
    """Over all routes, the q-route LP of E-n22-k4 stays below the published optimum (375,
    tests/data/cvrplib/optima.csv); with rounded capacity cuts the bound reaches it (a valid
    bound can go no higher)."""
    import csv

    import numpy as np

    from optimizer.route_bound import qroute_bound

    root = ROOT / "tests" / "data" / "cvrplib"
    with (root / "optima.csv").open() as f:
        optimum = next(float(r["optimal"]) for r in csv.DictReader(f) if r["name"] == "E-n22-k4")
    inst = parse_vrp(root / "E-n22-k4.vrp")
    routes, _ = optimizer.read_sol(root / "E-n22-k4.sol")
    demand = np.array(inst.demand[1:])
    plain = qroute_bound(inst.dist, demand, inst.capacity, 4, True, routes, time_limit_s=30,
                         integral_costs=True, cuts=False)
    cut = qroute_bound(inst.dist, demand, inst.capacity, 4, True, routes, time_limit_s=30,
                       integral_costs=True, cuts=True)
    assert plain.bound is not None and cut.bound is not None
    assert plain.bound < optimum
    assert cut.bound == optimum


def test_a_plan_with_too_few_routes_is_split_into_the_exact_fleet():
    """The warm start for an exact fleet: a 2-route plan becomes 4 routes covering the same
    customers once each, by splitting the longest routes; more routes than k cannot be."""
    split = cvrp._split_to([[1, 2, 3], [4, 5], [6]], 5)
    assert split is not None and len(split) == 5
    assert sorted(c for r in split for c in r) == [1, 2, 3, 4, 5, 6]
    assert cvrp._split_to([[1], [2], [3]], 2) is None
    assert cvrp._split_to([[1], [2]], 3) is None
