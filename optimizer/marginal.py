"""What one more unit is worth: a box in a hub's pool, a unit of a hub's daily cleaning
capacity, a vehicle of each type at a hub — as the change of the plan's cost.

Boxes and cleaning capacity are priced by the duals of the plan's LP: each hub's joint
model with the plan's trip counts fixed (the integer choices) and everything else free.
With the trips fixed, hubs share no row (`fleet_county` holds trips only), so each hub's LP
is solved on its own. A row's dual is the derivative of the LP's cost in its right-hand side,
so the figure holds for a small change, and for one whole box as long as the LP's basis
does not change (`tests/optimizer/test_marginal.py` checks one against a re-solve with one
more box). A vehicle is not a small change: its value is a warm re-solve of the hub's MILP
with one more (started from the LP's plan, which stays feasible), optional and bounded in
time, so `plan solve` keeps its limit.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import highspy
import numpy as np
import pyomo.environ as pyo
from pyomo.common.collections import ComponentMap
from pyomo.common.errors import InfeasibleConstraintException

from optimizer.model import BuiltModel, build_model
from optimizer.routes import hub_routes
from optimizer.scenario import Scenario
from optimizer.solver import compile_model, make_highs, run_highs
from optimizer.trips import trips_per_shift
from optimizer.warmstart import set_values, values_of


def _trip_key(hub: str, stops: tuple[str, ...] | None, vt: str, day: int, purpose: str
              ) -> tuple[Any, ...]:
    return (hub, stops, vt, day, purpose)


def fix_plan_trips(b: BuiltModel, plan: dict[str, Any]) -> list[tuple[Any, Any]] | None:
    """Fix `b`'s trip counts to `plan`'s trips (one entry per vehicle trip) and relax every
    other integer variable; returns the relaxed variables with their domains (for
    `unfix_trips`), or None when a trip of the plan is not among `b`'s trip types or its
    count is outside the trip type's bounds."""
    m = b.model
    hubs = set(b.hubs)
    want = Counter(
        _trip_key(t["hub_id"], tuple(t["stops"]) if t["kind"] == "milk_run" else None,
                  t["vehicle_type"], t["day"], t["purpose"])
        for t in plan["trips"] if t["hub_id"] in hubs)
    index = {_trip_key(tt.hub_id, tuple(tt.route.stops) if tt.route is not None else None,
                       tt.vehicle_type, tt.day, tt.purpose): k for k, tt in enumerate(b.trips)}
    if any(k not in index for k in want):
        return None
    for k, t in index.items():  # a variant with fewer vehicles can forbid the plan's trips
        v, n = m.trips[t], want.get(k, 0)
        if (v.lb is not None and n < v.lb) or (v.ub is not None and n > v.ub):
            return None
    for k, t in index.items():
        m.trips[t].fix(want.get(k, 0))
    relaxed = []
    for v in m.component_data_objects(pyo.Var):
        if not v.fixed and v.is_integer():
            lb, ub = v.lb, v.ub
            relaxed.append((v, v.domain))
            v.domain = pyo.Reals
            v.setlb(lb)
            v.setub(ub)
    return relaxed


def unfix_trips(b: BuiltModel, relaxed: list[tuple[Any, Any]]) -> None:
    """Undo `fix_plan_trips`, keeping the values: the model is the MILP again."""
    for v in b.model.trips.values():
        v.unfix()
    for v, domain in relaxed:
        lb, ub = v.lb, v.ub
        v.domain = domain
        v.setlb(lb)
        v.setub(ub)


def plan_as_start(b: BuiltModel, plan: dict[str, Any], threads: int | None = None) -> bool:
    """Load a complete solution of `b` with `plan`'s trips into its variables (the LP with
    those trips fixed), as a warm start; False when the trips do not fit `b` or the LP has
    no optimum. Turns the planner's plan (hub by hub) into a start for a whole-county
    model."""
    relaxed = fix_plan_trips(b, plan)
    if relaxed is None:
        return False
    m = b.model
    active = [o for o in m.component_objects(pyo.Objective, active=True)]
    for o in active:
        o.deactivate()
    m.cost.activate()  # the least-cost completion of those trips, whatever is minimised now
    try:
        return _lp_duals(b, threads, ranging=False) is not None
    finally:
        m.cost.deactivate()
        for o in active:
            o.activate()
        unfix_trips(b, relaxed)


