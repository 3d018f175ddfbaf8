"""Trip-cost floors: the least the milk runs of one unit and day can cost, as valid rows.

The capacity covers (`optimizer.cuts`) count litres per kind of load over a whole cluster, so
the relaxation may still carry a cluster's overflow on half an extra van: the multi-
temperature van runs once, full, and 0.5 of an ambient van takes the rest. No plan does
that; the cheapest plan runs the second van whole. On the county week's hub H13 that half
van, on every cluster and day, was most of the root gap (LP 16,902 CNY against an optimum
near 17,880).

A floor is found by solving, for each unit u (villages linked by common candidate routes, as
for the covers) and day d, a small MILP that keeps only what the main model must do there
anyway: the demand fixed to that day, each delivered parcel in its least bulky packaging,
farm shipments in their compartments, passive packaging only where an option has it, and the
loads along each tour; no empties, recyclables, fleet limits or packaging costs. Every plan
restricted to (u, d) is a solution of it, so its optimum — HiGHS's dual bound, valid even if
it stops early — bounds from below what the plan's trips there cost:

    Σ_{t ∈ T(u, d)} c_t y_t ≥ F_ud.

Demand that may move between days (a presale window) is left out, which only lowers F.
Sub-problems that are the same up to naming (a cluster whose days look alike) are solved
once per call. The maths is in docs/optimizer.md, "Trip-cost floors"."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import highspy
import numpy as np

from optimizer.cuts import components
from optimizer.model.sets import ModelSets
from optimizer.solver import make_highs
from optimizer.trips import TripType

INF = highspy.kHighsInf
#: a sub-problem's HiGHS time limit: its dual bound is valid at any stop
SUB_TIME_LIMIT_S = 2.0
FloorKey = tuple[str, int]  # (unit's representative village, day)


@dataclass(frozen=True)
class _SubProblem:
    """One unit-day, in local indices, hashable so that identical ones are solved once.

    trips: (cost, compartments' litres, stop indices) per trip; down: (trip, stop, class,
    compartment, own compartment) per load column; up: (trip, stop, class) per column;
    need_down: (stop, class, litres, most litres, passive allowed); need_up: (stop, class,
    litres)."""

    trips: tuple[tuple[float, tuple[tuple[str, float], ...], tuple[int, ...]], ...]
    down: tuple[tuple[int, int, str, str, bool], ...]
    up: tuple[tuple[int, int, str], ...]
    need_down: tuple[tuple[int, str, float, float, bool], ...]
    need_up: tuple[tuple[int, str, float], ...]


@dataclass(frozen=True)
class Floors:
    """F_ud by unit-day with the trip types it covers, and what computing them took;
    `bound` a lower bound on the whole cost of every plan (`model.covers.cost_floor`; 0
    where not computed)."""

    rows: dict[FloorKey, tuple[frozenset[TripType], float]]
    seconds: float
    bound: float = 0.0

    def rows_for(self, x: ModelSets) -> dict[FloorKey, tuple[list[int], float]]:
        """The floors as rows over the trip types of `x` (indices into `x.trips`).

        Floors computed on the joint model hold in the single-use and sequential models
        too, whose demand on a day, litres per parcel and passive options are no easier; a
        floor is kept only where every trip type of `x` that reaches its villages that day
        is one it was computed over (a cheaper trip outside would void it)."""
        by_village_day: dict[tuple[str, int], set[int]] = defaultdict(set)
        for t, tt in enumerate(x.trips):
            if tt.route is not None:
                for i in tt.route.stops:
                    by_village_day[(i, tt.day)].add(t)
        out: dict[FloorKey, tuple[list[int], float]] = {}
        for (u, d), (covered, floor) in self.rows.items():
            villages = {i for tt in covered if tt.route is not None for i in tt.route.stops}
            reach: set[int] = set()
            for i in villages:
                reach |= by_village_day.get((i, d), set())
            if reach and all(x.trips[t] in covered for t in reach):
                out[(u, d)] = (sorted(reach), floor)
        return out


def trip_cost_floors(x: ModelSets, trip_cost: Sequence[float],
                     budget_s: float | None = None) -> Floors:
    """F_ud for every unit-day with demand fixed to it, over the milk-run trip types of `x`
    with their objective coefficients `trip_cost`, until `budget_s` is spent.

    Any subset of the floors is valid, so the budget only weakens them. It matters where
    candidate tours cross cluster boundaries (`routing.pyvrp_pool`): a unit is then a whole
    hub, each unit-day a hub-day routing problem that runs to its time limit, and the county
    week's H17 spent 14 s of a 0.9 s budget on its floors (0.4 s with the sweep pool)."""
    t0 = time.perf_counter()
    comp = components(x.trips)
    by_ud: dict[FloorKey, list[int]] = defaultdict(list)
    for t, tt in enumerate(x.trips):
        if tt.route is not None:
            by_ud[(comp[tt.route.stops[0]], tt.day)].append(t)
    down_by_t: dict[int, list[tuple[int, str, str, str]]] = defaultdict(list)
    for dkey in x.loads.down_keys:
        down_by_t[dkey[0]].append(dkey)
    up_by_t: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for ukey in x.loads.up_keys:
        up_by_t[ukey[0]].append(ukey)
    solved: dict[_SubProblem, float | None] = {}
    h = make_highs(SUB_TIME_LIMIT_S, 1e-6, None)
    rows: dict[FloorKey, tuple[frozenset[TripType], float]] = {}
    for (u, d), ts in sorted(by_ud.items()):
        left = None if budget_s is None else budget_s - (time.perf_counter() - t0)
        if left is not None and left <= 0:
            break
        sub = _sub_problem(x, ts, d, trip_cost, down_by_t, up_by_t)
        if sub is None:
            continue
        if sub not in solved:
            h.setOptionValue("time_limit", SUB_TIME_LIMIT_S if left is None
                             else max(0.01, min(SUB_TIME_LIMIT_S, left)))
            solved[sub] = _solve(h, sub)
        floor = solved[sub]
        if floor is not None and floor > 1e-6:
            rows[(u, d)] = (frozenset(x.trips[t] for t in ts), floor * (1 - 1e-9) - 1e-6)
    return Floors(rows, time.perf_counter() - t0)


