"""The joint MILP: trips, loads by temperature class, packaging choice, container pools and
backhaul, built in Pyomo from a scenario and its candidate trips.

The maths (sets, variables, constraints, objective) is written out in docs/optimizer.md; the
constraint names here are the names used there. This module only builds: solving is
optimizer.solver, turning values into a plan is optimizer.plan.

Modes share one builder so that the baselines are computed by the same code as the joint
plan (an unfair baseline is the easiest way to flatter a model):
- ``joint``: everything decided together;
- ``single_use``: reusable containers switched off (stage 1 of the sequential baseline);
- ``uncoordinated``: one trip per temperature class, recyclables on dedicated trips,
  single-use packaging, presale orders served on their first day.
Stage 2 of the sequential baseline is ``joint`` with the trip counts fixed (``fixed_trips``).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field

import pyomo.environ as pyo

from optimizer.cuts import capacity_cover_rows
from optimizer.routes import DistanceOracle, Route
from optimizer.scenario import Scenario, VehicleType
from optimizer.trips import (
    ALL,
    WASTE,
    Mode,
    TripType,
    compatible_compartments,
    service_days,
    vehicle_co2e_per_km,
)


@dataclass
class BuiltModel:
    """The Pyomo model plus the index lists needed to read a plan back out of it."""

    model: pyo.ConcreteModel
    mode: Mode
    trips: list[TripType]
    trip_km: list[float]
    trunk_km: dict[str, float]
    down_keys: list[tuple[str, int, str]]
    pack_keys: list[tuple[str, int, str, str]]
    flex_groups: dict[int, list[int]]
    fixed_service: dict[int, int]
    hubs: list[str]
    ctypes: list[str]
    pool_start: dict[tuple[str, str], float]
    has_trunk: bool
    build_s: float = 0.0
    unservable: list[tuple[str, int, str, str]] = field(default_factory=list)


def build_model(
    scenario: Scenario,
    routes: dict[str, list[Route]],
    *,
    mode: Mode = "joint",
    hubs: list[str] | None = None,
    fixed_trips: dict[TripType, int] | None = None,
    capacity_covers: bool = True,
) -> BuiltModel:
    """Build the MILP for `hubs` (default all). See docs/optimizer.md for the formulation.

    `capacity_covers` adds the rounded capacity covers of optimizer.cuts: valid rows that
    only tighten the relaxation (off only to check that they change no optimum)."""
    t0 = time.perf_counter()
    s = scenario
    D = s.horizon_days
    cyclic = s.horizon_end == "cyclic"
    cls = s.class_by_id()
    vts = {v.vehicle_type: v for v in s.vehicle_types}
    hub_ids = hubs if hubs is not None else [h.hub_id for h in s.hubs]
    hub_set = set(hub_ids)
    village_hub = {v.village_id: v.hub_id for v in s.villages if v.hub_id in hub_set}
    oracle = DistanceOracle(s)
    m = pyo.ConcreteModel(name=f"packloop_{mode}")

    # ---- demand groups and service ----------------------------------------------------
    flex_groups: dict[int, list[int]] = {}
    fixed_service: dict[int, int] = {}
    for gi, g in enumerate(s.demand):
        if g.village_id not in village_hub or g.parcels <= 0 and not g.volume_litres:
            continue
        days = service_days(s, gi, mode)
        if len(days) == 1:
            fixed_service[gi] = days[0]
        else:
            flex_groups[gi] = days
    serve_keys = [(gi, d) for gi, days in flex_groups.items() for d in days]
    m.serve = pyo.Var(serve_keys, bounds=(0, 1))

    # affine expressions of parcels (down) and litres (up) per (village, day, class)
    down_terms: dict[tuple[str, int, str], list] = defaultdict(list)
    down_const: dict[tuple[str, int, str], float] = defaultdict(float)
    up_terms: dict[tuple[str, int, str], list] = defaultdict(list)
    up_const: dict[tuple[str, int, str], float] = defaultdict(float)
    for gi, d in fixed_service.items():
        g = s.demand[gi]
        key = (g.village_id, d, g.class_id)
        if g.direction == "down":
            down_const[key] += g.parcels
        else:
            up_const[key] += s.down_volume_litres(g)
    for gi, d in serve_keys:
        g = s.demand[gi]
        key = (g.village_id, d, g.class_id)
        if g.direction == "down":
            down_terms[key].append((g.parcels, m.serve[gi, d]))
        else:
            up_terms[key].append((s.down_volume_litres(g), m.serve[gi, d]))
    down_keys = sorted(set(down_terms) | {k for k, v in down_const.items() if v > 0})
    up_keys = sorted(set(up_terms) | {k for k, v in up_const.items() if v > 0})

    def parcels_expr(key):
        return down_const.get(key, 0.0) + sum(c * v for c, v in down_terms.get(key, ()))

    def up_litres_expr(key):
        return up_const.get(key, 0.0) + sum(c * v for c, v in up_terms.get(key, ()))

    m.serve_all = pyo.Constraint(
        list(flex_groups), rule=lambda m, gi: sum(m.serve[gi, d] for d in flex_groups[gi]) == 1
    )

    # ---- packaging ------------------------------------------------------------------
    reusable = [] if mode != "joint" else list(s.packaging.reusable)
    ru = {r.container_type: r for r in reusable}
    su = {o.option_id: o for o in s.packaging.single_use}
    options_for: dict[str, list[str]] = {}
    for c in cls:
        options_for[c] = [o.option_id for o in s.packaging.single_use if c in o.class_ids] + [
            r.container_type for r in reusable if c in r.class_ids
        ]
    passive_opt = {o.option_id for o in s.packaging.single_use if o.passive} | {
        r.container_type for r in reusable if r.passive
    }
    pack_keys = [(i, d, c, o) for (i, d, c) in down_keys for o in options_for[c]]
    m.pack = pyo.Var(pack_keys, domain=pyo.NonNegativeIntegers if s.packaging.whole_parcels
                     else pyo.NonNegativeReals)
    pack_by_idc: dict[tuple[str, int, str], list[str]] = defaultdict(list)
    for i, d, c, o in pack_keys:
        pack_by_idc[(i, d, c)].append(o)
    m.pack_all = pyo.Constraint(
        down_keys,
        rule=lambda m, i, d, c: sum(m.pack[i, d, c, o] for o in pack_by_idc[(i, d, c)])
        == parcels_expr((i, d, c)),
    )

    # ---- trip types -------------------------------------------------------------------
    down_by_id: dict[tuple[str, int], list[str]] = defaultdict(list)
    for i, d, c in down_keys:
        down_by_id[(i, d)].append(c)
    up_by_id: dict[tuple[str, int], list[str]] = defaultdict(list)
    for i, d, c in up_keys:
        up_by_id[(i, d)].append(c)
    waste = {w.village_id: w for w in s.outstanding_waste if w.village_id in village_hub
             and w.grams > 0}
    # villages where empties of a container type can appear
    empties_at: dict[str, list[str]] = defaultdict(list)
    for ct, r in ru.items():
        vs = sorted({i for (i, _d, c) in down_keys if c in r.class_ids})
        for i in vs:
            empties_at[i].append(ct)
    active_days: dict[str, set[int]] = defaultdict(set)
    for i, d in list(down_by_id) + list(up_by_id):
        active_days[i].add(d)
    for i in list(waste) + list(empties_at):
        active_days[i].update(range(D))

    purposes = [ALL] if mode != "uncoordinated" else [*cls.keys(), WASTE]

    def carries(purpose: str, i: str, d: int) -> bool:
        if purpose == ALL:
            return True
        if purpose == WASTE:
            return i in waste
        return purpose in down_by_id.get((i, d), ()) or purpose in up_by_id.get((i, d), ())

    trips: list[TripType] = []
    for h in hub_ids:
        for route in routes.get(h, []):
            for vt in s.vehicle_types:
                if vt.base != "hub" or route.km > vt.max_route_km + 1e-9:
                    continue
                if len(route.stops) > vt.max_stops or s.hub_vehicle_count(vt, h) <= 0:
                    continue
                for d in range(D):
                    if not any(d in active_days[i] for i in route.stops):
                        continue
                    for p in purposes:
                        if any(carries(p, i, d) for i in route.stops):
                            trips.append(TripType(h, route, vt.vehicle_type, d, p))
    county_vts = [vt for vt in s.vehicle_types if vt.base == "county"]
    has_trunk = bool(county_vts)
    trunk_km = {h: oracle.km(s.depot.id, h) + oracle.km(h, s.depot.id) for h in hub_ids}
    hub_days_active: dict[str, set[int]] = defaultdict(set)
    for i, ds in active_days.items():
        for d in ds:
            if (i, d) in down_by_id or (i, d) in up_by_id or i in waste:
                hub_days_active[village_hub[i]].add(d)
    if has_trunk:
        for h in hub_ids:
            for vt in county_vts:
                if trunk_km[h] > vt.max_route_km + 1e-9:
                    continue
                for d in sorted(hub_days_active[h]):
                    for p in purposes:
                        trips.append(TripType(h, None, vt.vehicle_type, d, p))
    trip_km = [t.km if t.route is not None else trunk_km[t.hub_id] for t in trips]
    T = range(len(trips))

    # Upper bounds on trip counts that no optimal plan exceeds: if y trips of one type could
    # carry everything their villages may need that day on their own, any further trip of any
    # type through them is unnecessary (every trip has a positive cost) — see docs.
    down_max: dict[tuple[str, int, str], float] = defaultdict(float)
    up_max: dict[tuple[str, int, str], float] = defaultdict(float)
    for gi in list(fixed_service) + list(flex_groups):
        g = s.demand[gi]
        for d in ([fixed_service[gi]] if gi in fixed_service else flex_groups[gi]):
            if g.direction == "down":
                lpp = cls[g.class_id].litres_per_parcel
                down_max[(g.village_id, d, g.class_id)] += g.parcels * lpp
            else:
                up_max[(g.village_id, d, g.class_id)] += s.down_volume_litres(g)
    empties_max: dict[str, float] = defaultdict(float)
    for (i, _d, c), x in down_max.items():
        nested = max((r.nested_litres for r in ru.values() if c in r.class_ids), default=0.0)
        empties_max[i] += x / cls[c].litres_per_parcel * nested
    waste_max = {i: w.grams * w.litres_per_kg / 1000.0 for i, w in waste.items()}

    def needed_trips(vt: VehicleType, villages, d: int, trunk: bool) -> float:
        out_by_k: dict[str | tuple[str, str], float] = defaultdict(float)
        back_total = 0.0
        for i in villages:
            for c in cls:
                x = down_max.get((i, d, c), 0.0)
                if x:
                    if c not in vt.compartments_litres:
                        return math.inf
                    out_by_k[c] += x
                u = up_max.get((i, d, c), 0.0)
                if u:
                    if c not in vt.compartments_litres:
                        return math.inf
                    out_by_k[("up", c)] += u
                    back_total += u
            back_total += empties_max.get(i, 0.0) + waste_max.get(i, 0.0)
            if trunk and i in waste:  # trunk legs count the hub's bulkiest waste per gram
                back_total += waste[i].grams * max(w.litres_per_kg for w in waste.values()) / 1e3
        n = math.ceil(back_total / sum(vt.compartments_litres.values()) - 1e-9)
        for k, x in out_by_k.items():
            cap = vt.compartments_litres[k[1] if isinstance(k, tuple) else k]
            n = max(n, math.ceil(x / cap - 1e-9))
        return max(n, 1)

    def y_bounds(m, t):
        tt = trips[t]
        vt = vts[tt.vehicle_type]
        n = s.hub_vehicle_count(vt, tt.hub_id) if vt.base == "hub" else (
            vt.count if vt.count is not None else 10**6)
        ub = n * vt.max_trips_per_day
        villages = tt.route.stops if tt.route is not None else [
            i for i in village_hub if village_hub[i] == tt.hub_id]
        if tt.purpose == ALL:
            ub = min(ub, needed_trips(vt, villages, tt.day, tt.route is None))
        return (0, ub)

    m.trips = pyo.Var(T, domain=pyo.NonNegativeIntegers, bounds=y_bounds)
    if fixed_trips is not None:
        for t in T:
            m.trips[t].fix(fixed_trips.get(trips[t], 0))

    # ---- loads on milk runs -----------------------------------------------------------
    ld_keys, lu_keys, pick_keys, col_keys = [], [], [], []
    for t in T:
        tt = trips[t]
        if tt.route is None:
            continue
        vt = vts[tt.vehicle_type]
        for i in tt.route.stops:
            for c in down_by_id.get((i, tt.day), ()):
                if tt.purpose not in (ALL, c):
                    continue
                for k, _passive in compatible_compartments(s, vt, c):
                    ld_keys.append((t, i, c, k))
            for c in up_by_id.get((i, tt.day), ()):
                if tt.purpose not in (ALL, c) or c not in vt.compartments_litres:
                    continue
                lu_keys.append((t, i, c))
            if tt.purpose == ALL:
                for ct in empties_at.get(i, ()):
                    pick_keys.append((t, i, ct))
            if i in waste and tt.purpose in (ALL, WASTE):
                col_keys.append((t, i))
    m.load_down = pyo.Var(ld_keys, domain=pyo.NonNegativeReals)
    m.load_up = pyo.Var(lu_keys, domain=pyo.NonNegativeReals)
    m.pick = pyo.Var(pick_keys, domain=pyo.NonNegativeReals)
    m.collect = pyo.Var(col_keys, domain=pyo.NonNegativeReals)

    ld_by_idc = defaultdict(list)
    ld_passive_by_idc = defaultdict(list)
    ld_by_tk = defaultdict(list)
    for ld_key in ld_keys:
        t, i, c, k = ld_key
        ld_by_idc[(i, trips[t].day, c)].append(ld_key)
        if k != c:
            ld_passive_by_idc[(i, trips[t].day, c)].append(ld_key)
        ld_by_tk[(t, k)].append(ld_key)
    lu_by_idc = defaultdict(list)
    lu_by_tk = defaultdict(list)
    lu_by_t = defaultdict(list)
    for lu_key in lu_keys:
        t, i, c = lu_key
        lu_by_idc[(i, trips[t].day, c)].append(lu_key)
        lu_by_tk[(t, c)].append(lu_key)
        lu_by_t[t].append(lu_key)
    pick_by_t = defaultdict(list)
    pick_by_ict_d = defaultdict(list)
    for pick_key in pick_keys:
        t, i, ct = pick_key
        pick_by_t[t].append(pick_key)
        pick_by_ict_d[(i, ct, trips[t].day)].append(pick_key)
    col_by_t = defaultdict(list)
    col_by_i = defaultdict(list)
    col_by_hd = defaultdict(list)
    for col_key in col_keys:
        t, i = col_key
        col_by_t[t].append(col_key)
        col_by_i[i].append(col_key)
        col_by_hd[(trips[t].hub_id, trips[t].day)].append(col_key)

    unservable: list[tuple[str, int, str, str]] = []

    def deliver(m, i, d, c):
        no_passive = not any(o in passive_opt for o in pack_by_idc[(i, d, c)])
        if no_passive and all(k[3] != c for k in ld_by_idc[(i, d, c)]):
            ld_by_idc[(i, d, c)] = []
        if not ld_by_idc[(i, d, c)]:
            if (i, d, c) not in down_terms:
                unservable.append((i, d, c, "down"))
                return pyo.Constraint.Skip
            return parcels_expr((i, d, c)) == 0
        return sum(m.load_down[k] for k in ld_by_idc[(i, d, c)]) == (
            cls[c].litres_per_parcel * parcels_expr((i, d, c)))

    def ship_up(m, i, d, c):
        if not lu_by_idc[(i, d, c)]:
            if (i, d, c) not in up_terms:
                unservable.append((i, d, c, "up"))
                return pyo.Constraint.Skip
            return up_litres_expr((i, d, c)) == 0
        return sum(m.load_up[k] for k in lu_by_idc[(i, d, c)]) == up_litres_expr((i, d, c))

    m.deliver = pyo.Constraint(down_keys, rule=deliver)
    m.ship_up = pyo.Constraint(up_keys, rule=ship_up)
    passive_keys = [k for k in down_keys if ld_passive_by_idc.get(k)]
    m.passive = pyo.Constraint(
        passive_keys,
        rule=lambda m, i, d, c: sum(m.load_down[k] for k in ld_passive_by_idc[(i, d, c)])
        <= cls[c].litres_per_parcel
        * sum(m.pack[i, d, c, o] for o in pack_by_idc[(i, d, c)] if o in passive_opt),
    )
    milk_cap_keys = sorted(ld_by_tk)
    m.cap_out = pyo.Constraint(
        milk_cap_keys,
        rule=lambda m, t, k: sum(m.load_down[x] for x in ld_by_tk[(t, k)])
        <= vts[trips[t].vehicle_type].compartments_litres[k] * m.trips[t],
    )
    m.cap_back_class = pyo.Constraint(
        sorted(lu_by_tk),
        rule=lambda m, t, k: sum(m.load_up[x] for x in lu_by_tk[(t, k)])
        <= vts[trips[t].vehicle_type].compartments_litres[k] * m.trips[t],
    )
    back_trips = sorted(set(lu_by_t) | set(pick_by_t) | set(col_by_t))
    m.cap_back = pyo.Constraint(
        back_trips,
        rule=lambda m, t: sum(m.load_up[x] for x in lu_by_t[t])
        + sum(ru[x[2]].nested_litres * m.pick[x] for x in pick_by_t[t])
        + sum(waste[x[1]].litres_per_kg / 1000.0 * m.collect[x] for x in col_by_t[t])
        <= sum(vts[trips[t].vehicle_type].compartments_litres.values()) * m.trips[t],
    )
    for i in sorted(waste):
        if not col_by_i[i]:
            unservable.append((i, -1, "recyclables", "up"))
    m.collect_all = pyo.Constraint(
        sorted(i for i in waste if col_by_i[i]),
        rule=lambda m, i: sum(m.collect[k] for k in col_by_i[i]) == waste[i].grams,
    )

    # ---- visit covers (valid inequalities) ---------------------------------------------
    # Demand that must be served on a fixed day needs at least one trip through its village
    # that day able to carry it. Implied by the integer model, not by its LP relaxation, where
    # a trip can run 5 % of a time; adding them closes most of the root gap.
    need_visit: dict[tuple[str, int, str, str], bool] = {}
    for key, x in down_const.items():
        if x > 0:
            need_visit[(key[0], key[1], "down", key[2])] = True
    for key, x in up_const.items():
        if x > 0:
            need_visit[(key[0], key[1], "up", key[2])] = True
    cover_trips: dict[tuple, list[int]] = defaultdict(list)
    ld_trips = defaultdict(set)
    for (t, i, c, _k) in ld_keys:
        ld_trips[(i, trips[t].day, "down", c)].add(t)
    for (t, i, c) in lu_keys:
        ld_trips[(i, trips[t].day, "up", c)].add(t)
    for visit_key in need_visit:
        cover_trips[visit_key] = sorted(ld_trips.get(visit_key, ()))
    m.visit = pyo.Constraint(
        sorted(k for k in cover_trips if cover_trips[k]),
        rule=lambda m, i, d, w, c: sum(m.trips[t] for t in cover_trips[(i, d, w, c)]) >= 1,
    )

    # ---- trunk legs county <-> hub ---------------------------------------------------
    if has_trunk:
        tr_ids = [t for t in T if trips[t].route is None]
        tdown_keys, tup_keys, tcol_keys = [], [], []
        hub_down: dict[tuple[str, int], list[str]] = defaultdict(list)
        for i, d, c in down_keys:
            if c not in hub_down[(village_hub[i], d)]:
                hub_down[(village_hub[i], d)].append(c)
        hub_up: dict[tuple[str, int], list[str]] = defaultdict(list)
        for i, d, c in up_keys:
            if c not in hub_up[(village_hub[i], d)]:
                hub_up[(village_hub[i], d)].append(c)
        for t in tr_ids:
            tt = trips[t]
            vt = vts[tt.vehicle_type]
            for c in hub_down.get((tt.hub_id, tt.day), ()):
                if tt.purpose in (ALL, c):
                    for k, _p in compatible_compartments(s, vt, c):
                        tdown_keys.append((t, c, k))
            for c in hub_up.get((tt.hub_id, tt.day), ()):
                if tt.purpose in (ALL, c) and c in vt.compartments_litres:
                    tup_keys.append((t, c))
            if tt.purpose in (ALL, WASTE) and col_by_hd.get((tt.hub_id, tt.day)):
                tcol_keys.append(t)
        m.trunk_down = pyo.Var(tdown_keys, domain=pyo.NonNegativeReals)
        m.trunk_up = pyo.Var(tup_keys, domain=pyo.NonNegativeReals)
        m.trunk_collect = pyo.Var(tcol_keys, domain=pyo.NonNegativeReals)
        td_by_hdc = defaultdict(list)
        td_pass_by_hdc = defaultdict(list)
        td_by_tk = defaultdict(list)
        for td_key in tdown_keys:
            t, c, k = td_key
            td_by_hdc[(trips[t].hub_id, trips[t].day, c)].append(td_key)
            if k != c:
                td_pass_by_hdc[(trips[t].hub_id, trips[t].day, c)].append(td_key)
            td_by_tk[(t, k)].append(td_key)
        tu_by_hdc = defaultdict(list)
        tu_by_t = defaultdict(list)
        for tu_key in tup_keys:
            t, c = tu_key
            tu_by_hdc[(trips[t].hub_id, trips[t].day, c)].append(tu_key)
            tu_by_t[t].append(tu_key)
        tc_by_hd = defaultdict(list)
        for t in tcol_keys:
            tc_by_hd[(trips[t].hub_id, trips[t].day)].append(t)
        vill_by_hdc: dict[tuple[str, int, str], list] = defaultdict(list)
        for i, d, c in down_keys:
            vill_by_hdc[(village_hub[i], d, c)].append((i, d, c))
        uvill_by_hdc: dict[tuple[str, int, str], list] = defaultdict(list)
        for i, d, c in up_keys:
            uvill_by_hdc[(village_hub[i], d, c)].append((i, d, c))
        def trunk_deliver(m, h, d, c):
            need = cls[c].litres_per_parcel * sum(parcels_expr(x) for x in vill_by_hdc[(h, d, c)])
            if not td_by_hdc[(h, d, c)]:
                if all(x not in down_terms for x in vill_by_hdc[(h, d, c)]):
                    unservable.append((h, d, c, "trunk"))
                    return pyo.Constraint.Skip
                return need == 0
            return sum(m.trunk_down[k] for k in td_by_hdc[(h, d, c)]) == need

        m.trunk_deliver = pyo.Constraint(sorted(vill_by_hdc), rule=trunk_deliver)
        m.trunk_passive = pyo.Constraint(
            sorted(k for k in vill_by_hdc if td_pass_by_hdc.get(k)),
            rule=lambda m, h, d, c: sum(m.trunk_down[k] for k in td_pass_by_hdc[(h, d, c)])
            <= cls[c].litres_per_parcel * sum(
                m.pack[x + (o,)] for x in vill_by_hdc[(h, d, c)] for o in pack_by_idc[x]
                if o in passive_opt),
        )
        m.trunk_ship_up = pyo.Constraint(
            sorted(uvill_by_hdc),
            rule=lambda m, h, d, c: sum(m.trunk_up[k] for k in tu_by_hdc[(h, d, c)])
            == sum(up_litres_expr(x) for x in uvill_by_hdc[(h, d, c)]),
        )
        m.trunk_collect_all = pyo.Constraint(
            sorted(col_by_hd),
            rule=lambda m, h, d: sum(m.trunk_collect[t] for t in tc_by_hd[(h, d)])
            == sum(m.collect[k] for k in col_by_hd[(h, d)]),
        )
        m.trunk_cap_out = pyo.Constraint(
            sorted(td_by_tk),
            rule=lambda m, t, k: sum(m.trunk_down[x] for x in td_by_tk[(t, k)])
            <= vts[trips[t].vehicle_type].compartments_litres[k] * m.trips[t],
        )
        m.trunk_cap_back_class = pyo.Constraint(
            tup_keys,
            rule=lambda m, t, c: m.trunk_up[t, c]
            <= vts[trips[t].vehicle_type].compartments_litres[c] * m.trips[t],
        )
        tback = sorted(set(tu_by_t) | set(tcol_keys))
        litres_per_gram_hub = {}
        for h in hub_ids:
            ws = [w for w in waste.values() if village_hub[w.village_id] == h]
            # conservative: the bulkiest waste of the hub sets the trunk volume per gram
            litres_per_gram_hub[h] = max((w.litres_per_kg for w in ws), default=0.0) / 1000.0
        m.trunk_cap_back = pyo.Constraint(
            tback,
            rule=lambda m, t: sum(m.trunk_up[x] for x in tu_by_t[t])
            + (litres_per_gram_hub[trips[t].hub_id] * m.trunk_collect[t]
               if t in tcol_keys else 0.0)
            <= sum(vts[trips[t].vehicle_type].compartments_litres.values()) * m.trips[t],
        )
    # ---- fleet ----------------------------------------------------------------------
    fleet_hub = defaultdict(list)
    fleet_county = defaultdict(list)
    for t in T:
        tt = trips[t]
        if tt.route is not None:
            fleet_hub[(tt.hub_id, tt.vehicle_type, tt.day)].append(t)
        else:
            fleet_county[(tt.vehicle_type, tt.day)].append(t)
    m.fleet_hub = pyo.Constraint(
        sorted(fleet_hub),
        rule=lambda m, h, v, d: sum(m.trips[t] for t in fleet_hub[(h, v, d)])
        <= s.hub_vehicle_count(vts[v], h) * vts[v].max_trips_per_day,
    )
    county_count = {v: vt.count for v, vt in vts.items() if vt.count is not None}
    county_limited = [k for k in sorted(fleet_county) if k[0] in county_count]
    m.fleet_county = pyo.Constraint(
        county_limited,
        rule=lambda m, v, d: sum(m.trips[t] for t in fleet_county[(v, d)])
        <= county_count[v] * vts[v].max_trips_per_day,
    )

    # ---- container pools -------------------------------------------------------------
    ctypes = sorted(ru)
    hub_ct = [(h, ct) for h in hub_ids for ct in ctypes]
    pool0 = {(p.hub_id, p.container_type): p.count for p in s.container_pools}
    pool_start = {k: pool0.get(k, 0.0) for k in hub_ct}
    issue_terms: dict[tuple[str, str, int], list] = defaultdict(list)
    for i, d, c, o in pack_keys:
        if o in ru:
            issue_terms[(i, o, d)].append(m.pack[i, d, c, o])
    ev_keys = [(i, ct, d) for i, cts in empties_at.items() for ct in cts for d in range(D)]
    m.empties = pyo.Var(ev_keys, domain=pyo.NonNegativeReals)

    def issued(i, ct, d):
        if d < 0:
            if not cyclic:
                return 0.0
            d %= D
        return sum(issue_terms.get((i, ct, d), ()))

    def ev_prev(m, i, ct, d):
        if d > 0:
            return m.empties[i, ct, d - 1]
        return m.empties[i, ct, D - 1] if cyclic else 0.0

    m.empties_balance = pyo.Constraint(
        ev_keys,
        rule=lambda m, i, ct, d: m.empties[i, ct, d]
        == ev_prev(m, i, ct, d) + ru[ct].return_rate * issued(i, ct, d - ru[ct].return_lag_days)
        - sum(m.pick[k] for k in pick_by_ict_d.get((i, ct, d), ())),
    )
    m.expand = pyo.Var(hub_ct, domain=pyo.NonNegativeReals)
    pool_days = [(h, ct, d) for h, ct in hub_ct for d in range(D)]
    m.stock = pyo.Var(pool_days, domain=pyo.NonNegativeReals)
    m.buy = pyo.Var(pool_days, domain=pyo.NonNegativeReals)
    villages_of_hub: dict[str, list[str]] = defaultdict(list)
    for i, h in village_hub.items():
        villages_of_hub[h].append(i)

    def issue_hub(h, ct, d):
        return sum(issued(i, ct, d) for i in villages_of_hub[h] if ct in empties_at.get(i, ()))

    def back_hub(m, h, ct, d):
        keep = 1.0 - 1.0 / ru[ct].cycle_life
        return keep * sum(
            m.pick[k] for i in villages_of_hub[h] for k in pick_by_ict_d.get((i, ct, d), ())
        )

    def stock_prev(m, h, ct, d):
        return m.stock[h, ct, d - 1] if d > 0 else pool_start[(h, ct)] + m.expand[h, ct]

    m.pool_issue = pyo.Constraint(
        pool_days,
        rule=lambda m, h, ct, d: stock_prev(m, h, ct, d) + m.buy[h, ct, d] - issue_hub(h, ct, d)
        >= 0,
    )
    m.pool_balance = pyo.Constraint(
        pool_days,
        rule=lambda m, h, ct, d: m.stock[h, ct, d]
        == stock_prev(m, h, ct, d) + m.buy[h, ct, d] - issue_hub(h, ct, d)
        + back_hub(m, h, ct, d),
    )

    def pool_end(m, h, ct):
        r = ru[ct]
        end = m.stock[h, ct, D - 1]
        if not cyclic:
            keep = 1.0 - 1.0 / r.cycle_life
            in_flight = sum(
                m.empties[i, ct, D - 1] + r.return_rate * sum(
                    issued(i, ct, d) for d in range(max(0, D - r.return_lag_days), D))
                for i in villages_of_hub[h] if ct in empties_at.get(i, ()))
            end = end + keep * in_flight
        return end >= pool_start[(h, ct)] + m.expand[h, ct]

    m.pool_end = pyo.Constraint(hub_ct, rule=pool_end)
    m.cleaning_capacity = pyo.Constraint(
        [(h, d) for h in hub_ids for d in range(D)] if ctypes else [],
        rule=lambda m, h, d: sum(back_hub(m, h, ct, d) for ct in ctypes)
        <= next(x.cleaning_capacity_per_day for x in s.hubs if x.hub_id == h),
    )

    # ---- objective ------------------------------------------------------------------
    carbon = s.prices.carbon_cny_per_kg_co2e
    disposal = s.prices.disposal_cny_per_kg
    weeks = D / 7.0 / s.prices.pool_amortisation_weeks
    trip_cost = []
    for t in T:
        vt = vts[trips[t].vehicle_type]
        km = trip_km[t]
        trip_cost.append(
            vt.fixed_cost_cny + vt.cost_per_km_cny * km + carbon * vehicle_co2e_per_km(vt) * km
        )
    su_unit = {
        o: su[o].cost_cny + disposal * su[o].waste_grams / 1000.0 + carbon * su[o].co2e_kg
        for o in su
    }
    obj = sum(trip_cost[t] * m.trips[t] for t in T)
    obj += sum(su_unit[k[3]] * m.pack[k] for k in pack_keys if k[3] in su)
    for h, ct in hub_ct:
        r = ru[ct]
        clean = r.cleaning_cny + carbon * r.cleaning_co2e_kg
        unit = r.price_cny + carbon * r.production_co2e_kg
        obj += unit * weeks * m.expand[h, ct]
        for d in range(D):
            obj += unit * m.buy[h, ct, d] + clean * back_hub(m, h, ct, d)
    m.cost = pyo.Objective(expr=obj, sense=pyo.minimize)

    built = BuiltModel(
        model=m,
        mode=mode,
        trips=trips,
        trip_km=trip_km,
        trunk_km=trunk_km,
        down_keys=down_keys,
        pack_keys=pack_keys,
        flex_groups=flex_groups,
        fixed_service=fixed_service,
        hubs=hub_ids,
        ctypes=ctypes,
        pool_start=pool_start,
        has_trunk=has_trunk,
        unservable=unservable,
    )
    if capacity_covers:
        rows = capacity_cover_rows(s, trips, mode, hub_ids, has_trunk)
        m.cap_cover = pyo.Constraint(
            list(rows),
            rule=lambda m, *r: sum(c * m.trips[t] for t, c in rows[r][0].items()) >= rows[r][1],
        )
    built.build_s = time.perf_counter() - t0
    return built