@dataclass(frozen=True)
class _Ranging:
    """HiGHS's bound ranging of a solved LP as distances with the duals unchanged (`inf`:
    no limit), by compiled column and row: how far a column may shift down and up with both
    its bounds, how far a row's finite bound may move down and up (`_ranging`); with the
    solved instance and the arrays it was built from, for re-solves (`_confirm`)."""

    highs: Any
    col_index: ComponentMap
    row_index: ComponentMap
    col_down: np.ndarray
    col_up: np.ndarray
    row_down: np.ndarray
    row_up: np.ndarray
    #: a row whose finite bound is an upper one (≤ as written); else compiled as ≥
    row_upper: np.ndarray
    col_lower: np.ndarray
    col_upper: np.ndarray
    col_cost: np.ndarray
    row_lower_bound: np.ndarray
    row_upper_bound: np.ndarray

    def col(self, var: Any) -> tuple[float | None, float | None] | None:
        j = self.col_index.get(var)
        return None if j is None else (_limit(self.col_down[j]), _limit(self.col_up[j]))

    def row(self, con: Any) -> tuple[float | None, float | None] | None:
        i = self.row_index.get(con)
        return None if i is None else (_limit(self.row_down[i]), _limit(self.row_up[i]))


def _limit(d: float) -> float | None:
    """A distance as the JSON says it: None for no limit, never below 0."""
    return None if not math.isfinite(d) or d >= 1e20 else max(0.0, float(d))


@dataclass(frozen=True)
class _LpDuals:
    """An optimal LP's cost and sensitivities, keyed by the model's own variable and
    constraint objects: each row's dual (Δcost per unit of its bound), each column's cost
    coefficient minus its reduced cost (Σ_r y_r a_rj: what the rows charge for one more unit
    of it), and HiGHS's bound ranging (None where not asked for or not given). Keyed by
    object, not by name: naming 39,000 components of a county-week hub took 0.45 s."""

    cost: float
    rows: ComponentMap
    charged: ComponentMap
    ranging: _Ranging | None = None


def _lp_duals(b: BuiltModel, threads: int | None, ranging: bool = True) -> _LpDuals | None:
    """The LP's cost and duals; None without an optimal LP (or with a row its fixings break,
    which the compiler finds before any solve). The LP's values are loaded into the model."""
    try:
        comp = compile_model(b.model)
    except InfeasibleConstraintException:
        return None
    h = make_highs(None, None, threads)
    h.passModel(comp.lp)
    h.run()
    if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    sol = h.getSolution()
    x = np.asarray(sol.col_value)
    for v, xv in zip(comp.columns, x.tolist(), strict=True):
        v.set_value(xv, skip_validation=True)
    c = np.asarray(comp.lp.col_cost_)
    cost = float(np.dot(c, x)) + comp.offset
    charged = c - np.asarray(sol.col_dual)
    rows = [row[0] for row in comp.rows]
    return _LpDuals(cost, ComponentMap(zip(rows, np.asarray(sol.row_dual).tolist(),
                                           strict=True)),
                    ComponentMap(zip(comp.columns, charged.tolist(), strict=True)),
                    _ranging(h, comp, rows, x, c, np.asarray(sol.row_value)) if ranging
                    else None)


#: `_confirm` re-solves only a range shorter than this many units (a whole box or one more
#: box a day is what a planner asks about) ...
CONFIRM_BELOW = 10.0
#: ... with at most this many re-solves a side, at 1, 4 and 16 times the first step
CONFIRM_PROBES = 2


def _confirm(lp: _LpDuals, rg: _Ranging, shift: Any, limit: float | None, sign: float,
             value: float, correction: float = 0.0) -> float | None:
    """A range `limit` that HiGHS's ranging gave, widened where re-solves show more. The
    LP's cost as a function of a right-hand side (or of a column shifted with its bounds)
    is convex and piecewise linear, so a re-solve at δ whose cost is still `value`·δ from
    the optimum (its `correction`·δ for the shifted column's own cost taken off) proves the
    value for every step up to δ. Why: ranging is about the basis, and on a degenerate LP
    the basis changes long before the value does (an outside audit: cleaning said 0.4 units
    where re-solves stayed linear from -8 to +3). `shift(δ)` moves the bounds (0: back)."""
    if limit is None or limit >= CONFIRM_BELOW:
        return limit
    h = rg.highs
    best, step = limit, max(1.0, 2.0 * limit)
    try:
        for _ in range(CONFIRM_PROBES):
            shift(sign * step)
            h.run()
            if h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                break
            got = h.getInfo().objective_function_value - correction * sign * step
            if abs(got - (lp.cost + sign * step * value)) > 1e-6 * max(1.0, abs(lp.cost)):
                break
            best, step = step, 4.0 * step
    finally:
        shift(0.0)
    return best


