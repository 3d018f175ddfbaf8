"""The container pool pays for every container in circulation, in both horizons: a longer
return lag needs a larger pool and costs more (issue #12, "containers in circulation are
free in the cyclic horizon")."""

from __future__ import annotations

import pytest

import optimizer
from tests.optimizer.plan_checks import check_result

TRIP_CNY = 80 + 1.5 * 20  # fixed cost + 20 km at 1.5 CNY
PRICE, CLEAN, WEEKS = 25.0, 0.3, 52.0


def pool_lag_raw(lag: int, horizon_end: str) -> dict:
    """One hub, one village 10 km away, 100 chilled parcels a day for 7 days, no containers at
    the start; the reusable insulated box (25 CNY, cleaning 0.3 CNY, every box comes back
    after `lag` days and none wears out within the week) against EPS at 4.5 CNY a parcel.
    Carbon and disposal are free so that every cost is in the arithmetic of `expected_cost`."""
    return {
        "name": f"pool-lag-{lag}-{horizon_end}", "horizon_days": 7, "horizon_end": horizon_end,
        "depot": {"id": "C", "lat": 28.6, "lon": 119.2},
        "hubs": [{"hub_id": "H", "lat": 28.6, "lon": 119.2}],
        "villages": [{"village_id": "V", "hub_id": "H", "lat": 28.65, "lon": 119.2}],
        "classes": [{"class_id": "chilled", "refrigerated": True, "litres_per_parcel": 15}],
        "vehicle_types": [{"vehicle_type": "reefer", "base": "hub", "refrigerated": True,
                           "compartments_litres": {"chilled": 5000}, "fixed_cost_cny": 80,
                           "cost_per_km_cny": 1.5, "co2e_per_km_kg": 0.3, "count": 1}],
        "demand": [{"village_id": "V", "day": d, "class_id": "chilled", "direction": "down",
                    "parcels": 100} for d in range(7)],
        "packaging": {
            "single_use": [{"option_id": "eps", "class_ids": ["chilled"], "cost_cny": 4.5,
                            "waste_grams": 900, "co2e_kg": 2.1, "passive": True}],
            "reusable": [{"container_type": "box", "class_ids": ["chilled"],
                          "price_cny": PRICE, "cycle_life": 1e9, "cleaning_cny": CLEAN,
                          "nested_litres": 4, "return_rate": 1.0, "return_lag_days": lag,
                          "passive": True}],
        },
        "container_pools": [{"hub_id": "H", "container_type": "box", "count": 0}],
        "prices": {"carbon_cny_per_kg_co2e": 0, "disposal_cny_per_kg": 0,
                   "pool_amortisation_weeks": WEEKS},
        "routing": {"distance_matrix_km": {"H": {"V": 10}, "V": {"H": 10}}},
    }


def expected_cost(lag: int, horizon_end: str) -> float:
    """The optimum by hand. Every parcel goes in a box (a box-week of pool costs 25/52 =
    0.48 CNY and serves several parcels; EPS costs 4.5 each), one trip a day (110 CNY).

    A box issued on day d is empty at the village on day d + ℓ, picked up by that day's
    trip, cleaned and back in stock that evening, and issued again on day d + ℓ + 1: each
    box serves one parcel every ℓ + 1 days, so the pool is E = 100 (ℓ + 1) boxes, paid
    25/52 CNY each for the week, and nothing else is bought. Cleaning: 0.3 CNY per box
    picked up. Cyclic: all 700 boxes are picked up. Boundary: the boxes of the last ℓ days
    are still out at the end, and those that become empty on the last day are left at the
    village (the end condition counts them and no later issue needs them): 100 (6 − ℓ)
    pickups.

    Hence each further day of lag costs 100 × 25/52 = 48.08 CNY in the cyclic horizon and
    48.08 − 100 × 0.3 = 18.08 CNY in the boundary horizon."""
    pool = 100 * (lag + 1) * PRICE / WEEKS
    pickups = 700 if horizon_end == "cyclic" else 100 * (6 - lag)
    return 7 * TRIP_CNY + pool + CLEAN * pickups