def _sub_problem(x: ModelSets, ts: list[int], d: int, trip_cost: Sequence[float],
                 down_by_t: dict[int, list[tuple[int, str, str, str]]],
                 up_by_t: dict[int, list[tuple[int, str, str]]]) -> _SubProblem | None:
    stop_ix: dict[str, int] = {}
    trips = []
    down = []
    up = []
    for lt, t in enumerate(ts):
        tt = x.trips[t]
        assert tt.route is not None
        stops = tuple(stop_ix.setdefault(i, len(stop_ix)) for i in tt.route.stops)
        caps = tuple(sorted(x.vehicle_types[tt.vehicle_type].compartments_litres.items()))
        trips.append((round(trip_cost[t], 9), caps, stops))
        for _t, i, c, k in down_by_t.get(t, ()):
            if x.down_fixed.get((i, d, c), 0) > 0:
                down.append((lt, stop_ix[i], c, k, k == c))
        for _t, i, c in up_by_t.get(t, ()):
            if x.up_fixed.get((i, d, c), 0) > 0:
                up.append((lt, stop_ix[i], c))
    need_down = []
    for i, si in stop_ix.items():
        for c in x.down_classes.get((i, d), ()):
            parcels = x.down_fixed.get((i, d, c), 0.0)
            if parcels <= 0:
                continue
            opts = x.options_at[(i, d, c)]
            litres = [x.litres[(c, o)] for o in opts]
            passive = any(o in x.passive_options for o in opts)
            need_down.append((si, c, parcels * min(litres), parcels * max(litres), passive))
    need_up = [(stop_ix[i], c, litres) for (i, dd, c), litres in sorted(x.up_fixed.items())
               if dd == d and i in stop_ix and litres > 0]
    if not need_down and not need_up:
        return None
    return _SubProblem(tuple(trips), tuple(down), tuple(up), tuple(need_down), tuple(need_up))


