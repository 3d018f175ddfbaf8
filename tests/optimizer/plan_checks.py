"""Property checks applied to every plan the tests produce.

Written against the plan JSON and the scenario only, with its own arithmetic, so that a
model bug and a KPI bug cannot cancel out.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from optimizer import PlanResult, Scenario

TOL = 1e-5


def _close(a: float, b: float, what: str) -> None:
    assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-4), f"{what}: {a} != {b}"


def check_service(plan: dict, s: Scenario) -> None:
    """Every demand group is served in full, on days inside its window."""
    share = defaultdict(float)
    for row in plan["service"]:
        g = s.demand[row["demand_index"]]
        last = min(g.day + g.flex_days, s.horizon_days - 1)
        assert g.day <= row["day"] <= last, f"demand {row['demand_index']} served off-window"
        share[row["demand_index"]] += row["share"]
    hubs = set(plan["hubs"])
    vh = {v.village_id: v.hub_id for v in s.villages}
    for k, g in enumerate(s.demand):
        if vh[g.village_id] in hubs and g.parcels > 0:
            _close(share[k], 1.0, f"demand {k} served share")


def check_deliveries(plan: dict, s: Scenario) -> None:
    """Litres delivered/collected per village, day and class equal the demand served then."""
    cls = s.class_by_id()
    want_down = defaultdict(float)
    want_up = defaultdict(float)
    for row in plan["service"]:
        g = s.demand[row["demand_index"]]
        key = (g.village_id, row["day"], g.class_id)
        if g.direction == "down":
            want_down[key] += row["share"] * g.parcels * cls[g.class_id].litres_per_parcel
        else:
            vol = g.volume_litres if g.volume_litres is not None else (
                g.parcels * cls[g.class_id].litres_per_parcel)
            want_up[key] += row["share"] * vol
    got_down = defaultdict(float)
    got_up = defaultdict(float)
    for t in plan["trips"]:
        if t["kind"] != "milk_run":
            continue
        for i, sl in t["stop_loads"].items():
            for key, x in sl.items():
                if key.startswith("down_litres."):
                    got_down[(i, t["day"], key.split(".", 1)[1])] += x
                elif key.startswith("up_litres."):
                    got_up[(i, t["day"], key.split(".", 1)[1])] += x
    for key in set(want_down) | set(got_down):
        _close(got_down[key], want_down[key], f"down litres {key}")
    for key in set(want_up) | set(got_up):
        _close(got_up[key], want_up[key], f"up litres {key}")


def check_capacity_and_temperature(plan: dict, s: Scenario) -> None:
    """Compartment and return-leg capacities hold, classes ride only where allowed, and cold
    goods outside a cold compartment are covered by passive packaging."""
    vts = {v.vehicle_type: v for v in s.vehicle_types}
    cls = s.class_by_id()
    ru = {r.container_type: r for r in s.packaging.reusable}
    lpw = {w.village_id: w.litres_per_kg / 1000 for w in s.outstanding_waste}
    passive_needed = defaultdict(float)
    fleet = defaultdict(int)
    for t in plan["trips"]:
        vt = vts[t["vehicle_type"]]
        assert t["km"] <= vt.max_route_km + TOL
        if t["kind"] == "milk_run":
            assert len(t["stops"]) <= vt.max_stops
            fleet[(t["hub_id"], t["vehicle_type"], t["day"])] += 1
        else:
            fleet[("county", t["vehicle_type"], t["day"])] += 1
        for k, c in t["compartments_litres"].items():
            assert c["down"] <= c["capacity"] * (1 + 1e-7) + TOL, f"outbound {k} over capacity"
            assert c["up"] <= c["capacity"] * (1 + 1e-7) + TOL, f"return {k} over capacity"
        back = sum(t["loads"]["up_litres"].values())
        back += sum(ru[ct].nested_litres * n for ct, n in t["loads"]["empties"].items())
        for i, sl in t.get("stop_loads", {}).items():
            back += sl.get("recyclables_grams", 0.0) * lpw.get(i, 0.0)
            for key, x in sl.items():
                if key.startswith("passive_in_"):
                    comp, c = key[len("passive_in_"):].split("_litres.")
                    assert cls[c].refrigerated and not cls[comp].refrigerated
                    assert vt.passive_cold_allowed
                    passive_needed[(i, t["day"], c)] += x
        if t["kind"] == "milk_run":
            assert back <= sum(vt.compartments_litres.values()) * (1 + 1e-7) + TOL
        for c in t["loads"]["down_litres"]:
            assert c in vt.compartments_litres or (cls[c].refrigerated and vt.passive_cold_allowed)
        for c in t["loads"]["up_litres"]:
            assert c in vt.compartments_litres, "farm shipments ride in their own compartment"
    passive_opts = {o.option_id for o in s.packaging.single_use if o.passive} | {
        r.container_type for r in s.packaging.reusable if r.passive}
    passive_packed = defaultdict(float)
    for p in plan["packaging"]:
        if p["option"] in passive_opts:
            passive_packed[(p["village_id"], p["day"], p["class_id"])] += (
                p["parcels"] * cls[p["class_id"]].litres_per_parcel)
    for key, x in passive_needed.items():
        assert x <= passive_packed[key] + 1e-4, f"cold goods without passive packaging {key}"
    for (h, v, _d), n in fleet.items():
        vt = vts[v]
        limit = (vt.count if h == "county" else s.hub_vehicle_count(vt, h))
        if limit is not None:
            assert n <= limit * vt.max_trips_per_day, f"fleet {h} {v} exceeded"


def check_pools(plan: dict, s: Scenario) -> None:
    """Pools never go negative, containers are only issued from stock, and the horizon's end
    condition holds."""
    for c in plan["containers"]:
        stock = c["start_pool"] + c["expansion"]
        for d in c["days"]:
            assert stock + d["bought"] - d["issued"] >= -1e-6, "issued more than in stock"
            stock = stock + d["bought"] - d["issued"] + d["returned_to_pool"]
            _close(stock, d["stock_end"], "pool balance")
            assert d["stock_end"] >= -1e-6
        if s.horizon_end == "cyclic":
            assert stock >= c["start_pool"] + c["expansion"] - 1e-5


def recompute_cost(plan: dict, s: Scenario) -> float:
    """Total cost from the plan with this file's own arithmetic."""
    vts = {v.vehicle_type: v for v in s.vehicle_types}
    su = {o.option_id: o for o in s.packaging.single_use}
    ru = {r.container_type: r for r in s.packaging.reusable}
    carbon = s.prices.carbon_cny_per_kg_co2e
    total = 0.0
    for t in plan["trips"]:
        vt = vts[t["vehicle_type"]]
        f = vt.co2e_per_km_kg * (1 + (vt.reefer_uplift if vt.refrigerated else 0))
        total += vt.fixed_cost_cny + t["km"] * (vt.cost_per_km_cny + carbon * f)
    for p in plan["packaging"]:
        o = su.get(p["option"])
        if o is not None:
            total += p["parcels"] * (o.cost_cny + s.prices.disposal_cny_per_kg * o.waste_grams
                                     / 1000 + carbon * o.co2e_kg)
    for c in plan["containers"]:
        r = ru[c["container_type"]]
        unit = r.price_cny + carbon * r.production_co2e_kg
        total += unit * c["expansion"] * s.horizon_days / 7 / s.prices.pool_amortisation_weeks
        for d in c["days"]:
            total += unit * d["bought"]
            total += (r.cleaning_cny + carbon * r.cleaning_co2e_kg) * d["returned_to_pool"]
    return total


