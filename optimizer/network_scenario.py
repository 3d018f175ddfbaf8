"""Build a scenario from the network reference data (streams/data/sample_county.json format)
and live stream state, with every default taken from the factor set.

Used by the job service and the demo (plan from what the streams have seen) and to make the
county-week example. Reads the network JSON directly (plain data), so the optimiser library
does not depend on the streams package.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from optimizer.factors import FactorSet, load_factors, single_use_lines
from optimizer.scenario import Scenario, load_scenario

WEEKDAY_FACTOR = (1.10, 1.00, 0.98, 0.95, 1.02, 0.92, 1.03)


def _network(network: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(network, Mapping):
        return dict(network)
    return json.loads(Path(network).read_text(encoding="utf-8"))


def synthetic_demand(net: Mapping[str, Any], f: FactorSet, horizon_days: int, seed: int
                     ) -> list[dict[str, Any]]:
    """Village x day x class x direction demand groups from the villages' daily rates."""
    rnd = random.Random(seed)
    share_ch = f.value("demand.share_chilled")
    share_fr = f.value("demand.share_frozen")
    presale = f.value("demand.presale_share")
    flex = int(f.value("demand.presale_flex_days"))
    lpp_cold = f.value("demand.litres_per_parcel_cold")
    lpp_amb = f.value("demand.litres_per_parcel_ambient")
    out: list[dict[str, Any]] = []
    for v in net["villages"]:
        vid = v["village_id"]
        cold_up = float(v.get("cold_chain_share_up", 0.05))
        for d in range(horizon_days):
            w = WEEKDAY_FACTOR[d % 7] * rnd.uniform(0.85, 1.15)
            down = v["down_parcels_per_day"] * w
            up = v["up_parcels_per_day"] * w
            ch, fr = down * share_ch, down * share_fr
            amb = down - ch - fr
            groups = [
                ("ambient", "down", amb * (1 - presale), 0, None),
                ("ambient", "down", amb * presale, flex, None),
                ("chilled", "down", ch, 0, None),
                ("frozen", "down", fr, 0, None),
                ("ambient", "up", up * (1 - cold_up), 0, up * (1 - cold_up) * lpp_amb * 1.5),
                ("chilled", "up", up * cold_up, 0, up * cold_up * lpp_cold * 1.5),
            ]
            for c, direction, parcels, fx, vol in groups:
                parcels = round(parcels, 1)
                if parcels <= 0:
                    continue
                g = {"village_id": vid, "day": d, "class_id": c, "direction": direction,
                     "parcels": parcels}
                if fx:
                    g["flex_days"] = fx
                if vol is not None:
                    g["volume_litres"] = round(vol, 1)
                out.append(g)
    return out


_MATERIAL_FACTOR = {"cardboard": "materials_kg_co2e_per_kg.board",
                    "paper_fill": "materials_kg_co2e_per_kg.board",
                    "tape": "materials_kg_co2e_per_kg.plastic_film",
                    "plastic_film": "materials_kg_co2e_per_kg.plastic_film",
                    "eps_foam": "materials_kg_co2e_per_kg.polystyrene_eps",
                    "ice_pack": "materials_kg_co2e_per_kg.gel_ice_pack"}


def _single_use(f: FactorSet) -> dict[str, dict[str, float]]:
    """Cost, waste grams and production CO2e of one parcel's single-use packaging, by kind
    (optimizer.factors.single_use_lines), and `parcel_mix`: an ordinary parcel's outer
    packaging averaged over the packaging mix the simulator draws from."""
    lines = single_use_lines(f)
    cost = {"carton": f.value("packaging.single_use_carton_cost_cny"),
            "bag": f.value("packaging.single_use_bag_cost_cny"),
            "envelope": f.value("packaging.single_use_envelope_cost_cny"),
            "eps_box": f.value("packaging.single_use_eps_cold_cost_cny"),
            "ice_packs": f.value("packaging.ice_pack_cost_cny")
            * f.value("packaging.ice_packs_per_cold_parcel")}
    out = {kind: {"cost_cny": cost[kind], "waste_grams": sum(grams.values()),
                  "co2e_kg": sum(g / 1000 * f.value(_MATERIAL_FACTOR[mat])
                                 for mat, g in grams.items())}
           for kind, grams in lines.items()}
    mix = f.shares("packaging.parcel_mix")
    out["parcel_mix"] = {key: sum(share * out[kind][key] for kind, share in mix.items())
                         for key in ("cost_cny", "waste_grams", "co2e_kg")}
    return {kind: {key: round(x, 4) for key, x in d.items()} for kind, d in out.items()}


