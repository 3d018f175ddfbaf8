"""Routes from PyVRP (hybrid genetic search) where enumerating every route cannot finish.

Above the enumeration limit (`optimizer.routes.MAX_ENUM_CUSTOMERS`) a single-visit instance
gets its candidate routes from several PyVRP runs with different seeds; the set-partitioning
MILP then picks the best combination of them (a combination of routes from different runs
can beat every run's own solution). What that MILP proves covers only the routes in the pool,
so it is reported as the pool's bound, never as a bound on the instance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: PyVRP takes integer distances and loads; non-integral data is scaled by this first
SCALE = 1000


@dataclass(frozen=True)
class PoolRoute:
    """A route as PyVRP visits it: customer indices (1..n of the distance matrix)."""

    visits: tuple[int, ...]
    km: float


def _integral(a: np.ndarray) -> np.ndarray:
    """`a` as PyVRP's integers: unchanged if already whole, else scaled by `SCALE`."""
    if np.allclose(a, np.rint(a)):
        return np.rint(a).astype(np.int64)
    return np.rint(a * SCALE).astype(np.int64)


def pyvrp_pool(dist: np.ndarray, demand: np.ndarray, capacity: float, vehicles: int,
               time_limit_s: float, seeds: int = 4) -> list[PoolRoute]:
    """Routes of the best solution of `seeds` PyVRP runs sharing `time_limit_s` (node 0 is
    the depot, `demand[j]` the load of customer j + 1, at most `vehicles` routes), deduplicated
    by their customer set; `km` is recomputed on `dist` in the visiting order."""
    from pyvrp import Model
    from pyvrp.stop import MaxRuntime

    n = dist.shape[0] - 1
    d = _integral(dist)
    both = _integral(np.append(demand, capacity))
    loads, cap = both[:-1], int(both[-1])
    pool: dict[frozenset[int], PoolRoute] = {}
    per_run = max(0.2, time_limit_s / max(1, seeds))
    for seed in range(seeds):
        m = Model()
        m.add_vehicle_type(num_available=max(1, vehicles), capacity=cap)
        locs = [m.add_location(0.0, 0.0) for _ in range(n + 1)]
        m.add_depot(locs[0])
        for j in range(n):
            m.add_client(locs[j + 1], delivery=int(loads[j]))
        for a in range(n + 1):
            for b in range(n + 1):
                if a != b:
                    m.add_edge(locs[a], locs[b], distance=int(d[a, b]))
        res = m.solve(stop=MaxRuntime(per_run), seed=seed, display=False, collect_stats=False)
        if not res.is_feasible():
            continue
        for route in res.best.routes():
            # client activities count clients from 0; node j + 1 of `dist` is client j
            visits = tuple(int(a.idx) + 1 for a in route if a.is_client())
            if not visits:
                continue
            path = [0, *visits, 0]
            km = float(sum(dist[a, b] for a, b in zip(path, path[1:], strict=False)))
            key = frozenset(visits)
            if key not in pool or km < pool[key].km:
                pool[key] = PoolRoute(visits, km)
    return list(pool.values())
