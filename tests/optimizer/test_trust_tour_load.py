"""Loads along a tour in its stop order (issue #12: "loads along a tour are not checked")."""

from __future__ import annotations

import pytest

import optimizer
from tests.optimizer.helpers import routes_for
from tests.optimizer.plan_checks import check_result, check_tour_loads

KM = {"H": {"A": 10, "B": 10}, "A": {"B": 10, "H": 10}, "B": {"A": 50, "H": 10}}


def pickup_first_raw() -> dict:
    """Hub H, villages A and B; the only two-stop tour is H → A → B → H (30 km; the other way
    round is 70 km). A ships 600 litres of farm goods up, B receives 60 parcels of 10 litres.
    One van of 1,000 litres per trip, 100 CNY a trip plus 1 CNY a km; packaging, carbon and
    disposal free."""
    return {
        "name": "pickup-first", "horizon_days": 1, "horizon_end": "boundary",
        "depot": {"id": "C", "lat": 28.6, "lon": 119.2},
        "hubs": [{"hub_id": "H", "lat": 28.6, "lon": 119.2}],
        "villages": [{"village_id": "A", "hub_id": "H", "lat": 28.65, "lon": 119.2},
                     {"village_id": "B", "hub_id": "H", "lat": 28.6, "lon": 119.25}],
        "classes": [{"class_id": "ambient", "litres_per_parcel": 10}],
        "vehicle_types": [{"vehicle_type": "van", "base": "hub",
                           "compartments_litres": {"ambient": 1000}, "fixed_cost_cny": 100,
                           "cost_per_km_cny": 1, "co2e_per_km_kg": 0.25, "count": 2}],
        "demand": [
            {"village_id": "B", "day": 0, "class_id": "ambient", "direction": "down",
             "parcels": 60},
            {"village_id": "A", "day": 0, "class_id": "ambient", "direction": "up",
             "parcels": 10, "volume_litres": 600},
        ],
        "packaging": {"single_use": [{"option_id": "carton", "class_ids": ["ambient"],
                                      "cost_cny": 0, "waste_grams": 0, "co2e_kg": 0}]},
        "prices": {"carbon_cny_per_kg_co2e": 0, "disposal_cny_per_kg": 0},
        "routing": {"distance_matrix_km": KM},
    }


def test_a_tour_that_picks_up_first_cannot_also_carry_a_full_delivery():
    """By hand: one H → A → B → H trip (130 CNY) would leave with B's 600 litres, take A's 600
    litres on at A and carry 1,200 litres to B in a 1,000-litre van. Two such trips cost 260;
    one of them plus a trip to A or B alone for the 200 litres that do not fit, 250; a trip to
    A and one to B, 120 + 120 = 240, the optimum. With only an outbound and a return row
    (600 ≤ 1,000 each way) the single trip at 130 CNY passed."""
    s = optimizer.load_scenario(pickup_first_raw())
    (two_stop,) = [r for r in routes_for(s)["H"] if len(r.stops) == 2]
    assert two_stop.stops == ("A", "B") and two_stop.km == pytest.approx(30)
    res = optimizer.solve(s, time_limit_s=30, mip_gap=0.0, threads=1)
    check_result(res, s)
    assert res.objective == pytest.approx(240.0, rel=1e-9)
    assert sorted(tuple(t["stops"]) for t in res.plan["trips"]) == [("A",), ("B",)]


def test_plan_checks_catch_an_overload_part_way():
    """The plan the old rows allowed fails the check of loads along the tour."""
    s = optimizer.load_scenario(pickup_first_raw())
    trip = {"kind": "milk_run", "vehicle_type": "van", "stops": ["A", "B"], "day": 0,
            "stop_loads": {"A": {"up_litres.ambient": 600.0},
                           "B": {"down_litres.ambient": 600.0}}}
    with pytest.raises(AssertionError, match="after stop 1"):
        check_tour_loads({"trips": [trip]}, s)
    trip["stops"] = ["B", "A"]  # delivering first, the same loads fit
    check_tour_loads({"trips": [trip]}, s)
