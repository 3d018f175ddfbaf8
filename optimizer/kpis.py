"""KPIs recomputed from a plan (not read off the model), so the same function scores the
joint plan and both baselines, and a model bug shows up as a KPI/objective mismatch."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from optimizer.scenario import Scenario
from optimizer.trips import vehicle_co2e_per_km


def compute_kpis(plan: dict[str, Any], scenario: Scenario) -> dict[str, Any]:
    vts = {v.vehicle_type: v for v in scenario.vehicle_types}
    su = {o.option_id: o for o in scenario.packaging.single_use}
    ru = {r.container_type: r for r in scenario.packaging.reusable}
    carbon = scenario.prices.carbon_cny_per_kg_co2e
    disposal = scenario.prices.disposal_cny_per_kg
    weeks = scenario.horizon_days / 7.0 / scenario.prices.pool_amortisation_weeks

    fixed = per_km = km = co2_transport = 0.0
    trips_by_kind: dict[str, int] = defaultdict(int)
    cap_out = used_out = cap_back = used_back = 0.0
    hub_litres: dict[str, float] | None = None  # worked out at the first trunk leg's need
    for t in plan["trips"]:
        vt = vts[t["vehicle_type"]]
        fixed += vt.fixed_cost_cny
        per_km += vt.cost_per_km_cny * t["km"]
        km += t["km"]
        co2_transport += vehicle_co2e_per_km(vt) * t["km"]
        trips_by_kind[t["kind"]] += 1
        total_cap = sum(vt.compartments_litres.values())
        cap_out += total_cap
        cap_back += total_cap
        used_out += sum(t["loads"]["down_litres"].values())
        back = sum(t["loads"]["up_litres"].values())
        back += sum(ru[ct].nested_litres * n for ct, n in t["loads"]["empties"].items())
        grams_litres = 0.0
        for i, sl in t.get("stop_loads", {}).items():
            g = sl.get("recyclables_grams", 0.0)
            if g:
                grams_litres += g * _litres_per_gram(scenario, i)
        if not t.get("stop_loads") and t["loads"].get("recyclables_grams"):
            # a trunk leg's recyclables, at the litres per gram of its hub's bulkiest, as
            # its return row counts them (`trunk_cap_back`); they were left out
            if hub_litres is None:
                hub_litres = _hub_litres_per_gram(scenario)
            grams_litres += t["loads"]["recyclables_grams"] * hub_litres.get(t["hub_id"], 0.0)
        back += grams_litres
        used_back += back

    su_cost = disposal_cost = su_grams = co2_pack = 0.0
    reusable_uses = 0.0
    for p in plan["packaging"]:
        n = p["parcels"]
        if p["option"] in su:
            o = su[p["option"]]
            unit_cny, grams, co2_kg = o.cost_cny, o.waste_grams, o.co2e_kg
        else:  # what goes with each use of a reusable container (ice packs)
            r = ru[p["option"]]
            unit_cny, grams = r.per_use_cost_cny, r.per_use_waste_grams
            co2_kg = r.per_use_co2e_kg
            reusable_uses += n
        su_cost += unit_cny * n
        disposal_cost += disposal * grams / 1000.0 * n
        su_grams += grams * n
        co2_pack += co2_kg * n

    cleaning = capital = co2_clean = co2_containers = bought = 0.0
    added: dict[str, float] = defaultdict(float)
    for c in plan["containers"]:
        r = ru[c["container_type"]]
        added[c["container_type"]] += c["expansion"]
        capital += r.price_cny * c["expansion"] * weeks
        co2_containers += r.production_co2e_kg * c["expansion"] * weeks
        for d in c["days"]:
            cleaning += r.cleaning_cny * d["returned_to_pool"]
            co2_clean += r.cleaning_co2e_kg * d["returned_to_pool"]
            capital += r.price_cny * d["bought"]
            co2_containers += r.production_co2e_kg * d["bought"]
            bought += d["bought"]

    co2 = {
        "transport": co2_transport,
        "single_use_packaging": co2_pack,
        "container_production": co2_containers,
        "cleaning": co2_clean,
    }
    co2_total = sum(co2.values())
    cost = {
        "transport_fixed": fixed,
        "transport_km": per_km,
        "single_use_packaging": su_cost,
        "disposal": disposal_cost,
        "cleaning": cleaning,
        "container_capital": capital,
        "carbon": carbon * co2_total,
    }
    recyc = sum(r["grams"] for r in plan["recyclables"])
    return {
        "cost_cny": {**cost, "total": sum(cost.values())},
        "km": km,
        "trips": sum(trips_by_kind.values()),
        "trips_by_kind": dict(trips_by_kind),
        "vehicle_utilisation": {
            "outbound": used_out / cap_out if cap_out else 0.0,
            "return": used_back / cap_back if cap_back else 0.0,
        },
        "single_use_grams": su_grams,
        "reusable_uses": reusable_uses,
        "containers_bought": bought,
        # the containers the plan adds to the pools before the horizon (their capital is
        # amortised); `containers_bought` counts only those bought during it
        "containers_added_to_pools": {ct: n for ct, n in sorted(added.items()) if n},
        "co2e_kg": {**co2, "total": co2_total},
        "recyclables_collected_grams": recyc,
    }


def _hub_litres_per_gram(scenario: Scenario) -> dict[str, float]:
    """Per hub, the litres per gram of its bulkiest outstanding waste."""
    hub_of = {v.village_id: v.hub_id for v in scenario.villages}
    out: dict[str, float] = {}
    for w in scenario.outstanding_waste:
        hub = hub_of.get(w.village_id)
        if hub is not None:
            out[hub] = max(out.get(hub, 0.0), w.litres_per_kg / 1000.0)
    return out


def _litres_per_gram(scenario: Scenario, village_id: str) -> float:
    for w in scenario.outstanding_waste:
        if w.village_id == village_id:
            return w.litres_per_kg / 1000.0
    return 0.0


def reductions(joint: dict[str, Any], other: dict[str, Any]) -> dict[str, float | None]:
    """Relative reduction of the joint plan against a baseline (positive = joint better);
    None where the baseline's figure is 0 and the joint plan's is not (no ratio says "the
    joint plan uses 8.7 kg of single-use packaging where the baseline used none": it read
    0 %, "no difference")."""

    def rel(a: float, b: float) -> float | None:
        if b:
            return (b - a) / b
        return 0.0 if abs(a) <= 1e-9 else None

    return {
        "cost": rel(joint["cost_cny"]["total"], other["cost_cny"]["total"]),
        "km": rel(joint["km"], other["km"]),
        "co2e": rel(joint["co2e_kg"]["total"], other["co2e_kg"]["total"]),
        "single_use_grams": rel(joint["single_use_grams"], other["single_use_grams"]),
    }