def _ranging(h: highspy.Highs, comp: Any, rows: list[Any], x: np.ndarray, cost: np.ndarray,
             row_x: np.ndarray) -> _Ranging | None:
    """HiGHS's bound ranging as distances with the duals unchanged; None without ranging.
    Per column: how far both its bounds may shift down and up together; per row: how far
    its finite bound may go down and up. Why: a dual alone says what one more unit is
    worth, not for how many; on tiny.yaml one more box saves 2.87 CNY but the second saves
    1.0 and the sixth nothing (`docs/optimizer.md`, "Marginal values").

    HiGHS's `value_` is the value the column (the row's activity) takes where the basis
    changes, so it measures only a nonbasic column's or row's range, from its value. A
    basic column shifted with its bounds keeps its value until a bound reaches it (up: its
    lower one, by x − lo; down: its upper one, by ub − x); a basic row (slack) keeps the
    basis until its bound moves onto its activity, and moving the bound away never binds.
    (Measuring every column from its lower bound had a pool the plan expands valid for
    6.75 fewer boxes where any number holds, and a slack day's cleaning row for 0 more
    units: a review's re-solves.)"""
    status, rg = h.getRanging()
    if status != highspy.HighsStatus.kOk or not rg.valid:
        return None
    basis = h.getBasis()
    basic = highspy.HighsBasisStatus.kBasic
    lp = comp.lp
    lo = np.asarray(lp.col_lower_, dtype=np.float64)
    ub = np.asarray(lp.col_upper_, dtype=np.float64)
    col_basic = np.array([st == basic for st in basis.col_status], dtype=bool)
    # each .value_ is a fresh copy of the whole vector: read it once
    down = np.where(col_basic, ub - x, x - np.asarray(rg.col_bound_dn.value_, dtype=np.float64))
    up = np.where(col_basic, x - lo, np.asarray(rg.col_bound_up.value_, dtype=np.float64) - x)
    rl = np.asarray(lp.row_lower_, dtype=np.float64)
    ru = np.asarray(lp.row_upper_, dtype=np.float64)
    upper = np.isfinite(ru) & ~np.isfinite(rl)
    row_basic = np.array([st == basic for st in basis.row_status], dtype=bool)
    inf = np.full(len(row_x), np.inf)
    r_down = np.where(row_basic, np.where(upper, ru - row_x, inf),
                      row_x - np.asarray(rg.row_bound_dn.value_, dtype=np.float64))
    r_up = np.where(row_basic, np.where(upper, inf, row_x - rl),
                    np.asarray(rg.row_bound_up.value_, dtype=np.float64) - row_x)
    return _Ranging(h, ComponentMap((v, j) for j, v in enumerate(comp.columns)),
                    ComponentMap((r, i) for i, r in enumerate(rows)), down, up, r_down, r_up,
                    upper, lo, ub, cost, rl, ru)


def plan_trip_keys(plan: dict[str, Any], hubs: list[str] | set[str]) -> list[Any]:
    """`plan`'s trips of `hubs` as sorted keys: which plan a hub's marginal values were
    computed on (`group_marginals`), to tell whether they are the final plan's."""
    wanted = set(hubs)
    return sorted((t["hub_id"], t["day"], t["vehicle_type"], t["purpose"], t["kind"],
                   tuple(t["stops"])) for t in plan["trips"] if t["hub_id"] in wanted)


