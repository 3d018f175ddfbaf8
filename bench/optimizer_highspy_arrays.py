"""The joint county model built straight into highspy's array API (no Pyomo), to measure
how much of the Pyomo path's overhead is Pyomo's.

    .venv/bin/python bench/optimizer_highspy_arrays.py [--scale 100] [--time-limit 120]

It mirrors optimizer/model/ in joint mode (same candidate trips, same rows, docs/optimizer.md)
and checks that it is the same model: equal column, row and non-zero counts and equal LP
relaxation optimum against the Pyomo path. It prints build time, hand-over time and HiGHS's run
time for the MILP with the same time limit and gap.

One difference: trip counts are bounded here by fleet x trips per day only, not by the
tighter "trips needed" bounds of optimizer/model/trip_counts.py (they do not bind the LP
relaxation: equal optima at 25 % and 100 % scale).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import highspy
import numpy as np
from optimizer_county import network_at

from optimizer import (
    ALL,
    DistanceOracle,
    Scenario,
    TripType,
    active_villages,
    build_model,
    candidate_routes,
    capacity_cover_rows,
    compatible_compartments,
    compile_model,
    make_highs,
    max_stops,
    scenario_from_network,
    vehicle_co2e_per_km,
)

INF = highspy.kHighsInf


class Arrays:
    """Columns and COO rows collected in plain lists, then one passModel."""

    def __init__(self) -> None:
        self.lb: list[float] = []
        self.ub: list[float] = []
        self.cost: list[float] = []
        self.integer: list[bool] = []
        self.r_lo: list[float] = []
        self.r_hi: list[float] = []
        self.ri: list[int] = []
        self.ci: list[int] = []
        self.v: list[float] = []

    def cols(self, n: int, lb=0.0, ub=INF, integer=False) -> int:
        start = len(self.lb)
        self.lb.extend([lb] * n)
        self.ub.extend([ub] * n)
        self.cost.extend([0.0] * n)
        self.integer.extend([integer] * n)
        return start

    def row(self, terms: dict[int, float] | list[tuple[int, float]], lo: float, hi: float
            ) -> None:
        r = len(self.r_lo)
        items = terms.items() if isinstance(terms, dict) else terms
        for c, a in items:
            if a != 0.0:
                self.ri.append(r)
                self.ci.append(c)
                self.v.append(a)
        self.r_lo.append(lo)
        self.r_hi.append(hi)

    def lp(self) -> highspy.HighsLp:
        n, m = len(self.lb), len(self.r_lo)
        ri = np.asarray(self.ri, dtype=np.int64)
        ci = np.asarray(self.ci, dtype=np.int64)
        v = np.asarray(self.v)
        # merge duplicates (a variable appearing twice in one row)
        key = ci * (m + 1) + ri
        order = np.argsort(key, kind="stable")
        key, ri, ci, v = key[order], ri[order], ci[order], v[order]
        uniq, first = np.unique(key, return_index=True)
        v = np.add.reduceat(v, first)
        ri, ci = ri[first], ci[first]
        keep = v != 0
        ri, ci, v = ri[keep], ci[keep], v[keep]
        start = np.zeros(n + 1, dtype=np.int64)
        np.add.at(start, ci + 1, 1)
        start = np.cumsum(start)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n, m
        lp.col_cost_ = np.asarray(self.cost)
        lp.col_lower_ = np.asarray(self.lb)
        lp.col_upper_ = np.asarray(self.ub)
        lp.row_lower_ = np.asarray(self.r_lo)
        lp.row_upper_ = np.asarray(self.r_hi)
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = start.astype(np.int32)
        lp.a_matrix_.index_ = ri.astype(np.int32)
        lp.a_matrix_.value_ = v
        lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = n, m
        lp.integrality_ = [highspy.HighsVarType.kInteger if x else
                           highspy.HighsVarType.kContinuous for x in self.integer]
        return lp


def build_arrays(s: Scenario, routes) -> Arrays:  # noqa: C901 - mirrors optimizer/model/ family by family
    A = Arrays()
    D = s.horizon_days
    cyclic = s.horizon_end == "cyclic"
    cls = s.class_by_id()
    vts = {v.vehicle_type: v for v in s.vehicle_types}
    hub_ids = [h.hub_id for h in s.hubs]
    vh = {v.village_id: v.hub_id for v in s.villages}
    oracle = DistanceOracle(s)
    # service
    flex, fixed = {}, {}
    for gi, g in enumerate(s.demand):
        if g.parcels <= 0 and not g.volume_litres:
            continue
        days = list(range(g.day, min(g.day + g.flex_days, D - 1) + 1))
        if len(days) == 1:
            fixed[gi] = days[0]
        else:
            flex[gi] = days
    serve = {}
    for gi, days in flex.items():
        base = A.cols(len(days), 0.0, 1.0)
        for k, d in enumerate(days):
            serve[(gi, d)] = base + k
    down_terms, up_terms = defaultdict(list), defaultdict(list)
    down_c, up_c = defaultdict(float), defaultdict(float)
    for gi, d in fixed.items():
        g = s.demand[gi]
        key = (g.village_id, d, g.class_id)
        if g.direction == "down":
            down_c[key] += g.parcels
        else:
            up_c[key] += s.down_volume_litres(g)
    for (gi, d), col in serve.items():
        g = s.demand[gi]
        key = (g.village_id, d, g.class_id)
        if g.direction == "down":
            down_terms[key].append((col, g.parcels))
        else:
            up_terms[key].append((col, s.down_volume_litres(g)))
    down_keys = sorted(set(down_terms) | {k for k, v in down_c.items() if v > 0})
    up_keys = sorted(set(up_terms) | {k for k, v in up_c.items() if v > 0})
    for gi, days in flex.items():
        A.row([(serve[(gi, d)], 1.0) for d in days], 1.0, 1.0)
    # packaging
    ru = {r.container_type: r for r in s.packaging.reusable}
    su = {o.option_id: o for o in s.packaging.single_use}
    opts = {c: [o.option_id for o in s.packaging.single_use if c in o.class_ids]
            + [r.container_type for r in s.packaging.reusable if c in r.class_ids] for c in cls}
    passive = {o.option_id for o in s.packaging.single_use if o.passive} | {
        r.container_type for r in s.packaging.reusable if r.passive}
    pack = {}
    for key in down_keys:
        base = A.cols(len(opts[key[2]]))
        for k, o in enumerate(opts[key[2]]):
            pack[(*key, o)] = base + k
        terms = [(pack[(*key, o)], 1.0) for o in opts[key[2]]]
        terms += [(c, -a) for c, a in down_terms.get(key, ())]
        A.row(terms, down_c.get(key, 0.0), down_c.get(key, 0.0))
    # trips
    down_by_id, up_by_id = defaultdict(list), defaultdict(list)
    for i, d, c in down_keys:
        down_by_id[(i, d)].append(c)
    for i, d, c in up_keys:
        up_by_id[(i, d)].append(c)
    waste = {w.village_id: w for w in s.outstanding_waste if w.grams > 0}
    empties_at = defaultdict(list)
    for ct, r in ru.items():
        for i in sorted({i for (i, _d, c) in down_keys if c in r.class_ids}):
            empties_at[i].append(ct)
    active = defaultdict(set)
    for i, d in list(down_by_id) + list(up_by_id):
        active[i].add(d)
    for i in list(waste) + list(empties_at):
        active[i].update(range(D))
    trips = []  # (hub, route|None, vt, day)
    for h in hub_ids:
        for r in routes.get(h, []):
            for vt in s.vehicle_types:
                if vt.base != "hub" or r.km > vt.max_route_km + 1e-9 or len(
                        r.stops) > vt.max_stops or s.hub_vehicle_count(vt, h) <= 0:
                    continue
                for d in range(D):
                    if any(d in active[i] for i in r.stops):
                        trips.append((h, r, vt, d))
    county = [vt for vt in s.vehicle_types if vt.base == "county"]
    trunk_km = {h: oracle.km(s.depot.id, h) + oracle.km(h, s.depot.id) for h in hub_ids}
    hub_days = defaultdict(set)
    for i, ds in active.items():
        for d in ds:
            if (i, d) in down_by_id or (i, d) in up_by_id or i in waste:
                hub_days[vh[i]].add(d)
    for h in hub_ids:
        for vt in county:
            if trunk_km[h] <= vt.max_route_km + 1e-9:
                for d in sorted(hub_days[h]):
                    trips.append((h, None, vt, d))
    carbon = s.prices.carbon_cny_per_kg_co2e
    y = []
    for h, r, vt, _d in trips:
        n = s.hub_vehicle_count(vt, h) if vt.base == "hub" else (vt.count or 10**6)
        col = A.cols(1, 0.0, n * vt.max_trips_per_day, integer=True)
        km = r.km if r is not None else trunk_km[h]
        A.cost[col] = vt.fixed_cost_cny + vt.cost_per_km_cny * km + carbon * vehicle_co2e_per_km(
            vt) * km
        y.append(col)
    # milk-run loads
    ld_idc, ld_pass, ld_tk = defaultdict(list), defaultdict(list), defaultdict(list)
    lu_idc, lu_tk, lu_t = defaultdict(list), defaultdict(list), defaultdict(list)
    pick_t, pick_icd, col_t, col_i, col_hd = (defaultdict(list) for _ in range(5))
    for t, (h, r, vt, d) in enumerate(trips):
        if r is None:
            continue
        for i in r.stops:
            for c in down_by_id.get((i, d), ()):
                for k, _p in compatible_compartments(s, vt, c):
                    col = A.cols(1)
                    ld_idc[(i, d, c)].append((col, k))
                    if k != c:
                        ld_pass[(i, d, c)].append(col)
                    ld_tk[(t, k)].append(col)
            for c in up_by_id.get((i, d), ()):
                if c in vt.compartments_litres:
                    col = A.cols(1)
                    lu_idc[(i, d, c)].append(col)
                    lu_tk[(t, c)].append(col)
                    lu_t[t].append(col)
            for ct in empties_at.get(i, ()):
                col = A.cols(1)
                pick_t[t].append((col, ct))
                pick_icd[(i, ct, d)].append(col)
            if i in waste:
                col = A.cols(1)
                col_t[t].append((col, i))
                col_i[i].append(col)
                col_hd[(h, d)].append(col)
    for key in down_keys:
        i, d, c = key
        lpp = cls[c].litres_per_parcel
        if not any(o in passive for o in opts[c]) and all(k != c for _, k in ld_idc[key]):
            raise SystemExit(f"unservable {key}")
        terms = [(col, 1.0) for col, _k in ld_idc[key]] + [(col, -lpp * a) for col, a in
                                                           down_terms.get(key, ())]
        A.row(terms, lpp * down_c.get(key, 0.0), lpp * down_c.get(key, 0.0))
    for key in up_keys:
        terms = [(col, 1.0) for col in lu_idc[key]] + [(col, -a) for col, a in
                                                       up_terms.get(key, ())]
        A.row(terms, up_c.get(key, 0.0), up_c.get(key, 0.0))
    for key in down_keys:
        if ld_pass.get(key):
            lpp = cls[key[2]].litres_per_parcel
            terms = [(col, 1.0) for col in ld_pass[key]] + [
                (pack[(*key, o)], -lpp) for o in opts[key[2]] if o in passive]
            A.row(terms, -INF, 0.0)
    for (t, k), cols in sorted(ld_tk.items()):
        A.row([(c, 1.0) for c in cols] + [(y[t], -trips[t][2].compartments_litres[k])], -INF, 0)
    for (t, k), cols in sorted(lu_tk.items()):
        A.row([(c, 1.0) for c in cols] + [(y[t], -trips[t][2].compartments_litres[k])], -INF, 0)
    for t in sorted(set(lu_t) | set(pick_t) | set(col_t)):
        terms = [(c, 1.0) for c in lu_t[t]]
        terms += [(c, ru[ct].nested_litres) for c, ct in pick_t[t]]
        terms += [(c, waste[i].litres_per_kg / 1000) for c, i in col_t[t]]
        terms.append((y[t], -sum(trips[t][2].compartments_litres.values())))
        A.row(terms, -INF, 0.0)
    for i in sorted(waste):
        A.row([(c, 1.0) for c in col_i[i]], waste[i].grams, waste[i].grams)
    # visit covers
    carriers = defaultdict(set)
    for t, (_h, r, vt, d) in enumerate(trips):
        if r is None:
            continue
        for i in r.stops:
            for c in down_by_id.get((i, d), ()):
                carriers[(i, d, "down", c)].add(t)
            for c in up_by_id.get((i, d), ()):
                if c in vt.compartments_litres:
                    carriers[(i, d, "up", c)].add(t)
    need = [(*k, "down") for k, x in down_c.items() if x > 0] + [
        (*k, "up") for k, x in up_c.items() if x > 0]
    for i, d, c, w in sorted(need, key=lambda k: (k[0], k[1], k[3], k[2])):
        ts = carriers.get((i, d, w, c))
        if ts:
            A.row([(y[t], 1.0) for t in sorted(ts)], 1.0, INF)
    # trunk
    if county:
        hub_down, hub_up = defaultdict(list), defaultdict(list)
        for i, d, c in down_keys:
            hub_down[(vh[i], d, c)].append((i, d, c))
        for i, d, c in up_keys:
            hub_up[(vh[i], d, c)].append((i, d, c))
        td, td_pass, td_tk, tu, tu_t, tcol = (defaultdict(list) for _ in range(6))
        for t, (h, r, vt, d) in enumerate(trips):
            if r is not None:
                continue
            for c in sorted({k[2] for k in hub_down if k[0] == h and k[1] == d}):
                for k, _p in compatible_compartments(s, vt, c):
                    col = A.cols(1)
                    td[(h, d, c)].append(col)
                    if k != c:
                        td_pass[(h, d, c)].append(col)
                    td_tk[(t, k)].append(col)
            for c in sorted({k[2] for k in hub_up if k[0] == h and k[1] == d}):
                if c in vt.compartments_litres:
                    col = A.cols(1)
                    tu[(h, d, c)].append(col)
                    tu_t[t].append((col, c))
            if col_hd.get((h, d)):
                tcol[t].append(A.cols(1))
        for key, villages in sorted(hub_down.items()):
            lpp = cls[key[2]].litres_per_parcel
            terms = [(c, 1.0) for c in td[key]]
            const = 0.0
            for x in villages:
                const += lpp * down_c.get(x, 0.0)
                terms += [(col, -lpp * a) for col, a in down_terms.get(x, ())]
            A.row(terms, const, const)
        for key, villages in sorted(hub_down.items()):
            if td_pass.get(key):
                lpp = cls[key[2]].litres_per_parcel
                terms = [(c, 1.0) for c in td_pass[key]]
                terms += [(pack[(*x, o)], -lpp) for x in villages for o in opts[key[2]]
                          if o in passive]
                A.row(terms, -INF, 0.0)
        for key, villages in sorted(hub_up.items()):
            terms = [(c, 1.0) for c in tu[key]]
            const = 0.0
            for x in villages:
                const += up_c.get(x, 0.0)
                terms += [(col, -a) for col, a in up_terms.get(x, ())]
            A.row(terms, const, const)
        tcol_hd = defaultdict(list)
        for t, cols in tcol.items():
            tcol_hd[(trips[t][0], trips[t][3])] += cols
        for key in sorted(col_hd):
            A.row([(c, 1.0) for c in tcol_hd[key]] + [(c, -1.0) for c in col_hd[key]], 0, 0)
        for (t, k), cols in sorted(td_tk.items()):
            A.row([(c, 1.0) for c in cols] + [(y[t], -trips[t][2].compartments_litres[k])],
                  -INF, 0)
        for t, lst in tu_t.items():
            for col, c in lst:
                A.row([(col, 1.0), (y[t], -trips[t][2].compartments_litres[c])], -INF, 0)
        lpg = {}
        for h in hub_ids:
            lpg[h] = max((w.litres_per_kg for w in waste.values() if vh[w.village_id] == h),
                         default=0.0) / 1000
        for t in sorted(set(tu_t) | set(tcol)):
            terms = [(c, 1.0) for c, _ in tu_t.get(t, [])]
            terms += [(c, lpg[trips[t][0]]) for c in tcol.get(t, [])]
            terms.append((y[t], -sum(trips[t][2].compartments_litres.values())))
            A.row(terms, -INF, 0.0)
    # fleet
    fleet_h, fleet_c = defaultdict(list), defaultdict(list)
    for t, (h, r, vt, d) in enumerate(trips):
        (fleet_h[(h, vt.vehicle_type, d)] if r is not None else fleet_c[(vt.vehicle_type, d)]
         ).append(y[t])
    for (h, v, _d), cols in sorted(fleet_h.items()):
        A.row([(c, 1.0) for c in cols], -INF,
              s.hub_vehicle_count(vts[v], h) * vts[v].max_trips_per_day)
    for (v, _d), cols in sorted(fleet_c.items()):
        if vts[v].count is not None:
            A.row([(c, 1.0) for c in cols], -INF, vts[v].count * vts[v].max_trips_per_day)
    # pools
    ctypes = sorted(ru)
    p0 = {(p.hub_id, p.container_type): p.count for p in s.container_pools}
    issue = defaultdict(list)
    for (i, d, _c, o), col in pack.items():
        if o in ru:
            issue[(i, o, d)].append(col)
    ev = {}
    for i, cts in empties_at.items():
        for ct in cts:
            base = A.cols(D)
            for d in range(D):
                ev[(i, ct, d)] = base + d
    for (i, ct, d), col in sorted(ev.items()):
        r = ru[ct]
        terms = defaultdict(float)
        terms[col] += 1.0
        if d > 0 or cyclic:
            terms[ev[(i, ct, (d - 1) % D)]] -= 1.0
        dd = d - r.return_lag_days
        if dd >= 0 or cyclic:
            for c in issue.get((i, ct, dd % D), ()):
                terms[c] -= r.return_rate
        for c in pick_icd.get((i, ct, d), ()):
            terms[c] += 1.0
        A.row(dict(terms), 0.0, 0.0)
    vill = defaultdict(list)
    for i, h in vh.items():
        vill[h].append(i)
    weeks = D / 7 / s.prices.pool_amortisation_weeks
    for h in hub_ids:
        for ct in ctypes:
            r = ru[ct]
            unit = r.price_cny + carbon * r.production_co2e_kg
            clean = r.cleaning_cny + carbon * r.cleaning_co2e_kg
            keep = 1 - 1 / r.cycle_life
            E = A.cols(1)
            A.cost[E] = unit * weeks
            S = A.cols(D)
            B = A.cols(D)
            for d in range(D):
                A.cost[B + d] = unit
                iss = [c for i in vill[h] for c in issue.get((i, ct, d), ())]
                back = [c for i in vill[h] for c in pick_icd.get((i, ct, d), ())]
                for c in back:
                    A.cost[c] += clean * keep
                prev = [(S + d - 1, 1.0)] if d > 0 else [(E, 1.0)]
                const = 0.0 if d > 0 else p0.get((h, ct), 0.0)
                A.row(prev + [(B + d, 1.0)] + [(c, -1.0) for c in iss], -const, INF)
                A.row([(S + d, 1.0)] + [(c, -x) for c, x in prev] + [(B + d, -1.0)]
                      + [(c, 1.0) for c in iss] + [(c, -keep) for c in back], const, const)
            if not cyclic:
                raise SystemExit("bench mirrors the cyclic horizon only")
            A.row([(S + D - 1, 1.0), (E, -1.0)], p0.get((h, ct), 0.0), INF)
    if ctypes:
        for h in hub_ids:
            cap = next(x.cleaning_capacity_per_day for x in s.hubs if x.hub_id == h)
            for d in range(D):
                terms = []
                for ct in ctypes:
                    keep = 1 - 1 / ru[ct].cycle_life
                    terms += [(c, keep) for i in vill[h] for c in pick_icd.get((i, ct, d), ())]
                A.row(terms, -INF, cap)
    # capacity covers (optimizer/cuts.py): the same rows, computed by the same pure-Python
    # function from the trip types (no Pyomo involved)
    types = [TripType(h, r, vt.vehicle_type, d, ALL) for (h, r, vt, d) in trips]
    for coef, rhs in capacity_cover_rows(s, types, "joint", hub_ids, bool(county)).values():
        A.row([(y[t], float(c)) for t, c in coef.items()], float(rhs), INF)
    # single-use packaging cost
    disposal = s.prices.disposal_cny_per_kg
    for (_i, _d, _c, o), col in pack.items():
        if o in su:
            A.cost[col] += (su[o].cost_cny + disposal * su[o].waste_grams / 1000
                            + carbon * su[o].co2e_kg)
    return A


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=100)
    ap.add_argument("--time-limit", type=float, default=120)
    ap.add_argument("--gap", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-milp", action="store_true")
    args = ap.parse_args()
    s = scenario_from_network(network_at(args.scale), horizon_days=7, seed=2026,
                              county_trucks=40 * max(1, args.scale // 100))
    routes = candidate_routes(s, active_villages(s), max_stops(s))
    t0 = time.perf_counter()
    arr = build_arrays(s, routes)
    lp = arr.lp()
    build_s = time.perf_counter() - t0
    # same model? sizes and LP relaxation against the Pyomo path
    b = build_model(s, routes, mode="joint")
    comp = compile_model(b.model)

    def lp_value(model_lp):
        h = make_highs(600, None, args.threads)
        ints = model_lp.integrality_
        model_lp.integrality_ = []
        h.passModel(model_lp)
        h.run()
        model_lp.integrality_ = ints
        return h.getInfo().objective_function_value

    out = {
        "arrays": {"columns": lp.num_col_, "rows": lp.num_row_,
                   "nonzeros": len(lp.a_matrix_.value_), "build_s": round(build_s, 2)},
        "pyomo": {"columns": comp.lp.num_col_, "rows": comp.lp.num_row_,
                  "nonzeros": len(comp.lp.a_matrix_.value_), "build_s": round(b.build_s, 2),
                  "compile_s": round(comp.compile_s, 2)},
    }
    out["arrays"]["lp_relaxation"] = lp_value(lp)
    out["pyomo"]["lp_relaxation"] = lp_value(comp.lp) + comp.offset
    if not args.skip_milp:
        h = make_highs(args.time_limit, args.gap, args.threads)
        t1 = time.perf_counter()
        h.passModel(lp)
        hand = time.perf_counter() - t1
        t2 = time.perf_counter()
        h.run()
        run = time.perf_counter() - t2
        t3 = time.perf_counter()
        sol = np.asarray(h.getSolution().col_value)
        load = time.perf_counter() - t3
        info = h.getInfo()
        out["arrays"].update({
            "handover_s": round(hand, 3), "highs_s": round(run, 2), "load_s": round(load, 3),
            "overhead_s": round(build_s + hand + load, 2),
            "overhead_share_of_highs": round((build_s + hand + load) / run, 3),
            "objective": info.objective_function_value, "bound": info.mip_dual_bound,
            "gap": info.mip_gap, "solution_norm": float(np.abs(sol).sum())})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
