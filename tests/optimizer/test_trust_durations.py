"""Trip durations and shifts (issue #12: "routes are costed by length only")."""

from __future__ import annotations

import pytest

import optimizer
from optimizer import load_factors
from optimizer.scenario import VehicleType
from tests.optimizer.plan_checks import check_result

KM = {"H": {"A": 60, "B": 10}, "A": {"B": 70, "H": 60}, "B": {"H": 10}}
FAR = {"H": {"C": 200}, "A": {"C": 200}, "B": {"C": 200}, "C": {"H": 200}}


def _vehicle(name: str, fixed_cny: float) -> dict:
    return {"vehicle_type": name, "base": "hub", "compartments_litres": {"ambient": 1000},
            "fixed_cost_cny": fixed_cny, "cost_per_km_cny": 1, "co2e_per_km_kg": 0.25,
            "count": 1, "max_trips_per_day": 3, "max_stops": 1, "speed_kmh": 40,
            "service_minutes_per_stop": 15, "shift_minutes": 480}


def shifts_raw(far_village: bool = False) -> dict:
    """Hub H; village A 60 km away, B 10 km away (C, optional, 200 km away). One van (50 CNY a
    trip) and one truck (150 CNY a trip), 1 CNY a km each, 1,000 litres, both at 40 km/h with
    15 minutes per stop and an 8-hour shift, at most 3 trips a day. Day 0: 300 parcels of 10
    litres for A; day 1: 400 for B. Packaging, carbon and disposal free."""
    demand = [{"village_id": "A", "day": 0, "class_id": "ambient", "direction": "down",
               "parcels": 300},
              {"village_id": "B", "day": 1, "class_id": "ambient", "direction": "down",
               "parcels": 400}]
    villages = [{"village_id": i, "hub_id": "H", "lat": 28.6, "lon": 119.2 + k / 10}
                for k, i in enumerate("AB")]
    if far_village:
        villages.append({"village_id": "C", "hub_id": "H", "lat": 28.6, "lon": 119.6})
        demand.append({"village_id": "C", "day": 1, "class_id": "ambient",
                       "direction": "down", "parcels": 1})
    return {
        "name": "shifts", "horizon_days": 2, "horizon_end": "boundary",
        "depot": {"id": "D", "lat": 28.6, "lon": 119.2},
        "hubs": [{"hub_id": "H", "lat": 28.6, "lon": 119.2}],
        "villages": villages,
        "classes": [{"class_id": "ambient", "litres_per_parcel": 10}],
        "vehicle_types": [_vehicle("van", 50), _vehicle("truck", 150)],
        "demand": demand,
        "packaging": {"single_use": [{"option_id": "carton", "class_ids": ["ambient"],
                                      "cost_cny": 0, "waste_grams": 0, "co2e_kg": 0}]},
        "prices": {"carbon_cny_per_kg_co2e": 0, "disposal_cny_per_kg": 0},
        "routing": {"distance_matrix_km": {
            i: {**KM.get(i, {}), **(FAR.get(i, {}) if far_village else {})}
            for i in ("H", "A", "B", "C") if i != "C" or far_village}},
    }


def test_trips_per_vehicle_follow_from_their_duration():
    """By hand. Day 0: A needs 3,000 litres, three trips. A trip to A takes 120 km / 40 km/h
    + 15 min = 195 min, so a vehicle fits two in 480 min: the van runs two (2 × 170 CNY) and
    the truck the third (270 CNY), 610 CNY; three van trips (510 CNY) would take 585 min.
    Day 1: B needs four trips of 45 min; a shift would hold ten, but `max_trips_per_day`
    caps the van at three (3 × 70 CNY), the truck runs the fourth (170 CNY): 380 CNY.
    Optimum 990 CNY (before, with 3 trips a day whatever their length: 890)."""
    s = optimizer.load_scenario(shifts_raw())
    res = optimizer.solve(s, time_limit_s=30, mip_gap=0.0, threads=1)
    check_result(res, s)
    assert res.objective == pytest.approx(990.0, rel=1e-9)
    runs = sorted((t["day"], t["vehicle_type"], t["minutes"]) for t in res.plan["trips"])
    assert runs == [(0, "truck", 195.0), (0, "van", 195.0), (0, "van", 195.0),
                    (1, "truck", 45.0)] + [(1, "van", 45.0)] * 3


def test_a_village_beyond_a_shift_is_reported():
    """C is 200 km away: 600 min of driving, longer than any shift, so no trip is offered and
    the diagnosis names the village instead of a plan that cannot be driven."""
    res = optimizer.solve(optimizer.load_scenario(shifts_raw(far_village=True)),
                          time_limit_s=30, threads=1)
    assert res.status == "infeasible"
    assert any("C" in d["what"] and "day 1" in d["what"] for d in res.diagnosis)


def test_vehicle_time_defaults_come_from_the_facts_file():
    """A vehicle type that states no speed, stop time or shift takes them from the facts."""
    f = load_factors()
    vt = VehicleType(vehicle_type="v", base="hub", compartments_litres={"ambient": 1},
                     fixed_cost_cny=0, cost_per_km_cny=0, co2e_per_km_kg=0)
    assert vt.speed_kmh == f.value("vehicles.van_speed_kmh")
    assert vt.service_minutes_per_stop == f.value("vehicles.service_minutes_per_stop")
    assert vt.shift_minutes == f.value("vehicles.shift_minutes") == 480
