"""Candidate trips: road distances, exact shortest tours of small village sets, and
sweep clusters for hubs too large to enumerate.

A candidate trip is a closed tour hub -> villages -> hub. Which vehicle runs it on which day,
and how often, is the model's decision; here we only decide which tours are worth offering.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optimizer.pyvrp_routes import hub_day_routes
from optimizer.scenario import Scenario

EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Route:
    """A closed tour from `hub_id` through `stops` (in driving order) back to the hub."""

    hub_id: str
    stops: tuple[str, ...]
    km: float


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


class DistanceOracle:
    """Road km between named nodes: the explicit matrix when given, else haversine x circuity.

    An explicit matrix may be asymmetric or break the triangle inequality (CVRPLIB E-n13-k4
    does); tours are then optimised on it as given, never "repaired".
    """

    def __init__(self, scenario: Scenario):
        self._coords: dict[str, tuple[float, float]] = {scenario.depot.id: (
            scenario.depot.lat, scenario.depot.lon)}
        for h in scenario.hubs:
            self._coords[h.hub_id] = (h.lat, h.lon)
        for v in scenario.villages:
            self._coords[v.village_id] = (v.lat, v.lon)
        self._circuity = scenario.routing.circuity_factor
        self._matrix = scenario.routing.distance_matrix_km
        self._depot = scenario.depot.id

    def trunk_km(self, hub_id: str) -> float:
        """A trunk leg's km: county depot to the hub and back."""
        return self.km(self._depot, hub_id) + self.km(hub_id, self._depot)

    def km(self, a: str, b: str) -> float:
        if a == b:
            return 0.0
        if self._matrix is not None:
            row = self._matrix.get(a, {})
            if b in row:
                return float(row[b])
            back = self._matrix.get(b, {})
            if a in back:
                return float(back[a])
        (la, lo), (lb, lob) = self._coords[a], self._coords[b]
        return haversine_km(la, lo, lb, lob) * self._circuity

    def matrix(self, nodes: Sequence[str]) -> np.ndarray:
        n = len(nodes)
        out = np.zeros((n, n))
        for i in range(n):
            for j in range(n):
                if i != j:
                    out[i, j] = self.km(nodes[i], nodes[j])
        return out


#: the hard cap of `subset_tours`: its arrays are 2^n long (0.5 GB each at 26 customers);
#: `solve_cvrp` turns to PyVRP route pools below it (`cvrp.ENUM_MAX_CUSTOMERS`)
MAX_ENUM_CUSTOMERS = 26


