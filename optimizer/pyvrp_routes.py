"""Routes from PyVRP's iterated local search, to seed set-partitioning pools.

PyVRP finds very good routes fast but proves nothing; the route pools it seeds are solved by
HiGHS, which then bounds the plan over that pool. Runs are deterministic (fixed seeds,
iteration limits rather than wall-clock ones where a caller needs the same pool twice) and
each run is capped in seconds, so a pool costs at most `runs x seconds_per_run`.

PyVRP works in integers: distances are scaled to whole numbers (`_integer_scale`), loads
always by 1000 (with loads of a few units, say a stop count against `max_stops`, its load
penalties start so low that short runs end overloaded), and every route it returns is
re-costed by the caller on the original matrix, so scaling never changes a cost the model
sees.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pyvrp import Model
from pyvrp.stop import MaxIterations, MaxRuntime, MultipleCriteria

from optimizer.scenario import Scenario

#: PyVRP's integer range is int64, but its penalties multiply loads and distances: keep
#: scaled values well below that
MAX_SCALED = 10**9
#: per-km costs are whole numbers in PyVRP: cents keep vans' cost ratios
COST_SCALE = 100


@dataclass(frozen=True)
class PyvrpRuns:
    """How hard PyVRP works on one routing problem.

    `seeds`: one run per seed (the pool is the union of their best solutions);
    `seconds_per_run`: wall-clock cap of each run; `iterations_per_run`: iteration cap (the
    deterministic limit: with a generous time cap two solves build the same pool).
    """

    seeds: tuple[int, ...] = (1, 2, 3, 4)
    seconds_per_run: float = 2.0
    iterations_per_run: int = 2_000

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValueError("PyvrpRuns.seeds: at least one seed")
        if self.seconds_per_run <= 0 or self.iterations_per_run <= 0:
            raise ValueError("PyvrpRuns: seconds_per_run and iterations_per_run must be > 0")


@dataclass(frozen=True)
class VanType:
    """A vehicle type as PyVRP sees it: `capacity` per load dimension (compartments, or
    delivery litres and pickup litres), how many, its cost per km, and the longest tour it
    may drive (km; the shift as distance)."""

    capacity: tuple[float, ...]
    count: int
    cost_per_km: float = 1.0
    fixed_cost: float = 0.0
    max_km: float = math.inf


def _integer_scale(values: np.ndarray) -> float:
    """1 when `values` are already whole numbers, else 1000 (metres for km, ml for litres)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0 or np.allclose(finite, np.round(finite), rtol=0.0, atol=1e-6):
        return 1.0
    return 1000.0


def pyvrp_routes(
    dist: np.ndarray,
    delivery: np.ndarray,
    pickup: np.ndarray | None,
    vans: Sequence[VanType],
    runs: PyvrpRuns,
) -> list[list[int]]:
    """Distinct routes of the runs' best solutions (see `pyvrp_solve`)."""
    return pyvrp_solve(dist, delivery, pickup, vans, runs)[0]