@pytest.mark.parametrize("horizon_end", ["cyclic", "boundary"])
def test_longer_return_lag_costs_more(horizon_end):
    """Return lag 0, 2 and 4 days: three strictly rising costs, each the hand-derived optimum
    (the cyclic horizon used to charge 100 boxes whatever the lag)."""
    costs = []
    for lag in (0, 2, 4):
        s = optimizer.load_scenario(pool_lag_raw(lag, horizon_end))
        res = optimizer.solve(s, time_limit_s=60, mip_gap=0.0, threads=1)
        check_result(res, s)
        assert res.objective == pytest.approx(expected_cost(lag, horizon_end), rel=1e-6)
        (pool,) = res.plan["containers"]
        assert pool["expansion"] == pytest.approx(100 * (lag + 1), rel=1e-6)
        costs.append(res.objective)
    assert costs[0] < costs[1] < costs[2]


def test_containers_out_at_the_start_are_collected_and_reused():
    """The lag-2 boundary week with 100 boxes already out at the village on day 0 (issued
    before the horizon, not in the hub's pool). By hand: day 0's trip picks them up (0.3 CNY
    each to clean) and they serve day 1, so the pool needs only 200 boxes instead of 300
    (day 2 is the first day own boxes cannot cover: 100 issued on days 0 and 1 each, none
    back before day 2's evening). Cost 7 × 110 + 200 × 25/52 + 0.3 × (400 + 100) = 1,016.15
    CNY, 18.08 less than without them (they cost their cleaning, save 100 box-weeks)."""
    raw = pool_lag_raw(2, "boundary")
    raw["containers_out"] = [{"village_id": "V", "container_type": "box", "count": 100}]
    s = optimizer.load_scenario(raw)
    res = optimizer.solve(s, time_limit_s=60, mip_gap=0.0, threads=1)
    check_result(res, s)
    assert res.objective == pytest.approx(7 * TRIP_CNY + 200 * PRICE / WEEKS + CLEAN * 500,
                                          rel=1e-6)
    (pool,) = res.plan["containers"]
    assert pool["expansion"] == pytest.approx(200, rel=1e-6)
    day0 = [t for t in res.plan["trips"] if t["day"] == 0]
    assert sum(t["loads"]["empties"].get("box", 0) for t in day0) == pytest.approx(100)
    assert res.objective == pytest.approx(expected_cost(2, "boundary") - 18.0769, abs=1e-3)


def test_containers_out_need_a_boundary_horizon_and_known_names():
    raw = pool_lag_raw(2, "cyclic")
    raw["containers_out"] = [{"village_id": "W", "container_type": "crate", "count": 1,
                              "day": 9}]
    with pytest.raises(optimizer.ScenarioError) as err:
        optimizer.load_scenario(raw)
    where = {p for p, _ in err.value.problems}
    assert {"containers_out", "containers_out[0].village_id",
            "containers_out[0].container_type", "containers_out[0].day"} <= where


def test_a_plan_with_the_containers_on_hand_drops_no_more_than_the_hub_holds():
    """The daily dispatch's first day is tomorrow's run sheet: planned with pool expansion,
    a sheet told a hub holding 367 crates to drop 841. The lag-0 boundary week with 60
    boxes at the hub. With expansion: 40 more boxes (40 × 25/52), every parcel boxed,
    600 pickups: 7 × 110 + 19.23 + 180 = 969.23 CNY. With `containers_on_hand`, by hand:
    day 0 boxes 60 parcels from stock and 40 go in EPS (4.5 each); 40 boxes bought on day 0
    serve days 1-6 (25 CNY each against 6 × 4.5 of EPS less 5 cleanings), 560 pickups:
    770 + 180 + 1,000 + 168 = 2,118 CNY."""
    costs = {}
    for on_hand in (False, True):
        raw = pool_lag_raw(0, "boundary")
        raw["container_pools"][0]["count"] = 60
        raw["containers_on_hand"] = on_hand
        s = optimizer.load_scenario(raw)
        res = optimizer.solve(s, time_limit_s=60, mip_gap=0.0, threads=1)
        check_result(res, s)
        (pool,) = res.plan["containers"]
        costs[on_hand] = res.objective
        if on_hand:
            assert pool["expansion"] == 0
            assert pool["days"][0]["issued"] <= 60 + 1e-6
        else:
            assert pool["expansion"] == pytest.approx(40, rel=1e-6)
            assert pool["days"][0]["issued"] == pytest.approx(100, rel=1e-6)
    assert costs[False] == pytest.approx(7 * TRIP_CNY + 40 * PRICE / WEEKS + CLEAN * 600,
                                         rel=1e-6)
    assert costs[True] == pytest.approx(7 * TRIP_CNY + 40 * 4.5 + 40 * PRICE + CLEAN * 560,
                                        rel=1e-6)
