"""Packaging in the plan (issue #12): a parcel's litres depend on its packaging, reusable
crates carry farm goods up, the single-use items that go with a reusable container are paid
for, and the simulator and the planner ship the same packaging mix."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest

import optimizer
from optimizer import load_factors
from services.simulation.simulator import SimulationConfig, Simulator, default_profile
from streams.network import load_network
from tests.optimizer.plan_checks import check_result

TRIP_CNY = 100 + 1 * 20  # fixed cost + 20 km at 1 CNY
BOX_WEEK_CNY = 18 / 7 / 52  # one crate in the pool for a 1-day cyclic horizon: 18 CNY / 52 weeks


def crate_raw(down: int, up: int = 0, crate_up: bool = False, per_use: float = 0.0,
              crate_litres: float | None = None, van_litres: float = 5000) -> dict:
    """Hub H, village V 10 km away, one day repeating (cyclic), one van trip a day (120 CNY).
    `down` ordinary parcels of 12 litres to V; `up` farm parcels (10 litres each) from V.
    Single-use carton for both directions at 1 CNY; a foldable crate (18 CNY, never worn out,
    always returned the same day, cleaning 0.3 CNY, 3 litres folded) for deliveries, and for
    farm goods if `crate_up`, with `per_use` CNY of single-use items per use. Carbon and
    disposal are free."""
    crate = {"container_type": "crate", "class_ids": ["ambient"], "price_cny": 18,
             "cycle_life": 1e9, "cleaning_cny": 0.3, "nested_litres": 3, "return_rate": 1.0,
             "return_lag_days": 0, "per_use_cost_cny": per_use,
             "up_class_ids": ["ambient"] if crate_up else []}
    if crate_litres is not None:
        crate["litres_per_parcel"] = crate_litres
    demand = [{"village_id": "V", "day": 0, "class_id": "ambient", "direction": "down",
               "parcels": down}]
    if up:
        demand.append({"village_id": "V", "day": 0, "class_id": "ambient", "direction": "up",
                       "parcels": up, "volume_litres": 10 * up})
    return {
        "name": "crates", "horizon_days": 1, "horizon_end": "cyclic",
        "depot": {"id": "C", "lat": 28.6, "lon": 119.2},
        "hubs": [{"hub_id": "H", "lat": 28.6, "lon": 119.2}],
        "villages": [{"village_id": "V", "hub_id": "H", "lat": 28.65, "lon": 119.2}],
        "classes": [{"class_id": "ambient", "litres_per_parcel": 12}],
        "vehicle_types": [{"vehicle_type": "van", "base": "hub",
                           "compartments_litres": {"ambient": van_litres},
                           "fixed_cost_cny": 100, "cost_per_km_cny": 1, "co2e_per_km_kg": 0.25,
                           "count": 1}],
        "demand": demand,
        "packaging": {
            "single_use": [{"option_id": "carton", "class_ids": ["ambient"],
                            "up_class_ids": ["ambient"], "cost_cny": 1.0, "waste_grams": 220,
                            "co2e_kg": 0.3}],
            "reusable": [crate]},
        "prices": {"carbon_cny_per_kg_co2e": 0, "disposal_cny_per_kg": 0,
                   "pool_amortisation_weeks": 52},
        "routing": {"distance_matrix_km": {"H": {"V": 10}, "V": {"H": 10}}},
    }


def _solve(raw: dict) -> optimizer.PlanResult:
    s = optimizer.load_scenario(raw)
    res = optimizer.solve(s, time_limit_s=30, mip_gap=0.0, threads=1)
    check_result(res, s)
    return res


def test_a_parcel_in_a_crate_takes_the_crates_litres():
    """60 parcels in a 1,000-litre van: 12 litres in a carton, 18 in a crate. A crate costs
    0.3 CNY of cleaning plus a pool share of 18/(7 × 52) = 0.049 CNY against 1 CNY for a
    carton, so the van fills up with crates: 18 x + 12 (60 − x) ≤ 1,000 gives x = 46.67
    crates and 13.33 cartons (a second trip, 120 CNY, would save 13.33 × 0.65 CNY).
    Before, every parcel took the class's 12 litres and all 60 went in crates."""
    res = _solve(crate_raw(60, crate_litres=18, van_litres=1000))
    crates = 280 / 6
    expected = TRIP_CNY + crates * (0.3 + BOX_WEEK_CNY) + (60 - crates) * 1.0
    assert res.objective == pytest.approx(expected, rel=1e-6)
    (trip,) = res.plan["trips"]
    assert trip["loads"]["down_litres"]["ambient"] == pytest.approx(1000.0, rel=1e-6)