def pyvrp_solve(
    dist: np.ndarray,
    delivery: np.ndarray,
    pickup: np.ndarray | None,
    vans: Sequence[VanType],
    runs: PyvrpRuns,
    *,
    required: bool = True,
) -> tuple[list[list[int]], list[list[int]] | None]:
    """Distinct routes (customer numbers 1..n in driving order; node 0 is the depot) of the
    best solution of each run. `delivery`/`pickup` are (n, dims) loads per customer (a 1-d
    array is one dimension). Routes PyVRP leaves infeasible are dropped, so every route
    returned fits its van's capacities (loads are rounded up, capacities down). Also returns
    the cheapest feasible solution's routes (None when no run ended feasible)."""
    n = dist.shape[0] - 1
    if n == 0:
        return [], None
    dl = np.atleast_2d(np.asarray(delivery, dtype=float).T).T.reshape(n, -1)
    pu = np.zeros_like(dl) if pickup is None else np.asarray(pickup, dtype=float).reshape(n, -1)
    dims = dl.shape[1]
    dscale = _integer_scale(dist)
    loads = np.concatenate([dl.ravel(), pu.ravel(), *[np.asarray(v.capacity) for v in vans]])
    lscale = 1000.0  # PyVRP's load penalties start too low for loads of a few units
    while dscale > 1 and float(np.nanmax(np.where(np.isfinite(dist), dist, 0))) * dscale * (
            n + 1) > MAX_SCALED:
        dscale /= 10
    while lscale > 1 and float(loads.max(initial=0)) * lscale * (n + 1) > MAX_SCALED:
        lscale /= 10
    m = Model()
    depot_loc = m.add_location(0, 0)
    m.add_depot(depot_loc)
    locs = [depot_loc]
    for c in range(n):
        loc = m.add_location(0, 0)
        locs.append(loc)
        m.add_client(loc, delivery=[math.ceil(x * lscale - 1e-9) for x in dl[c]],
                     pickup=[math.ceil(x * lscale - 1e-9) for x in pu[c]],
                     required=required, prize=0 if required else 1)
    for v in vans:
        cap = [math.floor(x * lscale + 1e-9) for x in v.capacity][:dims]
        cap += [0] * (dims - len(cap))
        max_km = v.max_km
        m.add_vehicle_type(
            num_available=max(1, v.count), capacity=cap,
            fixed_cost=round(v.fixed_cost * COST_SCALE * dscale),
            unit_distance_cost=max(1, round(v.cost_per_km * COST_SCALE)),
            max_distance=(round(max_km * dscale) if math.isfinite(max_km)
                          else np.iinfo(np.int64).max))
    for i in range(n + 1):
        for j in range(n + 1):
            if i != j:
                d = dist[i, j]
                m.add_edge(locs[i], locs[j], round(d * dscale) if np.isfinite(d) else MAX_SCALED)
    seen: set[tuple[int, ...]] = set()
    out: list[list[int]] = []
    best: list[list[int]] | None = None
    best_cost = math.inf
    for seed in runs.seeds:
        stop = MultipleCriteria([MaxIterations(runs.iterations_per_run),
                                 MaxRuntime(runs.seconds_per_run)])
        res = m.solve(stop, seed=seed, collect_stats=False, display=False)
        if not res.is_feasible():  # penalties still rising: give the same seed longer
            stop = MultipleCriteria([MaxIterations(4 * runs.iterations_per_run),
                                     MaxRuntime(runs.seconds_per_run)])
            res = m.solve(stop, seed=seed, collect_stats=False, display=False)
        if res.is_feasible() and res.cost() < best_cost:
            best_cost = res.cost()
            best = [[a.idx + 1 for a in r if a.is_client()] for r in res.best.routes()]
        for r in res.best.routes():
            if not r.is_feasible():
                continue
            order = [a.idx + 1 for a in r if a.is_client()]
            key = tuple(order)
            if order and key not in seen:
                seen.add(key)
                out.append(order)
    return out, best


#: the joint planner's runs: one seed and an iteration cap, so the same scenario gets the
#: same pool in every worker and pass (a warm start names its tours); the time cap is a
#: safety net only. A county week is 20 hubs x 7 days of these: about 5 s on one core.
JOINT_RUNS = PyvrpRuns(seeds=(1,), seconds_per_run=10.0, iterations_per_run=150)
#: routes already found for the same inputs in this process (hub groups' passes, marginal
#: re-solves): key -> routes
_CACHE: dict[tuple, list[list[int]]] = {}
_CACHE_MAX = 512