def group_marginals(s: Scenario, hubs: list[str], plan: dict[str, Any],
                    b: BuiltModel | None = None, threads: int | None = None,
                    vehicles: bool = False, vehicle_time_s: float = 5.0,
                    deadline: float | None = None) -> dict[str, Any]:
    """`marginal_values` of `hubs`, planned together (one hub, or a hub group of the
    planner), on `plan`'s trips: in `b`, their joint model as a stage built it (its trips
    are fixed to the plan's and freed again; its other fixings must be undone first), or
    in a model built here. Why a stage's model: building it is most of the time (0.3-0.5 s
    a county-week hub against 0.1-0.2 s for the LP), and computed after the plan, at the
    end of the planner's time limit, the county week's 20 hubs all ended "not computed"."""
    return marginals_and_completion(s, hubs, plan, b, threads, vehicles, vehicle_time_s,
                                    deadline)[0]


def marginals_and_completion(
    s: Scenario, hubs: list[str], plan: dict[str, Any], b: BuiltModel | None = None,
    threads: int | None = None, vehicles: bool = False, vehicle_time_s: float = 5.0,
    deadline: float | None = None,
) -> tuple[dict[str, Any], float | None, dict[str, Any] | None]:
    """`group_marginals`, with the LP's plan: the least-cost plan on `plan`'s trips (the
    packaging, pools, loads and service days re-optimised) and its cost, or None where the
    LP has fractional values of integers it relaxed (whole parcels) or no optimum. Why: a
    time-limited solve stops with a plan whose continuous decisions are not the best for
    its trips: on the county week at 120 s the 20 hubs' LPs came to 308,500.0 CNY against
    the plan's 309,137.7 (an outside audit), and its marginal values described the LP's
    plan, not the one shown."""
    out: dict[str, Any] = {"pools": [], "cleaning": [], "vehicles": [], "not_computed": []}
    if b is None:
        b = build_model(s, hub_routes(s, hubs), mode="joint", hubs=hubs)
    relaxed = fix_plan_trips(b, plan)
    if relaxed is None:
        out["not_computed"] += [{"hub_id": h, "why": "the plan's trips are not the model's "
                                 "trip types"} for h in hubs]
        return out, None, None
    completion = None
    try:
        lp = _lp_duals(b, threads)
        if lp is not None and all(
                v.value is None or abs(v.value - round(v.value)) <= 1e-6 for v, _d in relaxed):
            from optimizer.plan import extract_plan

            completion = extract_plan(b, s)
    finally:
        unfix_trips(b, relaxed)
    if lp is None:
        out["not_computed"] += [{"hub_id": h, "why": "the LP with the plan's trips has no "
                                 "optimum"} for h in hubs]
        return out, None, None
    m = b.model
    for (hub, ct) in m.pool_covers:
        out["pools"].append({"hub_id": hub, "container_type": ct,
                             "delta_cost_cny_per_box": _pool_value(m, lp, hub, ct),
                             "valid_for_boxes": _pool_range(m, lp, hub, ct)})
    for h in hubs:
        keys = [k for k in m.cleaning_capacity if k[0] == h]
        if keys:
            # a row the compiler dropped (no variable left in it) cannot bind: dual 0
            worth = sum(lp.rows.get(m.cleaning_capacity[k], 0.0) for k in keys) + 0.0
            out["cleaning"].append({"hub_id": h, "delta_cost_cny_per_unit_per_day": worth,
                                    "valid_for_units": _cleaning_range(m, lp, keys, worth)})
    if vehicles:
        for h in hubs:
            out["vehicles"] += _vehicle_values(s, h, b, lp.cost, deadline, vehicle_time_s,
                                               threads, plan)
    return out, lp.cost, completion


