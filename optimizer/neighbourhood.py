"""Neighbourhood searches: the joint solve's primal side (drop trips, then day and unit
windows), and the drop search that finishes a single-use plan HiGHS left above its gap.

Started from the sequential plan, HiGHS's own heuristics found nothing better on the county
week's hub H13 in 30 s (18,069.9 CNY at heuristic effort 0.05 and 0.3 alike, the bound at its
root), while re-solving the same model with every trip count outside two consecutive days
fixed to the plan's found 17,955 CNY in 12 s (best known plan 17,899; one day at a time
stalls at 18,043: presale windows and empties move loads between neighbouring days). Each
window is a MIP over two days' trip counts, with all continuous decisions (packaging,
pools, service shares) free; a window's plan replaces the incumbent only when it is cheaper,
so the search never returns a worse plan than its start (large neighbourhood search in the
style of RINS/local branching, with the neighbourhoods chosen by day).

Runs on the compiled arrays (`optimizer.solver.CompiledModel`): a window only changes column
bounds, so no model is built again. (Measured: docs/optimizer.md, "Day-window search".)"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import highspy
import numpy as np

from optimizer.cuts import components
from optimizer.model import BuiltModel
from optimizer.scenario import Scenario
from optimizer.solver import CompiledModel, Polish, make_highs, objective_of, relaxed_highs
from optimizer.warmstart import trip_of

#: HiGHS's limit per window: a window that stops early still hands back its best plan
WINDOW_LIMIT_S = 3.0
#: consecutive days freed at once
WINDOW_DAYS = 2


@dataclass(frozen=True)
class SearchOutcome:
    values: np.ndarray
    objective: float
    start_objective: float
    windows: int  # windows solved
    improved: int  # windows that found a cheaper plan
    seconds: float


def day_windows(days: int, width: int = WINDOW_DAYS, cyclic: bool = True) -> list[frozenset[int]]:
    """The windows of `width` consecutive days, wrapping at the horizon's end when `cyclic`
    (a cyclic week's last day feeds its first)."""
    width = max(1, min(width, days))
    last = days if cyclic and width < days else days - width + 1
    return [frozenset((a + k) % days for k in range(width)) for a in range(max(1, last))]


def search_day_windows(
    comp: CompiledModel, start: Sequence[float] | np.ndarray,
    day_of_col: Sequence[int | None],
    windows: list[frozenset[int]], time_limit_s: float, threads: int | None = None,
    window_limit_s: float = WINDOW_LIMIT_S, guide: np.ndarray | None = None,
    pinned_day_of_col: Sequence[int | None] | None = None,
) -> SearchOutcome:
    """Improve the feasible plan `start` window by window until `time_limit_s` is spent or a
    whole pass over `windows` finds nothing cheaper.

    `pinned_day_of_col` labels continuous columns (the trips' loads) with a day: those whose
    day is not in the window stay as the incumbent has them too. A window's MIP then has a
    third fewer columns and HiGHS gets through its root, where its sub-MIP heuristics find
    the cheaper plans, in about 2 s instead of running out its 3 s in cut rounds (hub H04:
    three windows of four improved instead of one; docs/optimizer.md, "Day-window search").

    `day_of_col` gives each column's day, or None; every integer column whose day is not in
    the window (and every integer column without a day) is fixed to its incumbent value.
    With `guide` (the LP relaxation's values) the windows are tried in order of how far the
    start's integers are from it, weighted by cost (`guided_order`)."""
    t0 = time.perf_counter()
    lp = comp.lp
    lo0 = np.array(lp.col_lower_, dtype=np.float64)
    hi0 = np.array(lp.col_upper_, dtype=np.float64)
    is_int = np.array([v.is_integer() for v in comp.columns], dtype=bool)
    day = np.array([-1 if d is None else d for d in day_of_col], dtype=np.int64)
    pinned = None if pinned_day_of_col is None else np.array(
        [-1 if d is None else d for d in pinned_day_of_col], dtype=np.int64)
    x = np.asarray(start, dtype=np.float64).copy()
    x[is_int] = np.round(x[is_int])
    best = first = objective_of(comp, x)
    if guide is not None:
        windows = guided_order(windows, x, guide, np.asarray(comp.lp.col_cost_), is_int, day)
    solved = improved = since = 0
    k = 0
    try:
        while windows and since < len(windows):
            left = time_limit_s - (time.perf_counter() - t0)
            if left < min(0.5, window_limit_s):
                break
            window = windows[k % len(windows)]
            k += 1
            fix = is_int & ~np.isin(day, list(window))
            if pinned is not None:
                fix |= (pinned >= 0) & ~np.isin(pinned, list(window))
            lo, hi = lo0.copy(), hi0.copy()
            lo[fix] = x[fix]
            hi[fix] = x[fix]
            lp.col_lower_, lp.col_upper_ = lo, hi
            h = make_highs(min(window_limit_s, left), 1e-4, threads)
            h.passModel(lp)
            sol = highspy.HighsSolution()
            sol.col_value = x.tolist()
            sol.value_valid = True
            h.setSolution(sol)
            h.run()
            solved += 1
            since += 1
            if h.getInfo().primal_solution_status != 2:  # no feasible solution
                continue
            vals = np.asarray(h.getSolution().col_value, dtype=np.float64)
            vals[is_int] = np.round(vals[is_int])
            obj = objective_of(comp, vals)
            if obj < best - 1e-7 * max(1.0, abs(best)) and _within(vals, lo0, hi0):
                x, best = vals, obj
                improved += 1
                since = 0
    finally:
        lp.col_lower_, lp.col_upper_ = lo0, hi0
    return SearchOutcome(x, best, first, solved, improved, time.perf_counter() - t0)


#: a drop search stops after this long (H01, 637 trip counts: 73 tries in 0.5-0.9 s) ...
DROP_LIMIT_S = 1.5
#: ... and, in a joint stage long enough for windows too, after this share of the search,
#: else after this share (a 200 % county hub's joint stage of 1 s left HiGHS 0.2 s, before
#: its root: bound 11,694 against a plan of 26,426 CNY)
DROP_SHARE = 0.2
SHORT_DROP_SHARE = 0.5


def drop_trips(comp: CompiledModel, start: Sequence[float] | np.ndarray,
               trip_cols: Sequence[int], time_limit_s: float,
               threads: int | None = None) -> SearchOutcome:
    """`start` with its continuous decisions re-optimised for its integers, then with one
    trip fewer wherever that is still feasible and cheaper (dearest trips first, again
    until a pass drops none or `time_limit_s` is spent). Each try is one LP, re-solved warm
    on one HiGHS instance with every integer fixed.

    A MIP cut short by its time limit often still runs trips a cheaper plan drops: county
    week hub H13's single-use plan after 1.3 s ran its trunk truck twice a day (22,791.5
    CNY); HiGHS found the plan that runs it once on five days (21,071) only after about
    2.3 s; this search takes 0.34 s to 21,386.9. And a warm-started joint solve that stops
    at its start returns the start's continuous decisions as they were (hub H01: 24,230.4
    CNY, re-optimised 24,139.6). Figures: docs/optimizer.md, "Drop search"."""
    t0 = time.perf_counter()
    x = np.asarray(start, dtype=np.float64).copy()
    is_int = np.array([v.is_integer() for v in comp.columns], dtype=bool)
    x[is_int] = np.round(x[is_int])
    best = first = objective_of(comp, x)
    h = relaxed_highs(comp, None, threads, options={"presolve": "off"})
    ints = np.flatnonzero(is_int).astype(np.int32)
    h.changeColsBounds(len(ints), ints, x[ints], x[ints])
    solved = improved = 0

    def solve() -> np.ndarray | None:
        left = max(0.05, time_limit_s - (time.perf_counter() - t0))
        # HiGHS's time limit is on its run time summed over this instance's runs
        h.setOptionValue("time_limit", h.getRunTime() + left)
        h.run()
        if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
            return None
        y = np.asarray(h.getSolution().col_value, dtype=np.float64)
        y[is_int] = np.round(y[is_int])
        lo, hi = np.asarray(comp.lp.col_lower_), np.asarray(comp.lp.col_upper_)
        if not _within(y, lo, hi):
            return None
        # as HiGHS's own plans are read back (`solver._run_once`); not clipped to the
        # bounds: a value moved within the tolerance can break a row by more than it, and
        # HiGHS then rejects the plan as the next solve's start
        y[np.abs(y) < 1e-9] = 0.0
        return y

    y = solve()
    if y is not None and (obj := objective_of(comp, y)) < best:
        x, best = y, obj
    cost = np.asarray(comp.lp.col_cost_, dtype=np.float64)
    dropped = True
    while dropped and time.perf_counter() - t0 < time_limit_s:
        dropped = False
        for j in sorted((j for j in trip_cols if x[j] >= 1), key=lambda j: (-cost[j], j)):
            # the same trip again while it goes: a count HiGHS left high is often high by more
            # than one, and dropping it first leaves the cheaper trips to carry the rest
            while x[j] >= 1 and time.perf_counter() - t0 < time_limit_s:
                h.changeColBounds(int(j), x[j] - 1, x[j] - 1)
                y = solve()
                solved += 1
                if y is None or (obj := objective_of(comp, y)) >= best - 1e-7 * max(1.0, abs(best)):
                    h.changeColBounds(int(j), x[j], x[j])
                    break
                x, best = y, obj
                improved += 1
                dropped = True
    return SearchOutcome(x, best, first, solved, improved, time.perf_counter() - t0)


def trip_columns(b: BuiltModel, comp: CompiledModel) -> list[int]:
    """The compiled columns of `b`'s trip counts."""
    trips_var = b.model.trips
    return [k for k, v in enumerate(comp.columns) if v.parent_component() is trips_var]


def trip_drop_finish(b: BuiltModel, threads: int | None) -> Polish:
    """A `Polish` that runs `drop_trips` on the built model `b`'s trip counts: what a stage
    runs on HiGHS's plan when HiGHS stopped on its time limit (`optimizer.solver.run_highs`,
    its `finish`)."""

    def finish(comp: CompiledModel, start: list[float], seconds: float
               ) -> tuple[list[float], dict[str, float]]:
        out = drop_trips(comp, start, trip_columns(b, comp), min(seconds, DROP_LIMIT_S),
                         threads)
        return out.values.tolist(), {"finish_s": out.seconds, "finish_gain_cny":
                                     out.start_objective - out.objective}

    return finish


def search_families(
    comp: CompiledModel, start: Sequence[float] | np.ndarray,
    families: list[tuple[Sequence[int | None], list[frozenset[int]]]], time_limit_s: float,
    threads: int | None = None, window_limit_s: float = WINDOW_LIMIT_S,
    guide: np.ndarray | None = None, pinned: dict[int, Sequence[int | None]] | None = None,
) -> SearchOutcome:
    """`search_day_windows` over each family of neighbourhoods in turn, each a column
    labelling and its windows (the days, then each unit's whole horizon; `pinned[k]` the
    pinned columns' labelling of family k, see `search_day_windows`), from where the one
    before stopped; another round only if a family after the first improved the plan (the
    first had stalled where the later ones started), until the time is spent.

    Day windows cannot swap a trip between days more than a window apart: on the county
    week's hub H04 they stall at 18,883.7 CNY, and the windows of one cluster over the whole
    week go on to 18,658.1 (a 150 s cold solve of that hub: 18,681)."""
    t0 = time.perf_counter()
    x = np.asarray(start, dtype=np.float64)
    first: float | None = None
    best = 0.0
    windows = improved = 0
    while True:
        later_improved = False
        for k, (labels, wins) in enumerate(families):
            left = time_limit_s - (time.perf_counter() - t0)
            if left < min(0.5, window_limit_s):
                break
            out = search_day_windows(comp, x, labels, wins, left, threads, window_limit_s,
                                     guide=guide, pinned_day_of_col=(pinned or {}).get(k))
            first = out.start_objective if first is None else first
            x, best = out.values, out.objective
            windows += out.windows
            improved += out.improved
            later_improved = later_improved or (k > 0 and out.improved > 0)
        else:
            if later_improved and len(families) > 1:
                continue
        break
    if first is None:
        first = best = objective_of(comp, x)
    return SearchOutcome(x, best, first, windows, improved, time.perf_counter() - t0)


def guided_order(windows: list[frozenset[int]], x: np.ndarray, guide: np.ndarray,
                 cost: np.ndarray, is_int: np.ndarray, day: np.ndarray) -> list[frozenset[int]]:
    """`windows` by Σ c_j |x_j − x̄_j| over their integer columns, largest first (x̄ the LP
    relaxation): where the plan and the relaxation disagree most is where a window is most
    likely to find a cheaper plan (the RINS idea used to order, not to fix). On hub H13 the
    window that improved the routing-first plan (days 3-4: 18,069.9 → 17,955.1 CNY) scores
    highest of the seven."""
    weight = np.abs(x - guide) * np.abs(cost)
    score = [float(weight[is_int & np.isin(day, list(w))].sum()) for w in windows]
    return [w for _s, _k, w in sorted(zip(score, range(len(windows)), windows, strict=True),
                                       key=lambda t: (-t[0], t[1]))]


def relaxation_values(comp: CompiledModel, threads: int | None,
                      time_limit_s: float = WINDOW_LIMIT_S) -> np.ndarray | None:
    """The LP relaxation's values, or None when HiGHS does not solve it to optimality within
    `time_limit_s`."""
    h = relaxed_highs(comp, time_limit_s, threads)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    return np.asarray(h.getSolution().col_value, dtype=np.float64)


def _within(vals: np.ndarray, lo: np.ndarray, hi: np.ndarray, tol: float = 1e-6) -> bool:
    return bool(np.all(vals >= lo - tol) and np.all(vals <= hi + tol))


#: the joint stage searches windows only with at least this much time (a few windows' worth)
MIN_SEARCH_S = 2.0
#: ... and drops trips (`drop_trips`) from its start with at least this much
MIN_DROP_STAGE_S = 0.5
#: share of the search's time its guide, the LP relaxation, may take at most
GUIDE_SHARE = 0.3
#: share of the joint stage's time the search may take; it stops earlier at a local optimum
SEARCH_SHARE = 0.8
#: no search on models with more trip counts than this: a two-day window of hub H13 (357
#: trip counts) takes most of its 3 s, so a window of a model many times larger (the whole
#: county, when its trunk fleet links the hubs) would end at its limit without a plan
MAX_SEARCH_INTEGERS = 2000


def trip_day_polish(b: BuiltModel, scenario: Scenario, threads: int | None) -> Polish:
    """A `Polish` (optimizer.solver) for the built model `b`, whose integers are its trip
    counts: first `drop_trips` over every trip count (trunk legs included), then, with
    `MIN_SEARCH_S` of stage, windows over the trips' days, wrapping when the horizon is
    cyclic, then each unit's milk runs (villages linked by common candidate routes,
    `cuts.components`) over the whole horizon, where the trunk legs stay as they are."""
    trips, trips_var = b.trips, b.model.trips
    windows = day_windows(scenario.horizon_days, WINDOW_DAYS, scenario.horizon_end == "cyclic")
    unit_of = components(trips)
    units = sorted(set(unit_of.values()))
    unit_ix = {u: k for k, u in enumerate(units)}

    def polish(comp: CompiledModel, start: list[float], seconds: float
               ) -> tuple[list[float], dict[str, float]]:
        day_of = [trips[v.index()].day if v.parent_component() is trips_var else None
                  for v in comp.columns]
        if sum(d is not None for d in day_of) > MAX_SEARCH_INTEGERS:
            return start, {"search_skipped_large": 1.0}
        t0 = time.perf_counter()
        # `seconds` is `search_seconds` of the stage's limit: windows from MIN_SEARCH_S of it
        windows_too = seconds >= SEARCH_SHARE * MIN_SEARCH_S
        # the windows find more where they get the time (hub H04: 163 CNY from one window);
        # in a short stage HiGHS keeps half, for its root and so its bound
        drop_s = min(DROP_LIMIT_S, (DROP_SHARE if windows_too else SHORT_DROP_SHARE) * seconds)
        dropped = drop_trips(comp, start, [k for k, d in enumerate(day_of) if d is not None],
                             drop_s, threads)
        stats = {"drop_s": dropped.seconds,
                 "drop_gain_cny": dropped.start_objective - dropped.objective}
        left = seconds - (time.perf_counter() - t0)
        if not windows_too or left < 0.5:
            return dropped.values.tolist(), {"search_s": time.perf_counter() - t0, **stats}
        # the guide's LP may take a share of a short search, not all of it
        guide = relaxation_values(comp, threads, min(WINDOW_LIMIT_S, GUIDE_SHARE * left))
        left = seconds - (time.perf_counter() - t0)
        unit = [None if v.parent_component() is not trips_var
                or (route := trips[v.index()].route) is None
                else unit_ix[unit_of[route.stops[0]]] for v in comp.columns]
        # the day windows pin the loads of the days they do not free (a unit's window frees
        # its trips over the whole horizon, and the trunk carries what its packaging changes)
        load_day = [None if v.parent_component() is trips_var
                    or (t := trip_of(v.parent_component().local_name, v.index())) is None
                    else trips[t].day for v in comp.columns]
        out = search_families(
            comp, dropped.values,
            [(day_of, windows), (unit, [frozenset({k}) for k in range(len(units))])],
            left, threads, guide=guide, pinned={0: load_day})
        return out.values.tolist(), {
            "search_s": time.perf_counter() - t0, "search_windows": float(out.windows),
            "search_improved": float(out.improved),
            "search_gain_cny": out.start_objective - out.objective, **stats}

    return polish


def search_seconds(time_limit_s: float | None) -> float:
    """The search's share of a joint stage's HiGHS time limit (0: no search). Below
    `MIN_SEARCH_S` it only drops trips (`drop_trips`), which needs a fraction of a second."""
    if time_limit_s is None or time_limit_s < MIN_DROP_STAGE_S:
        return 0.0
    return SEARCH_SHARE * time_limit_s


#: share of a criterion solve's time limit its LP neighbourhood (`lp_neighbourhood`) may
#: take; HiGHS gets the rest, with the neighbourhood's plan as its start
LP_NEIGHBOURHOOD_SHARE = 0.5


def lp_neighbourhood(threads: int | None, mip_gap: float | None) -> Polish:
    """A `Polish` (optimizer.solver) that solves the LP relaxation's neighbourhood (RENS,
    Berthold 2014): every integer column held between the floor and the ceiling of its LP
    value, that sub-MIP solved to `mip_gap` in the seconds given; its plan replaces the start
    when better. Why: for the least single-use packaging of a county-week hub the LP bound
    is the optimum, but HiGHS spends its root in cut rounds that cannot raise a bound that
    is already tight and finds a plan only afterwards, 12.4 s on hub H14 (its sub-MIP then
    takes 0.26 s); with 9 s a frontier's least-criterion solve had stopped at the planner's
    plan, 50 % above. The neighbourhood of the LP finds the optimum in 0.5-3.1 s on every
    hub that stopped short (docs/optimizer.md, "Trade-off frontier")."""

    def polish(comp: CompiledModel, start: list[float], seconds: float
               ) -> tuple[list[float], dict[str, float]]:
        t0 = time.perf_counter()
        x = relaxation_values(comp, threads, seconds)
        left = seconds - (time.perf_counter() - t0)
        if x is None or left < 0.1:
            return start, {"lp_neighbourhood_s": time.perf_counter() - t0}
        integers = np.array([j for j, v in enumerate(comp.columns) if v.is_integer()],
                            dtype=np.int32)
        lo = np.asarray(comp.lp.col_lower_, dtype=np.float64)[integers]
        hi = np.asarray(comp.lp.col_upper_, dtype=np.float64)[integers]
        h = make_highs(left, mip_gap, threads)
        h.passModel(comp.lp)
        if len(integers):
            xi = x[integers]
            h.changeColsBounds(len(integers), integers,
                               np.maximum(lo, np.floor(xi + 1e-6)),
                               np.minimum(hi, np.ceil(xi - 1e-6)))
        h.run()
        spent = time.perf_counter() - t0
        stats = {"search_s": spent, "lp_neighbourhood_s": spent, "lp_neighbourhood_gain": 0.0}
        if h.getInfo().primal_solution_status != 2:  # no feasible solution
            return start, stats
        values = list(h.getSolution().col_value)
        before = objective_of(comp, np.asarray(start))
        gain = before - objective_of(comp, np.asarray(values))
        if gain <= 1e-9 * max(1.0, abs(before)):
            return start, stats
        stats["lp_neighbourhood_gain"] = gain
        return values, stats

    return polish