def day_loads(s: Scenario, vids: Sequence[str]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each day's litres per village and class, (delivery, pickup), each (len(vids),
    classes): deliveries on their earliest day, farm shipments up in their class's
    compartment, outstanding waste (bulk litres) picked up on day 0 in the first class."""
    pos = {v: k for k, v in enumerate(vids)}
    classes = [c.class_id for c in s.classes]
    col = {c: k for k, c in enumerate(classes)}
    lpp = s.class_by_id()
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def day(d: int) -> tuple[np.ndarray, np.ndarray]:
        if d not in out:
            out[d] = (np.zeros((len(vids), len(classes))), np.zeros((len(vids), len(classes))))
        return out[d]

    for g in s.demand:
        if g.village_id not in pos:
            continue
        down, up = day(g.day)
        if g.direction == "down":
            down[pos[g.village_id], col[g.class_id]] += g.parcels * lpp[
                g.class_id].litres_per_parcel
        else:
            up[pos[g.village_id], col[g.class_id]] += (
                g.volume_litres if g.volume_litres is not None
                else g.parcels * lpp[g.class_id].litres_per_parcel)
    for w in s.outstanding_waste:
        if w.village_id in pos and w.grams > 0:
            day(0)[1][pos[w.village_id], 0] += w.grams / 1000.0 * w.litres_per_kg
    return out


def hub_day_routes(s: Scenario, hub_id: str, vids: Sequence[str], dist: np.ndarray,
                   runs: PyvrpRuns = JOINT_RUNS) -> list[list[int]]:
    """Routes (positions 1..len(vids) into `vids`, node 0 the hub) from one PyVRP run per
    day on that day's loads: the hub's van types as heterogeneous vehicles (compartments
    as load dimensions plus one counting stops against `max_stops`; the shift as the
    distance the van drives in it, capped by `max_route_km`), deliveries and pickups on
    the same tour. Villages with nothing that day are left out of that day's run."""
    loads = day_loads(s, vids)
    classes = [c.class_id for c in s.classes]
    vans = []
    for vt in s.vehicle_types:
        if vt.base != "hub":
            continue
        count = s.hub_vehicle_count(vt, hub_id)
        if count <= 0:
            continue
        shift_km = vt.speed_kmh * vt.shift_minutes / 60.0
        vans.append(VanType(
            capacity=(*(vt.compartments_litres.get(c, 0.0) for c in classes),
                      float(vt.max_stops)),
            count=min(count * vt.max_trips_per_day, len(vids)),
            cost_per_km=vt.cost_per_km_cny, fixed_cost=vt.fixed_cost_cny,
            max_km=min(vt.max_route_km, shift_km)))
    if not vans:
        return []
    key = (hub_id, tuple(vids), dist.tobytes(), tuple(vans), runs, tuple(
        (d, a.tobytes(), b.tobytes()) for d, (a, b) in sorted(loads.items())))
    if key in _CACHE:
        return [list(r) for r in _CACHE[key]]
    # a class no van has a compartment for rides (in passive packaging) in the biggest one
    have = [any(v.capacity[k] > 0 for v in vans) for k in range(len(classes))]
    biggest = max(range(len(classes)), key=lambda k: sum(v.capacity[k] for v in vans))
    seen: set[tuple[int, ...]] = set()
    out: list[list[int]] = []
    for _day, (down, up) in sorted(loads.items()):
        for k in range(len(classes)):
            if not have[k]:
                down[:, biggest] += down[:, k]
                up[:, biggest] += up[:, k]
                down[:, k] = up[:, k] = 0.0
        active = np.nonzero((down.sum(axis=1) > 0) | (up.sum(axis=1) > 0))[0]
        if len(active) == 0:
            continue
        nodes = np.concatenate([[0], active + 1])
        sub = dist[np.ix_(nodes, nodes)]
        stop = np.ones((len(active), 1))
        found = pyvrp_routes(sub, np.hstack([down[active], stop]),
                             np.hstack([up[active], np.zeros((len(active), 1))]), vans, runs)
        for order in found:
            route = [int(nodes[c]) for c in order]
            if tuple(route) not in seen:
                seen.add(tuple(route))
                out.append(route)
    if len(_CACHE) >= _CACHE_MAX:
        _CACHE.clear()
    _CACHE[key] = [list(r) for r in out]
    return out