def check_recyclables(plan: dict, s: Scenario) -> None:
    """Every village's outstanding recyclables are collected, in full."""
    hubs = set(plan["hubs"])
    vh = {v.village_id: v.hub_id for v in s.villages}
    got = defaultdict(float)
    for r in plan["recyclables"]:
        got[r["village_id"]] += r["grams"]
    for w in s.outstanding_waste:
        if vh[w.village_id] in hubs:
            _close(got[w.village_id], w.grams, f"recyclables at {w.village_id}")


def check_plan(plan: dict, s: Scenario, kpis: dict | None = None) -> None:
    """Every property above; with `kpis`, that they agree with the plan's own arithmetic."""
    check_service(plan, s)
    check_deliveries(plan, s)
    check_capacity_and_temperature(plan, s)
    check_pools(plan, s)
    check_recyclables(plan, s)
    cost = recompute_cost(plan, s)
    if kpis is not None:
        _close(kpis["cost_cny"]["total"], cost, "KPI total vs recomputed")
        km = sum(t["km"] for t in plan["trips"])
        _close(kpis["km"], km, "KPI km")
        assert kpis["trips"] == len(plan["trips"])


def check_result(res: PlanResult, s: Scenario) -> dict:
    """A solve's result: the joint plan's properties, its objective equal to the cost
    recomputed from the plan, and each baseline's KPIs equal to its objective. Returns the
    JSON document."""
    assert res.plan is not None, f"no plan: {res.status} {res.diagnosis}"
    check_plan(res.plan, s, res.kpis)
    assert recompute_cost(res.plan, s) == pytest.approx(res.objective, rel=1e-6, abs=1e-4)
    d = res.to_json_dict()
    for name in ("sequential", "uncoordinated"):
        b = d["baselines"].get(name)
        if b and b.get("kpis"):
            assert b["kpis"]["cost_cny"]["total"] == pytest.approx(b["objective"], rel=1e-6,
                                                                   abs=1e-4)
    return d
