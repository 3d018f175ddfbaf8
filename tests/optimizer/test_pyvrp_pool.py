"""PyVRP tours in the joint planner's trip pool (hubs above `routing.exact_max_villages`).

The reference is this file's own brute force: every village set of up to `max_stops` with
its best tour by permutations, then the cheapest partition of the day's villages into such
tours (fixed cost per trip plus cost per km) by a subset DP.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest

from optimizer import candidate_routes, load_scenario
from optimizer.pyvrp_routes import hub_day_routes
from optimizer.routes import DistanceOracle, active_villages, hub_routes
from tests.optimizer.helpers import tiny_raw

VILLAGES = 12
MAX_STOPS = 4
FIXED, PER_KM = 60.0, 1.2


def _raw(seed: int, pyvrp_pool: bool) -> tuple[dict, list[list[float]]]:
    """One hub, 12 villages on a ring-ish cloud, one day, one class; an explicit km matrix."""
    rnd = random.Random(seed)
    raw = tiny_raw()
    hub = raw["hubs"][0]
    pts = [(0.0, 0.0)] + [(rnd.uniform(-10, 10), rnd.uniform(-10, 10)) for _ in range(VILLAGES)]
    ids = [hub["hub_id"]] + [f"H01-V{k:03d}" for k in range(1, VILLAGES + 1)]
    raw["villages"] = [{"village_id": ids[k], "hub_id": hub["hub_id"],
                        "lat": hub["lat"] + pts[k][1] / 111.0,
                        "lon": hub["lon"] + pts[k][0] / 97.0} for k in range(1, VILLAGES + 1)]
    km = [[round(math.dist(p, q), 3) for q in pts] for p in pts]
    raw["routing"] = {"exact_max_villages": 10, "pyvrp_pool": pyvrp_pool,
                      "distance_matrix_km": {ids[i]: {ids[j]: km[i][j] for j in range(
                          len(ids)) if j != i} for i in range(len(ids))}}
    raw["horizon_days"] = 1
    raw["classes"] = [raw["classes"][0]]
    raw["demand"] = [{"village_id": v, "day": 0, "class_id": "ambient", "direction": "down",
                      "parcels": 5} for v in ids[1:]]
    raw["outstanding_waste"] = []
    raw["container_pools"] = []
    raw["packaging"] = {"single_use": [raw["packaging"]["single_use"][0]]}
    van = raw["vehicle_types"][0]
    van.update({"max_stops": MAX_STOPS, "count": 6, "fixed_cost_cny": FIXED,
                "cost_per_km_cny": PER_KM, "max_route_km": 1000})
    trunk = raw["vehicle_types"][2]
    trunk["compartments_litres"] = {"ambient": 8000}
    raw["vehicle_types"] = [van, trunk]
    return raw, km


def _optimal_tours(km: list[list[float]]) -> list[frozenset[int]]:
    """The brute-force optimum's village sets (node numbers 1..12)."""
    n = len(km) - 1
    tour: dict[int, float] = {}
    for size in range(1, MAX_STOPS + 1):
        for cs in itertools.combinations(range(1, n + 1), size):
            best = min(sum(km[a][b] for a, b in itertools.pairwise([0, *p, 0]))
                       for p in itertools.permutations(cs))
            tour[sum(1 << (c - 1) for c in cs)] = FIXED + PER_KM * best
    full = (1 << n) - 1
    cost = {0: 0.0}
    pick: dict[int, int] = {}
    for done in range(full + 1):
        if done not in cost:
            continue
        low = (~done) & -(~done)
        for mask, t in tour.items():
            if mask & low and not mask & done and cost[done] + t < cost.get(
                    done | mask, math.inf) - 1e-9:
                cost[done | mask] = cost[done] + t
                pick[done | mask] = mask
    out, done = [], full
    while done:
        mask = pick[done]
        out.append(frozenset(c + 1 for c in range(n) if mask >> c & 1))
        done ^= mask
    return out


def _pooled_sets(raw: dict) -> set[frozenset[int]]:
    s = load_scenario(raw)
    routes = candidate_routes(s, active_villages(s), MAX_STOPS)["H01"]
    return {frozenset(int(v.split("V")[1]) for v in r.stops) for r in routes}


@pytest.mark.parametrize("seed", [4, 9])
def test_the_pool_holds_the_brute_force_optimal_tours(seed):
    """With PyVRP in the pool, every tour of the day's brute-force optimal plan is a
    candidate trip; the sweep clusters alone (pyvrp_pool off) miss at least one of them
    on these instances, so this test fails without the PyVRP routes."""
    raw, km = _raw(seed, pyvrp_pool=True)
    optimal = _optimal_tours(km)
    assert not set(optimal) <= _pooled_sets(_raw(seed, pyvrp_pool=False)[0])
    assert set(optimal) <= _pooled_sets(raw)


def test_the_pool_is_deterministic_and_each_tour_fits_the_van():
    """Two builds give the same tours (fixed seed, iteration cap); no tour has more stops
    than the van allows."""
    raw, _ = _raw(4, pyvrp_pool=True)
    s = load_scenario(raw)
    vids = sorted(active_villages(s))
    dist = DistanceOracle(s).matrix(["H01", *vids])
    first = hub_day_routes(s, "H01", vids, dist)
    from optimizer import pyvrp_routes

    pyvrp_routes._CACHE.clear()
    again = hub_day_routes(s, "H01", vids, dist)
    assert first == again and first
    assert all(len(r) <= MAX_STOPS for r in first)
    assert hub_routes(s, ["H01"])["H01"] == candidate_routes(s, active_villages(s), MAX_STOPS)[
        "H01"]