def marginal_values(
    s: Scenario, plan: dict[str, Any], *, deadline: float | None = None,
    vehicles: bool = False, vehicle_time_s: float = 5.0, threads: int | None = None,
    computed: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The plan's marginal values (the `marginal_values` of its JSON): per hub, the cost
    change of one more box in each pool, and of one more unit of cleaning capacity on every
    day; with `vehicles`, of one more vehicle of each hub-based type (a MILP re-solve of at
    most `vehicle_time_s`). Hubs not reached by `deadline` (time.time()) are listed in
    `not_computed`. Negative: one more saves that much. `computed` holds hubs' values a
    stage worked out already on this plan's trips (`group_marginals` by hub): they are
    used as they are."""
    out: dict[str, Any] = {"pools": [], "cleaning": [], "vehicles": [], "not_computed": []}
    for h in plan.get("hubs", []):
        got = (computed or {}).get(h)
        if got is None:
            if deadline is not None and time.time() > deadline:
                out["not_computed"].append({"hub_id": h, "why": "no time left"})
                continue
            got = group_marginals(s, [h], plan, threads=threads, vehicles=vehicles,
                                  vehicle_time_s=vehicle_time_s, deadline=deadline)
        for key in out:
            out[key] += got.get(key, [])
    return out


def by_hub(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`marginal_values`' lists split by hub (what `marginal_values(computed=...)` takes)."""
    out: dict[str, dict[str, Any]] = {}
    for key, entries in values.items():
        for e in entries:
            out.setdefault(e["hub_id"], {k: [] for k in values})[key].append(e)
    return out


def _pool_value(m: pyo.ConcreteModel, lp: _LpDuals, hub: str, ct: str) -> float:
    """d cost / d P⁰ for hub `hub`'s pool of `ct`. The starting pool P⁰ stands beside the
    expansion E in every row it is in, as P⁰ + E (`model/pools.py`), so one more box at the
    start is one more unit of E that costs nothing: −(what the rows charge for E), however
    the compiler orients each row. Reading one row's dual (`pool_covers`) missed `pool_end`
    in the boundary horizon: a box was worth six times its re-solved value there (-25.16
    against -4.37 CNY). A pool with no expansion column (compiled away) is worth 0."""
    return -lp.charged.get(m.expand[hub, ct], 0.0) + 0.0  # + 0.0: no "-0.00" a box


#: a marginal value this small (CNY a unit) is none: HiGHS's dual tolerance is 1e-7
ZERO_VALUE = 1e-9


def _pool_range(m: pyo.ConcreteModel, lp: _LpDuals, hub: str, ct: str
                ) -> dict[str, float | None] | None:
    """For how many boxes more, and fewer, `_pool_value` holds per box (None: no limit), or
    None where HiGHS gave no ranging. One more box at the start is E shifted by one with its
    bounds, E's cost taken off (`_pool_value`), so the range is E's (`_ranging`): checked
    against LP re-solves with δ more and fewer boxes (`tests/optimizer/test_marginal.py`).
    A box worth nothing is worth nothing for any number more: the LP's cost as a function
    of the starting pool is convex and never rises with more boxes, so once its slope is 0
    it stays 0 (a degenerate LP's ranging said 0.02 more boxes on the county week)."""
    var = m.expand[hub, ct]
    rg = lp.ranging
    got = None if rg is None else rg.col(var)
    if rg is None or got is None:
        return None
    value = _pool_value(m, lp, hub, ct)
    j = rg.col_index[var]
    lo, ub, cost = rg.col_lower[j], rg.col_upper[j], rg.col_cost[j]

    def shift(d: float) -> None:
        rg.highs.changeColBounds(j, lo + d, ub + d)

    fewer = _confirm(lp, rg, shift, got[0], -1.0, value, cost)
    more = _confirm(lp, rg, shift, got[1], 1.0, value, cost)
    if abs(value) <= ZERO_VALUE:
        more = None
    return {"fewer": fewer, "more": more}


def _cleaning_range(m: pyo.ConcreteModel, lp: _LpDuals, keys: list[Any], worth: float
                    ) -> dict[str, float | None] | None:
    """For how many units a day more, and fewer, on every day at once the cleaning value
    `worth` holds at least (None: no limit), or None without ranging. HiGHS ranges one row
    at a time; by the 100 % rule (Bradley, Hax & Magnanti 1977, ch. 3) changing all days'
    rows by δ keeps the basis while Σ_d δ / r_d ≤ 1, r_d each row's own range in that
    direction, so δ = 1 / Σ_d (1 / r_d) is safe; the exact range may be wider."""
    rg = lp.ranging
    if rg is None:
        return None
    more, fewer, rows = [], [], []
    for k in keys:
        con = m.cleaning_capacity[k]
        got = rg.row(con)
        if got is None:
            continue  # compiled away: it never binds
        i = rg.row_index[con]
        dn, up = got if rg.row_upper[i] else got[::-1]  # a ≥ row is −returned ≥ −capacity
        more.append(up)
        fewer.append(dn)
        rows.append(i)

    def safe(ranges: list[float | None]) -> float | None:
        inv = sum(1.0 / r for r in ranges if r is not None and r > 0)
        if any(r is not None and r <= 0 for r in ranges):
            return 0.0
        return None if inv == 0 else 1.0 / inv

    def shift(d: float) -> None:
        # more capacity: a ≤ row's upper bound up, a ≥ row's (−capacity) lower bound down
        for i in rows:
            lo, up = rg.row_lower_bound[i], rg.row_upper_bound[i]
            rg.highs.changeRowBounds(i, lo if rg.row_upper[i] else lo - d,
                                     up + d if rg.row_upper[i] else up)

    got_more, got_fewer = safe(more), safe(fewer)
    if rows:
        got_more = _confirm(lp, rg, shift, got_more, 1.0, worth)
        got_fewer = _confirm(lp, rg, shift, got_fewer, -1.0, worth)
    # worth nothing now, more capacity is worth nothing however much (convex, never rising)
    return {"fewer": got_fewer, "more": None if abs(worth) <= ZERO_VALUE else got_more}


def _vehicle_values(s: Scenario, h: str, lp: BuiltModel, lp_cost: float,
                    deadline: float | None, limit_s: float, threads: int | None,
                    plan: dict[str, Any]) -> list[dict[str, Any]]:
    start = values_of(lp.model)
    found: list[dict[str, Any]] = []
    for vt in s.vehicle_types:
        if vt.base != "hub" or vt.count is None and h not in vt.count_by_hub:
            continue
        if deadline is not None and time.time() + limit_s > deadline:
            found.append({"hub_id": h, "vehicle_type": vt.vehicle_type, "delta_cost_cny": None,
                          "status": "not computed: no time left"})
            continue
        more = _one_more_vehicle(s, vt.vehicle_type, h)
        b = build_model(more, hub_routes(more, [h]), mode="joint", hubs=[h])
        _leave_county_fleet_to_others(b, s, h, plan)
        set_values(b.model, start)
        r = run_highs(b.model, time_limit_s=limit_s, threads=threads, warm_start=True,
                      explain_infeasible=False)
        delta = None if r.objective is None else r.objective - lp_cost
        if delta is not None and abs(delta) <= 1e-9 * max(1.0, abs(lp_cost)):
            delta = 0.0  # no "-0.00": the re-solve found the same cost
        found.append({"hub_id": h, "vehicle_type": vt.vehicle_type,
                      "delta_cost_cny": delta,
                      "status": r.status, "gap": r.gap})
    return found


def _leave_county_fleet_to_others(b: BuiltModel, s: Scenario, h: str,
                                  plan: dict[str, Any]) -> None:
    """Cap hub `h`'s trunk trips in `b` (a model of `h` alone) at what the county's vehicles
    have left each day once the other hubs' trunk legs in `plan` are run. Without it the
    re-solve gave `h` the whole county fleet: where that fleet binds, one more van at a hub
    was credited with what one more county truck saves (an outside audit: -0.76 CNY for a
    van that, re-solved on the county, changes nothing)."""
    m = b.model
    if not hasattr(m, "fleet_county"):
        return
    types = {vt.vehicle_type: vt for vt in s.vehicle_types}
    used: dict[tuple[str, int], float] = {}
    for trip in plan.get("trips", []):
        if trip["kind"] == "trunk" and trip["hub_id"] != h:
            vt = types[trip["vehicle_type"]]
            m_t = trips_per_shift(vt, float(trip["minutes"]))
            key = (vt.vehicle_type, int(trip["day"]))
            used[key] = used.get(key, 0.0) + 1.0 / max(m_t, 1)
    for (v, d) in m.fleet_county:
        con = m.fleet_county[v, d]
        left = float(types[v].count or 0) - used.get((v, d), 0.0)
        con.set_value((None, con.body, max(0.0, left)))


def _one_more_vehicle(s: Scenario, vehicle_type: str, hub: str) -> Scenario:
    """`s` with one more vehicle of `vehicle_type` at `hub` (the others' counts as they were)."""
    types = []
    for vt in s.vehicle_types:
        if vt.vehicle_type == vehicle_type:
            vt = vt.model_copy(update={"count_by_hub": {
                **vt.count_by_hub, hub: s.hub_vehicle_count(vt, hub) + 1}})
        types.append(vt)
    return s.model_copy(update={"vehicle_types": types})
