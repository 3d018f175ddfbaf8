"""Trunk rounding: a bound on the joint model that HiGHS's root does not reach in the time a
county-week hub gets.

With the trip-cost floors the relaxation's milk runs cost what the floors say, and what is
left of the root gap is mostly the trunk: the relaxation runs a hub's trunk truck 1.1 or
1.2 times a day, because its packaging is chosen by cost and the bulkier choice fills a
fraction of a truck. A plan runs that truck whole or packs less bulkily, and which is
cheaper depends on the whole week's loads. HiGHS's own cuts do not see it: on hub H13 its
root bound was 17,679 CNY against an LP of 17,673 and an optimum near 17,880.

The model with only the trunk legs' trip counts integer (every milk-run count, and every
other integer, relaxed) is a relaxation of the joint model, so its optimum, or the least LP
value of the branch-and-bound nodes still open where it stops early, bounds every plan from
below. It has a handful of integers (one per hub, trunk vehicle type and day), so a few
nodes close it: H13 17,673.4 → 17,799.8 CNY in 0.4 s, H04 18,288.5 → 18,375.1 in 0.6 s.
Figures: docs/optimizer.md, "Trunk rounding"."""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass

import highspy
import numpy as np

from optimizer.model import BuiltModel
from optimizer.neighbourhood import trip_columns
from optimizer.solver import CompiledModel, compile_model, objective_of, relaxed_highs

#: a relaxation value this close to a whole number counts as whole
INTEGRAL_TOL = 1e-6


@dataclass(frozen=True)
class TrunkBound:
    """`bound` a lower bound on the model's optimum (None: the relaxation was not solved in
    time); `relaxation` the LP's optimum it improves on; `branched` whether any trunk count
    was fractional there (else `bound` is the relaxation)."""

    bound: float | None
    relaxation: float | None
    branched: bool
    seconds: float


def trunk_columns(b: BuiltModel, comp: CompiledModel) -> list[int]:
    """The compiled columns of `b`'s trunk trip counts (trips without a route)."""
    return [j for j in trip_columns(b, comp) if b.trips[comp.columns[j].index()].route is None]


def trunk_rounding_bound(b: BuiltModel, time_limit_s: float, threads: int | None = None
                         ) -> TrunkBound:
    """The optimum of `b`'s model with only its trunk trip counts integer, or a lower bound
    on it (the least LP value of the nodes still open) when `time_limit_s` runs out; the LP
    relaxation's optimum where its trunk counts are whole already. The model is used as
    built, fixings included: the caller undoes a baseline's fixings first
    (`baselines.as_joint`).

    A best-first branch and bound of its own over those few columns, each node an LP
    re-solved warm from its parent's basis after a bound change: HiGHS's MIP solver closes
    the same problems, but spends most of its time on root cuts and heuristics (H04: 1.9 s
    against 0.6 s here, same bound) and stops with its root bound when cut short, where
    this one has a bound that rises node by node."""
    t0 = time.perf_counter()
    comp = compile_model(b.model)
    h = relaxed_highs(comp, None, threads, options={"presolve": "off"})
    cols = np.array(trunk_columns(b, comp), dtype=np.int32)
    lo0 = np.asarray(comp.lp.col_lower_, dtype=np.float64)[cols]
    hi0 = np.asarray(comp.lp.col_upper_, dtype=np.float64)[cols]

    def solve(lo: np.ndarray, hi: np.ndarray) -> tuple[str, float, np.ndarray]:
        # HiGHS's time limit is on its run time summed over this instance's runs
        left = max(0.05, time_limit_s - (time.perf_counter() - t0))
        h.setOptionValue("time_limit", h.getRunTime() + left)
        if len(cols):
            h.changeColsBounds(len(cols), cols, lo, hi)
        h.run()
        status = h.getModelStatus()
        if status == highspy.HighsModelStatus.kInfeasible:
            return "infeasible", math.inf, np.empty(0)
        if status != highspy.HighsModelStatus.kOptimal:
            return "unknown", -math.inf, np.empty(0)
        x = np.asarray(h.getSolution().col_value, dtype=np.float64)
        return "optimal", objective_of(comp, x), x[cols]

    status, lp, x = solve(lo0, hi0)
    if status != "optimal":
        return TrunkBound(None, None, False, time.perf_counter() - t0)
    if not len(cols):  # a county vehicle that reaches none of these hubs' days
        return TrunkBound(lp, lp, False, time.perf_counter() - t0)
    # nodes: (LP value, tie-break, lower bounds, upper bounds, trunk values)
    heap: list[tuple[float, int, np.ndarray, np.ndarray, np.ndarray]] = [(lp, 0, lo0, hi0, x)]
    best, count, branched = math.inf, 1, False
    while heap:
        value, _k, lo, hi, x = heap[0]
        if value >= best:
            break  # every open node is at least the best whole-trunk solution
        frac = np.abs(x - np.round(x))
        j = int(np.argmax(frac))
        if frac[j] <= INTEGRAL_TOL:
            heapq.heappop(heap)
            best = value
            continue
        if time.perf_counter() - t0 > time_limit_s:
            break
        heapq.heappop(heap)
        branched = True
        for side in (0, 1):
            lo2, hi2 = lo.copy(), hi.copy()
            if side == 0:
                hi2[j] = math.floor(x[j])
            else:
                lo2[j] = math.ceil(x[j])
            if lo2[j] > hi2[j]:
                continue
            st, v, x2 = solve(lo2, hi2)
            if st == "unknown":
                # this child is not proven either way: its parent's value bounds it
                return TrunkBound(max(lp, min(value, _least(heap, best))), lp, True,
                                  time.perf_counter() - t0)
            if st == "optimal" and v < best:
                heapq.heappush(heap, (v, count, lo2, hi2, x2))
                count += 1
    least = _least(heap, best)
    # every node infeasible (inf) would mean no plan at all, against the plan the caller
    # has: a numerical slip, so the relaxation's value is all that is claimed
    bound = max(lp, least) if math.isfinite(least) else lp
    return TrunkBound(bound, lp, branched, time.perf_counter() - t0)


def _least(heap: list, best: float) -> float:
    """The bound: the best whole-trunk value found, or an open node's lower LP value."""
    return min([best, *(node[0] for node in heap)])