def _solve(h: highspy.Highs, p: _SubProblem) -> float | None:
    """min Σ c_t y_t over the sub-problem's rows; HiGHS's dual bound, or None if infeasible.

    Besides the demand, passive and tour-load rows, each load column gets the bound
    ℓ_tic ≤ L_ic y_t (L_ic all that village i needs of class c that day, in its bulkiest
    packaging): valid, and it makes the sub-MILP's own relaxation strong enough that HiGHS
    closes most at its root."""
    n_y = len(p.trips)
    n_dn, n_up = len(p.down), len(p.up)
    n = n_y + n_dn + n_up
    cost = np.zeros(n)
    cost[:n_y] = [c for c, _caps, _stops in p.trips]
    lo_rows: list[float] = []
    hi_rows: list[float] = []
    starts: list[int] = []
    idx: list[int] = []
    val: list[float] = []

    def row(lo: float, hi: float, cols: list[int], coefs: list[float]) -> None:
        lo_rows.append(lo)
        hi_rows.append(hi)
        starts.append(len(idx))
        idx.extend(cols)
        val.extend(coefs)

    down_of: dict[tuple[int, str], list[int]] = defaultdict(list)
    foreign_of: dict[tuple[int, str], list[int]] = defaultdict(list)
    for j, (_t, s, c, _k, own) in enumerate(p.down):
        down_of[(s, c)].append(n_y + j)
        if not own:
            foreign_of[(s, c)].append(n_y + j)
    for s, c, litres, most, passive in p.need_down:
        cols = down_of.get((s, c), [])
        if cols:
            row(litres, INF, cols, [1.0] * len(cols))
        if foreign_of.get((s, c)) and not passive:
            row(-INF, 0.0, foreign_of[(s, c)], [1.0] * len(foreign_of[(s, c)]))
        by_t: dict[int, list[int]] = defaultdict(list)
        for j in cols:
            by_t[p.down[j - n_y][0]].append(j)
        for t, js in by_t.items():
            row(-INF, 0.0, [*js, t], [1.0] * len(js) + [-most])
    up_of: dict[tuple[int, str], list[int]] = defaultdict(list)
    for j, (_t, s, c) in enumerate(p.up):
        up_of[(s, c)].append(n_y + n_dn + j)
    for s, c, litres in p.need_up:
        cols = up_of.get((s, c), [])
        if cols:
            row(litres, INF, cols, [1.0] * len(cols))
            for j in cols:
                row(-INF, 0.0, [j, p.up[j - n_y - n_dn][0]], [1.0, -litres])
    dn_by_t: dict[int, list[int]] = defaultdict(list)
    for j, (t, _s, _c, _k, _own) in enumerate(p.down):
        dn_by_t[t].append(j)
    up_by_t: dict[int, list[int]] = defaultdict(list)
    for j, (t, _s, _c) in enumerate(p.up):
        up_by_t[t].append(j)
    for t, (_cost, caps, stops) in enumerate(p.trips):
        pos = {s: q for q, s in enumerate(stops)}
        for k, cap in [*caps, (None, sum(c for _k, c in caps))]:
            for j in range(len(stops) + 1):
                cols = [n_y + q for q in dn_by_t.get(t, ())
                        if pos[p.down[q][1]] >= j and (k is None or p.down[q][3] == k)]
                cols += [n_y + n_dn + q for q in up_by_t.get(t, ())
                         if pos[p.up[q][1]] < j and (k is None or p.up[q][2] == k)]
                if cols:
                    row(-INF, 0.0, [*cols, t], [1.0] * len(cols) + [-cap])
    h.clearModel()
    h.addVars(n, np.zeros(n), np.full(n, INF))
    h.changeColsCost(n, np.arange(n, dtype=np.int32), cost)
    h.changeColsIntegrality(n_y, np.arange(n_y, dtype=np.int32),
                            np.array([highspy.HighsVarType.kInteger] * n_y))
    h.addRows(len(lo_rows), np.array(lo_rows), np.array(hi_rows), len(idx),
              np.array(starts, dtype=np.int32), np.array(idx, dtype=np.int32), np.array(val))
    h.run()
    if h.getModelStatus() in (highspy.HighsModelStatus.kInfeasible,
                              highspy.HighsModelStatus.kUnboundedOrInfeasible):
        return None
    bound = h.getInfo().mip_dual_bound
    return float(bound) if np.isfinite(bound) else None