@pytest.mark.parametrize("per_use", [0.0, 0.5])
def test_crates_left_at_a_village_carry_its_farm_goods_up(per_use):
    """50 parcels go down in crates, which are empty at the village the same day; 30 of them
    take the village's farm goods up instead of 30 cartons and come back full, the other 20
    come back folded. Every crate is cleaned once (0.3 CNY), the pool is 50 crates, and each
    use, down or up, brings `per_use` CNY of single-use items:
    120 + 50 × (0.3 + 0.049) + 80 × per_use CNY; without crates for farm goods, 30 cartons
    (30 CNY) more and 30 uses fewer."""
    res = _solve(crate_raw(50, up=30, crate_up=True, per_use=per_use))
    base = TRIP_CNY + 50 * (0.3 + BOX_WEEK_CNY)
    assert res.objective == pytest.approx(base + 80 * per_use, rel=1e-6)
    (day,) = res.plan["containers"][0]["days"]
    assert (day["used_up"], day["picked_up"]) == pytest.approx((30.0, 20.0))
    assert res.kpis["reusable_uses"] == pytest.approx(80.0)
    without = _solve(crate_raw(50, up=30, crate_up=False, per_use=per_use))
    assert without.objective == pytest.approx(base + 30 * 1.0 + 50 * per_use, rel=1e-6)


DAY = datetime(2026, 6, 2, tzinfo=load_network().timezone)


def test_demo_simulation_and_plan_ship_the_same_packaging():
    """The demo simulates with the simulator's default profile and plans from a scenario
    built by `scenario_from_network` (what the planner's from_state builds): both take the
    cartons/bags/envelopes mix (50/40/10 %, the State Post Bureau's figure) from the one
    facts key, and agree on every kind of packaging, gram for gram (the simulator's events
    carry whole grams). Checked on a simulated day as well: the grams of single-use
    packaging per ordinary parcel the simulator ships are the planner's."""
    f = load_factors()
    mix = f.shares("packaging.parcel_mix")
    assert mix == {"carton": 0.5, "bag": 0.4, "envelope": 0.1}
    profile = default_profile()

    def grams(p) -> float:
        return float(sum(g for _m, g in p.lines))

    network = load_network()
    s = optimizer.scenario_from_network(network.raw, hubs=["H01"], horizon_days=2)
    su = {o.option_id: o for o in s.packaging.single_use}
    ru = {r.container_type: r for r in s.packaging.reusable}
    sim_mix = {p.name: share for p, share in profile.ambient_profiles}
    assert sim_mix == {"carton": 0.5, "mailer": 0.4, "envelope": 0.1}
    per_parcel = sum(share * grams(p) for p, share in profile.ambient_profiles)
    assert su["parcel_mix"].waste_grams == pytest.approx(per_parcel, abs=1.0)
    assert su["parcel_mix"].class_ids == ["ambient"]
    assert su["carton"].up_class_ids == ["ambient"]
    assert su["carton"].waste_grams == pytest.approx(grams(profile.farm_carton), abs=1.0)
    assert su["eps_box_ice"].waste_grams == pytest.approx(grams(profile.cold_single_use),
                                                          abs=1.0)
    # the insulated box travels with its ice packs in both
    assert ru["insulated_box"].per_use_waste_grams == pytest.approx(
        grams(profile.cold_with_container), abs=1.0) and grams(profile.cold_with_container) > 0

    sim = Simulator(network, SimulationConfig(days=1, scale=0.3, seed=5, start=DAY))
    shipped: Counter[str] = Counter()
    total = 0.0
    for e in sim.events():
        if e["type"] == "shipment" and e["direction"] == "down" and (
                e["temperature_class"] == "ambient"):
            shipped["parcels"] += 1
            total += sum(line["grams"] for line in e["packaging"])
    assert shipped["parcels"] > 1000
    assert total / shipped["parcels"] == pytest.approx(su["parcel_mix"].waste_grams, rel=0.05)