def scenario_from_network(
    network_json_or_path: str | Path | Mapping[str, Any],
    *,
    demand: Iterable[Mapping[str, Any]] | None = None,
    outstanding_waste_grams: Mapping[str, float | Mapping[str, float]] | None = None,
    container_pools: Mapping[str, Mapping[str, float]] | None = None,
    horizon_days: int = 7,
    horizon_end: str = "cyclic",
    hubs: Iterable[str] | None = None,
    factors: FactorSet | None = None,
    seed: int = 0,
    name: str | None = None,
    county_trucks: int | None = 40,
) -> Scenario:
    """A planning scenario for the county.

    demand: groups as in the scenario format (village_id, day, class_id, direction, parcels,
      optional volume_litres, flex_days); default: synthesised from the villages' daily rates.
    outstanding_waste_grams: village -> grams, or village -> {material: grams}; default: half
      of the single-use packaging the village received in a week.
    container_pools: hub -> {container_type: count}; default: three days of the hub's cold
      parcels in insulated boxes, no crates.
    hubs: restrict to these hubs (their villages only).
    """
    f = factors or load_factors()
    net = _network(network_json_or_path)
    keep_hubs = set(hubs) if hubs is not None else {h["hub_id"] for h in net["hubs"]}
    net = {**net, "hubs": [h for h in net["hubs"] if h["hub_id"] in keep_hubs],
           "villages": [v for v in net["villages"] if v["hub_id"] in keep_hubs]}
    vset = {v["village_id"] for v in net["villages"]}
    groups = list(demand) if demand is not None else synthetic_demand(net, f, horizon_days, seed)
    groups = [dict(g) for g in groups if g["village_id"] in vset]

    packs = _single_use(f)
    ctypes = {c["container_type"]: c for c in net.get("container_types", [])}
    pp = f.value("materials_kg_co2e_per_kg.polypropylene_moulded")
    box_g = ctypes.get("insulated_box", {}).get("unit_grams", 900)
    crate_g = ctypes.get("reusable_crate", {}).get("unit_grams", 1500)
    rr = f.value("containers.return_rate")
    lag = int(f.value("containers.return_lag_days"))

    if outstanding_waste_grams is None:
        waste = {v["village_id"]: 0.5 * v["down_parcels_per_day"] * 7
                 * packs["parcel_mix"]["waste_grams"] for v in net["villages"]}
    else:
        waste = {k: (sum(x.values()) if isinstance(x, Mapping) else float(x))
                 for k, x in outstanding_waste_grams.items() if k in vset}
    cold_per_hub: dict[str, float] = {}
    for g in groups:
        if g["direction"] == "down" and g["class_id"] in ("chilled", "frozen"):
            h = g["village_id"].split("-")[0]
            cold_per_hub[h] = cold_per_hub.get(h, 0.0) + g["parcels"]
    if container_pools is None:
        pools = [{"hub_id": h["hub_id"], "container_type": "insulated_box",
                  "count": round(3 * cold_per_hub.get(h["hub_id"], 0.0) / horizon_days)}
                 for h in net["hubs"]]
    else:
        pools = [{"hub_id": h, "container_type": ct, "count": n}
                 for h, m in container_pools.items() if h in keep_hubs for ct, n in m.items()]
    seat = net.get("county_seat") or {"lat": net["hubs"][0]["lat"], "lon": net["hubs"][0]["lon"]}
    # a wash heats water with grid electricity
    wash_co2e = (f.value("containers.cleaning_kwh_per_container")
                 * f.value("vehicles.china_grid_kg_co2_per_kwh"))
    uplift = f.value("vehicles.reefer_uplift")
    van_time = {"speed_kmh": f.value("vehicles.van_speed_kmh"),
                "service_minutes_per_stop": f.value("vehicles.service_minutes_per_stop"),
                "shift_minutes": f.value("vehicles.shift_minutes")}
    truck_time = {"speed_kmh": f.value("vehicles.truck_speed_kmh"),
                  "service_minutes_per_stop": f.value("vehicles.trunk_service_minutes_per_stop"),
                  "shift_minutes": f.value("vehicles.shift_minutes")}
    raw = {
        "name": name or f"{net.get('county', 'county')} {horizon_days}-day plan",
        "factor_set": f.version,
        "horizon_days": horizon_days,
        "horizon_end": horizon_end,
        "depot": {"id": "COUNTY", "name": seat.get("name", ""), "lat": seat["lat"],
                  "lon": seat["lon"]},
        "hubs": [{"hub_id": h["hub_id"], "name": h.get("name", ""), "lat": h["lat"],
                  "lon": h["lon"],
                  "cleaning_capacity_per_day": f.value("containers.hub_cleaning_capacity_per_day")}
                 for h in net["hubs"]],
        "villages": [{"village_id": v["village_id"], "hub_id": v["hub_id"],
                      "name": v.get("name", ""), "lat": v["lat"], "lon": v["lon"]}
                     for v in net["villages"]],
        "classes": [
            {"class_id": "ambient",
             "litres_per_parcel": f.value("demand.litres_per_parcel_ambient")},
            {"class_id": "chilled", "refrigerated": True,
             "litres_per_parcel": f.value("demand.litres_per_parcel_cold")},
            {"class_id": "frozen", "refrigerated": True,
             "litres_per_parcel": f.value("demand.litres_per_parcel_cold")},
        ],
        "vehicle_types": [
            {"vehicle_type": "ambient_van", "base": "hub", "compartments_litres": {"ambient": 5000},
             "fixed_cost_cny": f.value("vehicles.van_fixed_cost_cny_per_trip"),
             "cost_per_km_cny": f.value("vehicles.van_cost_cny_per_km"),
             "co2e_per_km_kg": f.value("vehicles.diesel_van_kg_co2e_per_km"),
             "max_route_km": 150, "max_stops": 6, "count": 4, "max_trips_per_day": 2,
             **van_time},
            {"vehicle_type": "multi_temp_van", "base": "hub", "refrigerated": True,
             "compartments_litres": {"ambient": 2500, "chilled": 1500, "frozen": 800},
             "fixed_cost_cny": f.value("vehicles.reefer_van_fixed_cost_cny_per_trip"),
             "cost_per_km_cny": f.value("vehicles.reefer_van_cost_cny_per_km"),
             "co2e_per_km_kg": f.value("vehicles.diesel_van_kg_co2e_per_km"),
             "reefer_uplift": uplift, "max_route_km": 150, "max_stops": 6, "count": 4,
             "max_trips_per_day": 2, **van_time},
            {"vehicle_type": "trunk_reefer_truck", "base": "county", "refrigerated": True,
             "compartments_litres": {"ambient": 11000, "chilled": 3000, "frozen": 2000},
             "fixed_cost_cny": f.value("vehicles.trunk_truck_fixed_cost_cny_per_trip"),
             "cost_per_km_cny": f.value("vehicles.trunk_truck_cost_cny_per_km"),
             "co2e_per_km_kg": f.value("vehicles.rigid_3_5_to_7_5t_kg_co2e_per_km"),
             "reefer_uplift": uplift, "count": county_trucks, "max_trips_per_day": 3,
             **truck_time},
        ],
        "demand": groups,
        "packaging": {
            "single_use": [
                {"option_id": "parcel_mix", "class_ids": ["ambient"], **packs["parcel_mix"]},
                {"option_id": "carton", "class_ids": [], "up_class_ids": ["ambient"],
                 **packs["carton"]},
                {"option_id": "eps_box_ice", "class_ids": ["chilled", "frozen"],
                 "up_class_ids": ["chilled"], **packs["eps_box"], "passive": True},
            ],
            "reusable": [
                {"container_type": "insulated_box", "class_ids": ["chilled", "frozen"],
                 "up_class_ids": ["chilled"],
                 "price_cny": f.value("containers.insulated_box_price_cny"),
                 "cycle_life": f.value("containers.insulated_box_cycle_life"),
                 "cleaning_cny": f.value("containers.cleaning_cost_cny"),
                 "cleaning_co2e_kg": wash_co2e,
                 "production_co2e_kg": round(box_g / 1000 * pp, 4),
                 "nested_litres": f.value("containers.insulated_box_nested_litres"),
                 "litres_per_parcel": f.value("containers.insulated_box_litres"),
                 "return_rate": rr, "return_lag_days": lag, "passive": True,
                 "per_use_cost_cny": packs["ice_packs"]["cost_cny"],
                 "per_use_waste_grams": packs["ice_packs"]["waste_grams"],
                 "per_use_co2e_kg": packs["ice_packs"]["co2e_kg"]},
                {"container_type": "reusable_crate", "class_ids": ["ambient"],
                 "up_class_ids": ["ambient"],
                 "price_cny": f.value("containers.reusable_crate_price_cny"),
                 "cycle_life": f.value("containers.reusable_crate_cycle_life"),
                 "cleaning_cny": f.value("containers.cleaning_cost_cny"),
                 "cleaning_co2e_kg": wash_co2e,
                 "production_co2e_kg": round(crate_g / 1000 * pp, 4),
                 "nested_litres": f.value("containers.reusable_crate_folded_litres"),
                 "litres_per_parcel": f.value("containers.reusable_crate_litres"),
                 "return_rate": rr, "return_lag_days": lag},
            ],
        },
        "container_pools": pools,
        "outstanding_waste": [{"village_id": k, "grams": round(g, 1), "litres_per_kg": 8.0}
                              for k, g in sorted(waste.items()) if g > 0],
        "prices": {"carbon_cny_per_kg_co2e": f.value("prices.carbon_cny_per_kg_co2e"),
                   "disposal_cny_per_kg": f.value("prices.disposal_cny_per_kg"),
                   "pool_amortisation_weeks": f.value("prices.pool_amortisation_weeks")},
        "routing": {"circuity_factor": 1.3, "exact_max_villages": 8, "cluster_size": 6},
    }
    return load_scenario(raw)
