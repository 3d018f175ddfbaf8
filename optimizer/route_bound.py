"""A lower bound over all routes for a CVRP too large to enumerate: column generation on the
set-partitioning LP, priced exactly over q-routes.

A q-route is a walk depot -> customers -> depot whose load (demand counted at every visit)
stays within capacity; it may visit a customer more than once, but never twice in a row
with one stop between (i -> j -> i, "2-cycle elimination"). Every elementary route is a
q-route, so the LP over q-routes is a relaxation of the LP over all routes and its optimum
is a valid lower bound on every plan (Christofides, Mingozzi & Toth 1981). Pricing is a
dynamic programme over (load, last customer) keeping the two best predecessors, so it is
exact and pseudo-polynomial: loads are floored onto at most `MAX_LOAD_STEPS` units, which
only admits more walks and keeps the bound valid.

Rounded capacity cuts x(into S) >= ceil(d(S) / Q), separated greedily from the LP's arc
flows, tighten the master; they hold for every plan and their duals are arc costs in
pricing, so pricing stays exact (on A-n33-k6 they lift the bound from 703 to 732, the
optimum being 742).

Stopped early, the restricted master's value z plus K times the most negative reduced cost
(K the most routes a plan may have) is still a valid bound (the Lagrangian bound), so the
bound holds whatever the time limit.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass

import highspy
import numpy as np

from optimizer.solver import INF, make_highs

MAX_LOAD_STEPS = 2000
COLUMNS_PER_ROUND = 60


@dataclass(frozen=True)
class RouteBound:
    """`bound`: valid lower bound on any plan's cost (None when none was found);
    `pool_lp`: the LP over the starting pool; `converged`: pricing found no negative
    reduced cost (the bound is then the q-route LP optimum)."""

    bound: float | None
    pool_lp: float | None
    converged: bool
    rounds: int
    columns: int
    #: at convergence: the LP value and its duals (customers, fleet, cut sets and theirs),
    #: what `enumerate_within_gap` prices routes with
    lp: float | None = None
    duals: Duals | None = None


@dataclass(frozen=True)
class Duals:
    pi: np.ndarray
    mu: float
    cuts: list[np.ndarray]
    sigma: np.ndarray


def _price(red: np.ndarray, w: np.ndarray, steps: int):
    """Two best reduced-cost walks per (load, last customer), the second with another
    predecessor. `red[i, j]` is the reduced cost of arc i -> j (node 0 the depot, customer
    duals already subtracted at j). Returns value, predecessor and predecessor-slot tables
    of shape (2, steps + 1, n)."""
    n = len(w)
    val = np.full((2, steps + 1, n), np.inf)
    pred = np.full((2, steps + 1, n), -1, dtype=np.int64)
    slot = np.zeros((2, steps + 1, n), dtype=np.int64)
    cust = np.arange(n)
    for q in range(1, steps + 1):
        src = q - w  # the load before visiting k
        ok = src >= 1
        cand = np.full((n, n), np.inf)  # cand[k, j]: reach k at load q from j
        cand_slot = np.zeros((n, n), dtype=np.int64)
        if ok.any():
            ks = cust[ok]
            f1 = val[0, src[ok]]  # (len(ks), n): best into j at the source load
            f2 = val[1, src[ok]]
            p1 = pred[0, src[ok]]
            use2 = p1 == ks[:, None]  # j's best came from k: k -> j -> k is a 2-cycle
            cand[ok] = np.where(use2, f2, f1) + red[1:, 1:].T[ok]
            cand_slot[ok] = use2.astype(np.int64)
            cand[ok, ks] = np.inf  # no k -> k
        first = np.argmin(cand, axis=1)
        v1 = cand[cust, first]
        tmp = cand.copy()
        tmp[cust, first] = np.inf
        second = np.argmin(tmp, axis=1)
        v2 = tmp[cust, second]
        start = w == q
        depot = np.where(start, red[0, 1:], np.inf)
        # the depot start competes for the best two slots as predecessor -1
        b1v, b1p, b1s = v1, first, cand_slot[cust, first]
        b2v, b2p, b2s = v2, second, cand_slot[cust, second]
        better1 = depot < b1v
        better2 = ~better1 & (depot < b2v)
        b2v = np.where(better1, b1v, np.where(better2, depot, b2v))
        b2p = np.where(better1, b1p, np.where(better2, -1, b2p))
        b2s = np.where(better1, b1s, np.where(better2, 0, b2s))
        b1v = np.where(better1, depot, b1v)
        b1p = np.where(better1, -1, b1p)
        b1s = np.where(better1, 0, b1s)
        val[0, q], pred[0, q], slot[0, q] = b1v, b1p, b1s
        val[1, q], pred[1, q], slot[1, q] = b2v, b2p, b2s
    return val, pred, slot


def _walk(pred, slot, w, q: int, k: int) -> list[int]:
    """Customers (0-based) of the walk ending at k with load q, in driving order."""
    out, s = [], 0
    while k >= 0:
        out.append(k)
        j, s2 = int(pred[s, q, k]), int(slot[s, q, k])
        q -= int(w[k])
        k, s = j, s2
    return out[::-1]


def _separate_capacity_cuts(flow: np.ndarray, w: np.ndarray, steps: int,
                           most: int = 20) -> list[tuple[np.ndarray, float]]:
    """Rounded capacity cuts x(into S) >= ceil(d(S) / Q) violated by the arc flows `flow`
    ((n+1) x (n+1), node 0 the depot): greedy growth of S from each customer, adding the
    customer most connected to S, as in the classical separation heuristics."""
    n = len(w)
    x = flow[1:, 1:]
    into = flow.sum(axis=0)[1:]  # all flow into each customer
    y = x + x.T
    found: dict[bytes, tuple[np.ndarray, float]] = {}
    for seed, by_slack in itertools.product(range(n), (False, True)):
        inside = np.zeros(n, dtype=bool)
        inside[seed] = True
        inflow = float(into[seed])
        load = int(w[seed])
        link = y[seed].copy()
        from_in = x[seed].copy()  # flow from S into each customer
        to_in = x[:, seed].copy()  # flow from each customer into S
        for _ in range(n - 1):
            after = inflow + into - to_in - from_in  # inflow of S + j, for every j
            if by_slack:
                need_after = np.ceil((load + w) / steps - 1e-9)
                score = np.where(inside | (link <= 1e-9), np.inf, after - need_after)
                j = int(np.argmin(score))
                if not np.isfinite(score[j]):
                    break
            else:
                link_out = np.where(inside, -1.0, link)
                j = int(np.argmax(link_out))
                if link_out[j] <= 1e-9:
                    break
            inflow = float(after[j])
            inside[j] = True
            load += int(w[j])
            link += y[j]
            from_in += x[j]
            to_in += x[:, j]
            need = math.ceil(load / steps - 1e-9)
            if need - inflow > 1e-3:
                key = inside.tobytes()
                if key not in found:
                    found[key] = (inside.copy(), float(need))
    cuts = sorted(found.values(), key=lambda c: -(c[1] - _inflow(flow, c[0])))
    return cuts[:most]


def _inflow(flow: np.ndarray, inside: np.ndarray) -> float:
    mask = np.concatenate([[False], inside])
    return float(flow[~mask][:, mask].sum())


@dataclass
class _Master:
    """The restricted master LP: customer rows (= 1), the fleet row, capacity-cut rows."""

    h: highspy.Highs
    n: int
    dist: np.ndarray
    fleet: bool
    walks: list[list[int]]
    keys: set[tuple[int, ...]]
    cuts: list[np.ndarray]

    def coefficients(self, walk: list[int]) -> tuple[list[int], list[float]]:
        counts: dict[int, float] = {}
        for c in walk:
            counts[c] = counts.get(c, 0.0) + 1.0
        if self.fleet:
            counts[self.n] = 1.0
        nodes = [-1, *walk]
        base = self.n + (1 if self.fleet else 0)
        for k, inside in enumerate(self.cuts):
            enters = sum(1 for a, b in zip(nodes, nodes[1:], strict=False)
                         if inside[b] and (a < 0 or not inside[a]))
            if enters:
                counts[base + k] = float(enters)
        idx = list(counts)
        return idx, [counts[r] for r in idx]

    def add(self, walk: list[int]) -> bool:
        key = tuple(walk)
        if key in self.keys:
            return False
        self.keys.add(key)
        self.walks.append(walk)
        nodes = [0, *[c + 1 for c in walk], 0]
        cost = float(sum(self.dist[a, b] for a, b in zip(nodes, nodes[1:], strict=False)))
        idx, vals = self.coefficients(walk)
        self.h.addCol(cost, 0.0, INF, len(idx), np.array(idx, dtype=np.int32),
                      np.array(vals, dtype=np.float64))
        return True

    def add_cut(self, inside: np.ndarray, rhs: float) -> None:
        self.cuts.append(inside)
        cols, vals = [], []
        for c, walk in enumerate(self.walks):
            nodes = [-1, *walk]
            enters = sum(1 for a, b in zip(nodes, nodes[1:], strict=False)
                         if inside[b] and (a < 0 or not inside[a]))
            if enters:
                cols.append(c)
                vals.append(float(enters))
        self.h.addRow(rhs, INF, len(cols), np.array(cols, dtype=np.int32),
                      np.array(vals, dtype=np.float64))


def qroute_bound(dist: np.ndarray, demand: np.ndarray, capacity: float, routes: int | None,
                 exact: bool, start: list[list[int]], *, time_limit_s: float,
                 threads: int | None = None, integral_costs: bool = False,
                 cuts: bool = True) -> RouteBound:
    """Lower bound over all routes (see the module doc), with rounded capacity cuts added
    to the master while they are violated (`cuts`): they are valid for every plan, and
    their duals enter pricing as arc costs, so pricing stays exact. `start` are routes
    (customers 1..n) that contain a feasible plan; `routes` the fleet (exactly, with
    `exact`; at most otherwise; None: any number). Costs are `dist`."""
    t0 = time.perf_counter()
    n = len(demand)
    steps = min(MAX_LOAD_STEPS, max(1, math.floor(capacity + 1e-9)))
    unit = capacity / steps
    w = np.floor(demand / unit + 1e-9).astype(np.int64)
    if (w < 1).any() or (w > steps).any():
        return RouteBound(None, None, False, 0, 0)
    h = make_highs(None, None, threads)
    rows = n + (1 if routes is not None else 0)
    lo = np.ones(rows)
    hi = np.ones(rows)
    if routes is not None:
        lo[n] = routes if exact else 0
        hi[n] = routes
    h.addRows(rows, lo, hi, 0, np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int32),
              np.zeros(0))
    master = _Master(h, n, dist, routes is not None, [], set(), [])
    for r in start:
        master.add([c - 1 for c in r])
    most = routes if routes is not None else n
    pool_lp = None
    best = -math.inf
    rounds = 0
    converged = False
    duals: Duals | None = None
    lp: float | None = None
    while time.perf_counter() - t0 < time_limit_s:
        rounds += 1
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return RouteBound(None, None, False, rounds, len(master.walks))
        z = h.getInfo().objective_function_value
        if pool_lp is None:
            pool_lp = z
        sol = h.getSolution()
        row_dual = np.asarray(sol.row_dual)
        pi = row_dual[:n]
        mu = row_dual[n] if routes is not None else 0.0
        sigma = row_dual[rows:]
        red = _reduced_arcs(dist, Duals(pi, float(mu), master.cuts, sigma))
        val, pred, slot = _price(red, w, steps)
        close = val[0] + dist[1:, 0][None, :] - mu  # (steps + 1, n)
        min_rc = float(np.min(close[1:]))
        best = max(best, z + most * min(0.0, min_rc))
        if min_rc > -1e-6:
            best = max(best, z)
            duals = Duals(pi.copy(), float(mu), list(master.cuts), sigma.copy())
            lp = z
            if not cuts:
                converged = True
                break
            flow = np.zeros_like(dist, dtype=float)
            for walk, xv in zip(master.walks, np.asarray(sol.col_value), strict=True):
                if xv > 1e-9:
                    nodes = [0, *[c + 1 for c in walk], 0]
                    for a, b in zip(nodes, nodes[1:], strict=False):
                        flow[a, b] += xv
            new = _separate_capacity_cuts(flow, w, steps)
            if not new:
                converged = True
                break
            for inside, need in new:
                master.add_cut(inside, need)
            continue
        flat = np.argsort(close, axis=None, kind="stable")[: COLUMNS_PER_ROUND * 4]
        added = 0
        for f in flat.tolist():
            q, k = divmod(f, n)
            if close[q, k] > -1e-6 or added >= COLUMNS_PER_ROUND:
                break
            added += master.add(_walk(pred, slot, w, q, k))
        if added == 0:
            break
    if not math.isfinite(best):
        return RouteBound(None, pool_lp, False, rounds, len(master.walks))
    best = max(best, 0.0)  # costs are >= 0: a Lagrangian bound below 0 says nothing more
    if integral_costs:
        best = math.ceil(best - 1e-6)
    if not converged:
        duals = lp = None
    return RouteBound(best, pool_lp, converged, rounds, len(master.walks), lp, duals)



def _reduced_arcs(arc_cost: np.ndarray, duals: Duals) -> np.ndarray:
    """Arc reduced costs: customer duals at the head, cut duals on arcs entering a cut set."""
    red = arc_cost.astype(float).copy()
    red[:, 1:] -= duals.pi[None, :]
    for inside, sg in zip(duals.cuts, duals.sigma, strict=True):
        if sg > 1e-12:
            mask = np.concatenate([[False], inside])
            red[np.ix_(~mask, mask)] -= sg
    return red


def _completion(red: np.ndarray, w: np.ndarray, steps: int, mu: float) -> np.ndarray:
    """B[q, k]: least reduced cost of any walk from customer k back to the depot whose further
    customers weigh at most q (revisits allowed: a relaxation, so a valid bound)."""
    n = len(w)
    out = np.empty((steps + 1, n))
    out[0] = red[1:, 0] - mu
    arcs = red[1:, 1:].copy()
    np.fill_diagonal(arcs, np.inf)
    for q in range(1, steps + 1):
        src = q - w
        ok = src >= 0
        via = np.full(n, np.inf)
        if ok.any():
            via = np.min(arcs[:, ok] + out[src[ok], np.nonzero(ok)[0]][None, :], axis=1)
        out[q] = np.minimum(out[q - 1], via)
    return out


def enumerate_within_gap(arc_cost: np.ndarray, demand: np.ndarray, capacity: float,
                         duals: Duals, gap: float, *, time_limit_s: float,
                         max_labels: int = 2_000_000) -> dict[int, tuple[list[int], float]] | None:
    """Every elementary route whose reduced cost under `duals` is at most `gap`, as customer
    set (bit mask over customers 0..n-1) -> (its cheapest order found, that order's cost);
    None when the time or label limit stops it first.

    Why this proves optimality (Baldacci, Christofides & Mingozzi 2008): with the duals of
    the converged LP of value z, any plan costs z plus its routes' reduced costs (all ≥ 0),
    so a plan costing at most z + `gap` uses only routes within `gap`; and replacing a route
    by the cheapest order of its customers keeps it within `gap` too. Labels are extended
    customer by customer and dropped when even the cheapest way home (`_completion`) leaves
    the gap; of two labels with the same customers and last stop one is dropped only if the
    other is no worse in both reduced cost and cost, so each set's cheapest order
    survives."""
    t0 = time.perf_counter()
    n = len(demand)
    steps = min(MAX_LOAD_STEPS, max(1, math.floor(capacity + 1e-9)))
    unit = capacity / steps
    w = np.floor(demand / unit + 1e-9).astype(np.int64)
    red = _reduced_arcs(arc_cost, duals)
    back = _completion(red, w, steps, duals.mu)
    cost = arc_cost.astype(float)
    tol = gap + 1e-6
    found: dict[int, tuple[list[int], float]] = {}
    # a label: (reduced cost, cost, load, order); kept per (customer set, last customer)
    level: dict[tuple[int, int], list[tuple[float, float, float, tuple[int, ...]]]] = {}
    for j in range(n):
        if demand[j] <= capacity + 1e-9:
            q = math.floor((capacity - demand[j]) / unit + 1e-9)
            if red[0, j + 1] + back[q, j] <= tol:
                level[(1 << j, j)] = [(red[0, j + 1], cost[0, j + 1], float(demand[j]), (j,))]
    labels = len(level)
    while level:
        nxt: dict[tuple[int, int], list[tuple[float, float, float, tuple[int, ...]]]] = {}
        for (mask, last), group in level.items():
            for rc, c, load, order in group:
                home_rc = rc + red[last + 1, 0] - duals.mu
                if home_rc <= tol:
                    total = c + cost[last + 1, 0]
                    if mask not in found or total < found[mask][1] - 1e-9:
                        found[mask] = (list(order), total)
                room = capacity - load - demand
                q = np.floor(np.maximum(room, 0.0) / unit + 1e-9).astype(np.int64)
                ext = rc + red[last + 1, 1:] + back[q, np.arange(n)]
                ok = (room >= -1e-9) & (ext <= tol)
                for j in np.nonzero(ok)[0].tolist():
                    if mask >> j & 1:
                        continue
                    key = (mask | 1 << j, j)
                    lab = (rc + red[last + 1, j + 1], c + cost[last + 1, j + 1],
                           load + float(demand[j]), (*order, j))
                    kept = nxt.setdefault(key, [])
                    if any(o[0] <= lab[0] + 1e-12 and o[1] <= lab[1] + 1e-12 for o in kept):
                        continue
                    kept[:] = [o for o in kept if not (lab[0] <= o[0] and lab[1] <= o[1])]
                    kept.append(lab)
                    labels += 1
            if labels > max_labels or time.perf_counter() - t0 > time_limit_s:
                return None
        level = nxt
    return found
