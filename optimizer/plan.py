"""Read a solved model back as a plan: plain JSON-able data that KPIs, the report and the
tests recompute everything from (so they do not have to trust the model's objective)."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pyomo.environ as pyo

from optimizer.model import BuiltModel
from optimizer.scenario import Scenario

EPS = 1e-7


def _val(v) -> float:
    x = pyo.value(v, exception=False)
    return 0.0 if x is None or abs(x) < EPS else float(x)


def extract_plan(b: BuiltModel, scenario: Scenario) -> dict[str, Any]:
    """Trips (one entry per vehicle trip), packaging, container flows, recyclables, service."""
    m = b.model
    D = scenario.horizon_days
    vts = {v.vehicle_type: v for v in scenario.vehicle_types}
    per_trip: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"down": defaultdict(float), "up": defaultdict(float),
                 "comp_down": defaultdict(float), "comp_up": defaultdict(float),
                 "empties": defaultdict(float), "grams": 0.0,
                 "stops": defaultdict(lambda: defaultdict(float))}
    )
    for (t, i, c, k), var in m.load_down.items():
        x = _val(var)
        if x:
            p = per_trip[t]
            p["down"][c] += x
            p["comp_down"][k] += x
            p["stops"][i][f"down_litres.{c}"] += x
            if k != c:
                p["stops"][i][f"passive_in_{k}_litres.{c}"] += x
    for (t, i, c), var in m.load_up.items():
        x = _val(var)
        if x:
            p = per_trip[t]
            p["up"][c] += x
            p["comp_up"][c] += x
            p["stops"][i][f"up_litres.{c}"] += x
    for (t, i, ct), var in m.pick.items():
        x = _val(var)
        if x:
            per_trip[t]["empties"][ct] += x
            per_trip[t]["stops"][i][f"empties.{ct}"] += x
    for (t, i), var in m.collect.items():
        x = _val(var)
        if x:
            per_trip[t]["grams"] += x
            per_trip[t]["stops"][i]["recyclables_grams"] += x
    if b.has_trunk:
        for (t, c, k), var in m.trunk_down.items():
            x = _val(var)
            if x:
                per_trip[t]["down"][c] += x
                per_trip[t]["comp_down"][k] += x
        for (t, c), var in m.trunk_up.items():
            x = _val(var)
            if x:
                per_trip[t]["up"][c] += x
                per_trip[t]["comp_up"][c] += x
        for t, var in m.trunk_collect.items():
            x = _val(var)
            if x:
                per_trip[t]["grams"] += x

    trips = []
    for t, tt in enumerate(b.trips):
        n = int(round(_val(m.trips[t])))
        if n <= 0:
            continue
        tp = per_trip.get(t)
        vt = vts[tt.vehicle_type]
        stops = list(tt.route.stops) if tt.route is not None else [tt.hub_id]
        for _copy in range(n):
            loads = {
                "down_litres": {c: x / n for c, x in sorted(tp["down"].items())} if tp else {},
                "up_litres": {c: x / n for c, x in sorted(tp["up"].items())} if tp else {},
                "empties": {c: x / n for c, x in sorted(tp["empties"].items())} if tp else {},
                "recyclables_grams": (tp["grams"] / n) if tp else 0.0,
            }
            trips.append({
                "day": tt.day,
                "hub_id": tt.hub_id,
                "kind": "milk_run" if tt.route is not None else "trunk",
                "vehicle_type": tt.vehicle_type,
                "purpose": tt.purpose,
                "stops": stops,
                "km": b.trip_km[t],
                "loads": loads,
                "compartments_litres": {
                    k: {"capacity": cap,
                        "down": (tp["comp_down"].get(k, 0.0) / n) if tp else 0.0,
                        "up": (tp["comp_up"].get(k, 0.0) / n) if tp else 0.0}
                    for k, cap in vt.compartments_litres.items()
                },
                "stop_loads": {
                    i: {key: x / n for key, x in sorted(v.items())}
                    for i, v in (tp["stops"].items() if tp else [])
                },
            })
    trips.sort(key=lambda x: (x["day"], x["hub_id"], x["kind"] != "trunk", x["vehicle_type"],
                              x["stops"]))

    packaging = []
    for key in b.pack_keys:
        x = _val(m.pack[key])
        if x:
            i, d, c, o = key
            packaging.append({"village_id": i, "day": d, "class_id": c, "option": o,
                              "parcels": x})

    service = []
    for gi, d in b.fixed_service.items():
        service.append({"demand_index": gi, "day": d, "share": 1.0})
    for gi, days in b.flex_groups.items():
        for d in days:
            x = _val(m.serve[gi, d])
            if x:
                service.append({"demand_index": gi, "day": d, "share": x})
    service.sort(key=lambda r: (r["demand_index"], r["day"]))

    containers = []
    ru = {r.container_type: r for r in scenario.packaging.reusable}
    issued: dict[tuple[str, str, int], float] = defaultdict(float)
    for (i, d, _c, o) in b.pack_keys:
        if o in ru:
            issued[(i, o, d)] += _val(m.pack[i, d, _c, o])
    village_hub = {v.village_id: v.hub_id for v in scenario.villages}
    picked: dict[tuple[str, str, int], float] = defaultdict(float)
    for (t, i, ct), var in m.pick.items():
        picked[(i, ct, b.trips[t].day)] += _val(var)
    for h in b.hubs:
        for ct in b.ctypes:
            keep = 1.0 - 1.0 / ru[ct].cycle_life
            day_rows = []
            for d in range(D):
                iss = sum(x for (i, o, dd), x in issued.items()
                          if o == ct and dd == d and village_hub[i] == h)
                pk = sum(x for (i, o, dd), x in picked.items()
                         if o == ct and dd == d and village_hub[i] == h)
                day_rows.append({
                    "day": d,
                    "issued": iss,
                    "picked_up": pk,
                    "returned_to_pool": keep * pk,
                    "retired": pk - keep * pk,
                    "bought": _val(m.buy[h, ct, d]),
                    "stock_end": _val(m.stock[h, ct, d]),
                })
            empties_end = {
                i: _val(m.empties[i, ct, D - 1]) for (i, c2, d) in m.empties
                if c2 == ct and d == D - 1 and village_hub[i] == h
            }
            containers.append({
                "hub_id": h,
                "container_type": ct,
                "start_pool": b.pool_start[(h, ct)],
                "expansion": _val(m.expand[h, ct]),
                "days": day_rows,
                "empties_at_villages_end": {k: v for k, v in empties_end.items() if v},
            })

    recyclables: dict[tuple[str, int], float] = defaultdict(float)
    for (t, i), var in m.collect.items():
        x = _val(var)
        if x:
            recyclables[(i, b.trips[t].day)] += x
    return {
        "mode": b.mode,
        "horizon_days": D,
        "horizon_end": scenario.horizon_end,
        "hubs": list(b.hubs),
        "trips": trips,
        "packaging": packaging,
        "service": service,
        "containers": containers,
        "recyclables": [{"village_id": i, "day": d, "grams": g}
                        for (i, d), g in sorted(recyclables.items())],
    }


def merge_plans(plans: list[dict[str, Any]]) -> dict[str, Any]:
    """Plans of independent hub sub-problems, side by side."""
    if len(plans) == 1:
        return plans[0]
    out = {k: plans[0][k] for k in ("mode", "horizon_days", "horizon_end")}
    out["hubs"] = [h for p in plans for h in p["hubs"]]
    for key in ("trips", "packaging", "service", "containers", "recyclables"):
        out[key] = [x for p in plans for x in p[key]]
    out["trips"].sort(key=lambda x: (x["day"], x["hub_id"], x["kind"] != "trunk",
                                     x["vehicle_type"], x["stops"]))
    out["service"].sort(key=lambda r: (r["demand_index"], r["day"]))
    return out


def rounding_cost(plan: dict[str, Any], scenario: Scenario) -> dict[str, float]:
    """Extra cost of buying whole containers: the model keeps container counts continuous
    (integer counts made the county model intractable), so purchases and pool expansions are
    rounded up here and the difference reported instead of hidden."""
    ru = {r.container_type: r for r in scenario.packaging.reusable}
    carbon = scenario.prices.carbon_cny_per_kg_co2e
    weeks = scenario.horizon_days / 7.0 / scenario.prices.pool_amortisation_weeks
    extra = 0.0
    for c in plan["containers"]:
        r = ru[c["container_type"]]
        unit = r.price_cny + carbon * r.production_co2e_kg
        e = c["expansion"]
        extra += unit * weeks * (math.ceil(e - 1e-6) - e if e > 1e-6 else 0.0)
        # whole boxes bought as the running total requires: ceil of the cumulative purchases
        # on each day keeps stock at least the model's, and costs ceil(total) in the end
        b = sum(d["bought"] for d in c["days"])
        extra += unit * (math.ceil(b - 1e-6) - b if b > 1e-6 else 0.0)
    return {"extra_cost_cny": extra}