def subset_tours(
    dist: np.ndarray,
    weights: np.ndarray | None = None,
    capacity: float | None = None,
    max_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exact shortest closed tour (node 0 = depot) for every admissible subset of customers.

    Held-Karp dynamic programme over bit masks, vectorised per subset size and restricted to
    subsets within `capacity` (sum of `weights`) and `max_size`: those sets are closed under
    taking subsets, so every state the recursion needs is itself admissible.
    Returns (masks, costs, last) where bit k of a mask is customer k+1 and `last` is the
    customer before returning to the depot (used to recover the order).
    """
    n = dist.shape[0] - 1
    if n > MAX_ENUM_CUSTOMERS:
        raise ValueError(f"subset enumeration limited to {MAX_ENUM_CUSTOMERS} customers")
    if max_size is None:
        max_size = n
    full = 1 << n
    masks_all = np.arange(full, dtype=np.int64)
    popcount = np.zeros(full, dtype=np.int8)
    for k in range(n):
        popcount += ((masks_all >> k) & 1).astype(np.int8)
    ok = (popcount >= 1) & (popcount <= max_size)
    if weights is not None and capacity is not None:
        load = np.zeros(full, dtype=np.float64)
        for k in range(n):
            load += ((masks_all >> k) & 1) * float(weights[k])
        ok &= load <= capacity + 1e-9
    masks = masks_all[ok]
    sizes = popcount[ok]
    order = np.argsort(sizes, kind="stable")
    masks, sizes = masks[order], sizes[order]
    index = np.full(full, -1, dtype=np.int64)
    index[masks] = np.arange(len(masks))
    del masks_all, popcount, ok
    d = dist.astype(np.float64)
    dp = np.full((len(masks), n), np.inf)
    single = sizes == 1
    for k in range(n):
        rows = index[1 << k]
        if rows >= 0:
            dp[rows, k] = d[0, k + 1]
    _ = single
    bounds = np.searchsorted(sizes, np.arange(1, max_size + 2))
    for size in range(2, max_size + 1):
        lo, hi = bounds[size - 1], bounds[size]
        if lo >= hi:
            continue
        layer = masks[lo:hi]
        for j in range(n):
            has = (layer >> j) & 1
            sel = np.nonzero(has)[0]
            if len(sel) == 0:
                continue
            prev_rows = index[layer[sel] ^ (1 << j)]
            cand = dp[prev_rows] + d[1:, j + 1][None, :]
            dp[lo + sel, j] = cand.min(axis=1)
    closing = dp + d[1:, 0][None, :]
    last = closing.argmin(axis=1)
    costs = closing[np.arange(len(masks)), last]
    return masks, costs, last


def tour_order(dist: np.ndarray, mask: int) -> list[int]:
    """Optimal visiting order (customer numbers 1..n) of one subset, by a small Held-Karp."""
    members = [k + 1 for k in range(dist.shape[0] - 1) if (mask >> k) & 1]
    m = len(members)
    if m == 1:
        return members
    best: dict[tuple[int, int], tuple[float, int]] = {}
    for a in range(m):
        best[(1 << a, a)] = (dist[0, members[a]], -1)
    for sub in range(1, 1 << m):
        for j in range(m):
            if not (sub >> j) & 1 or (sub, j) not in best:
                continue
            cost, _ = best[(sub, j)]
            for k in range(m):
                if (sub >> k) & 1:
                    continue
                key = (sub | (1 << k), k)
                c = cost + dist[members[j], members[k]]
                if key not in best or c < best[key][0] - 1e-12:
                    best[key] = (c, j)
    full = (1 << m) - 1
    end = min(range(m), key=lambda j: best[(full, j)][0] + dist[members[j], 0])
    order, sub, j = [], full, end
    while j != -1:
        order.append(members[j])
        _, prev = best[(sub, j)]
        sub ^= 1 << j
        j = prev
    return order[::-1]


def tour_km(dist: np.ndarray, order: Sequence[int]) -> float:
    path = [0, *order, 0]
    return float(sum(dist[a, b] for a, b in zip(path, path[1:], strict=False)))


def sweep_clusters(
    hub: tuple[float, float], villages: Sequence[tuple[str, float, float]], size: int
) -> list[list[str]]:
    """Split villages into angular sectors around the hub, `size` villages each.

    The classic sweep heuristic (Gillett & Miller 1974): neighbouring angles make compact
    clusters, each small enough for an exact tour.
    """
    ang = sorted(
        villages, key=lambda v: math.atan2(v[1] - hub[0], (v[2] - hub[1]) * math.cos(
            math.radians(hub[0])))
    )
    n = len(ang)
    if n == 0:
        return []
    k = math.ceil(n / size)
    out, start = [], 0
    for c in range(k):
        end = round((c + 1) * n / k)
        out.append([v[0] for v in ang[start:end]])
        start = end
    return out


def candidate_routes(
    scenario: Scenario, active_villages: set[str], max_stops: int
) -> dict[str, list[Route]]:
    """Candidate milk runs per hub.

    Exact mode (a hub with at most `routing.exact_max_villages` active villages): every
    subset of up to `max_stops` villages with its optimal tour, so the MILP chooses among all
    trips. Generated mode: sweep clusters of `routing.cluster_size`, offering each cluster's
    optimal tour, the tours of its two halves and each single village, so a day with little
    demand need not drive the whole cluster; with `routing.pyvrp_pool` (opt-in), also the
    tours of a PyVRP run per day on that day's loads (`optimizer.pyvrp_routes.hub_day_routes`),
    which cross cluster boundaries. Every tour gets its optimal order here, and the model's
    load-along-tour and duration rows apply to each as to any other.
    """
    oracle = DistanceOracle(scenario)
    out: dict[str, list[Route]] = {}
    by_hub: dict[str, list[str]] = {}
    coords = {v.village_id: (v.lat, v.lon) for v in scenario.villages}
    for v in scenario.villages:
        if v.village_id in active_villages:
            by_hub.setdefault(v.hub_id, []).append(v.village_id)
    hubs = {h.hub_id: h for h in scenario.hubs}
    for hub_id, vids in by_hub.items():
        routes: dict[tuple[str, ...], Route] = {}

        def add(group: Sequence[str], hub_id: str = hub_id,
                routes: dict[tuple[str, ...], Route] = routes) -> None:
            nodes = [hub_id, *group]
            dist = oracle.matrix(nodes)
            order = tour_order(dist, (1 << len(group)) - 1)
            stops = tuple(nodes[k] for k in order)
            key = tuple(sorted(stops))
            if key not in routes:
                routes[key] = Route(hub_id, stops, tour_km(dist, order))

        if len(vids) <= scenario.routing.exact_max_villages:
            nodes = [hub_id, *vids]
            dist = oracle.matrix(nodes)
            masks, costs, _ = subset_tours(dist, max_size=min(max_stops, len(vids)))
            for mask, km in zip(masks.tolist(), costs.tolist(), strict=True):
                order = tour_order(dist, mask)
                stops = tuple(nodes[k] for k in order)
                routes[tuple(sorted(stops))] = Route(hub_id, stops, float(km))
        else:
            h = hubs[hub_id]
            size = min(scenario.routing.cluster_size, max_stops)
            clusters = sweep_clusters(
                (h.lat, h.lon), [(v, *coords[v]) for v in vids], size
            )
            for cl in clusters:
                add(cl)
                if len(cl) > 2:
                    add(cl[: len(cl) // 2])
                    add(cl[len(cl) // 2:])
                for vid in cl:
                    add([vid])
            if scenario.routing.pyvrp_pool:
                nodes = [hub_id, *vids]
                dist = oracle.matrix(nodes)
                for order in hub_day_routes(scenario, hub_id, vids, dist):
                    if len(order) <= max_stops:
                        add([nodes[k] for k in order])
        out[hub_id] = sorted(routes.values(), key=lambda r: (len(r.stops), r.stops))
    return out


def active_villages(s: Scenario) -> set[str]:
    """Villages with something to deliver, ship or collect: the only ones routes visit."""
    act = {g.village_id for g in s.demand if g.parcels > 0 or (g.volume_litres or 0) > 0}
    act |= {w.village_id for w in s.outstanding_waste if w.grams > 0}
    return act


def max_stops(s: Scenario) -> int:
    return max(v.max_stops for v in s.vehicle_types if v.base == "hub")


def hub_routes(s: Scenario, hubs: list[str]) -> dict[str, list[Route]]:
    """Candidate trips of `hubs`' milk runs (each hub group's worker derives them itself)."""
    wanted = set(hubs)
    active = {v.village_id for v in s.villages if v.hub_id in wanted} & active_villages(s)
    routes = candidate_routes(s, active, max_stops(s))
    return {h: r for h, r in routes.items() if h in wanted}
