"""Capacity covers (optimizer.cuts): they must cut off fractional trips and never a plan."""

from __future__ import annotations

import random

import highspy
import pytest

from optimizer import build_model, capacity_cover_rows, compile_model, load_scenario, run_highs
from optimizer.plan import extract_plan
from optimizer.stages import StageOutcome
from tests.optimizer.helpers import routes_for, tiny_raw
from tests.optimizer.plan_checks import check_stage


def _relaxation(built) -> float:
    lp = compile_model(built.model).lp
    lp.integrality_ = []
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(lp)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return h.getInfo().objective_function_value


def _one_village(parcels: int) -> dict:
    """One van of 100 litres, parcels of 10 litres, a trip costs exactly 50 CNY."""
    return {
        "name": "cover", "horizon_days": 1, "horizon_end": "boundary",
        "depot": {"id": "C", "lat": 28.6, "lon": 119.2},
        "hubs": [{"hub_id": "H", "lat": 28.6, "lon": 119.2}],
        "villages": [{"village_id": "V", "hub_id": "H", "lat": 28.61, "lon": 119.2}],
        "classes": [{"class_id": "ambient", "litres_per_parcel": 10}],
        "vehicle_types": [{"vehicle_type": "van", "base": "hub",
                           "compartments_litres": {"ambient": 100}, "fixed_cost_cny": 50,
                           "cost_per_km_cny": 0, "co2e_per_km_kg": 0, "count": 5}],
        "demand": [{"village_id": "V", "day": 0, "class_id": "ambient", "direction": "down",
                    "parcels": parcels}],
        "packaging": {"single_use": [{"option_id": "carton", "class_ids": ["ambient"],
                                      "cost_cny": 0, "waste_grams": 0, "co2e_kg": 0}]},
        "prices": {"carbon_cny_per_kg_co2e": 0},
    }


def _build(s, covers: bool, mode: str = "joint"):
    """The covers alone: the trip-cost floors (tests/optimizer/test_floors.py) would lift the
    relaxation further."""
    return build_model(s, routes_for(s), mode=mode, capacity_covers=covers, trip_floors=False)


@pytest.mark.parametrize(("parcels", "trips"), [(25, 3), (20, 2), (1, 1), (31, 4)])
def test_cover_rounds_up_the_fractional_trip(parcels, trips):
    """10 * parcels litres in vans of 100: the relaxation runs parcels / 10 trips (at least
    one: the visit rows), a plan needs ceil(parcels / 10) (50 CNY each, nothing else costs);
    the covers lift the relaxation to that, and the optimum is the same with or without."""
    s = load_scenario(_one_village(parcels))
    assert _relaxation(_build(s, False)) == pytest.approx(50 * max(1, parcels / 10))
    assert _relaxation(_build(s, True)) == pytest.approx(50 * trips)
    for covers in (False, True):
        r = run_highs(_build(s, covers).model, mip_gap=0.0)
        assert r.status == "optimal"
        assert r.objective == pytest.approx(50 * trips)


def test_cover_spans_a_presale_window():
    """15 parcels due on day 0 or 1 (flexible): one day alone owes nothing, the window owes
    150 litres = 2 trips of 100."""
    raw = _one_village(15)
    raw["horizon_days"] = 2
    raw["demand"][0]["flex_days"] = 1
    s = load_scenario(raw)
    b = _build(s, False)
    rows = capacity_cover_rows(s, b.trips, b.mode, b.hubs, b.has_trunk)
    spans = {(k[4], k[5]): rhs for k, (_coef, rhs) in rows.items() if k[2] == "down"}
    assert spans == {(0, 1): 2}
    assert _relaxation(_build(s, True)) == pytest.approx(100)


def _binding_variant(seed: int) -> dict:
    """tiny.yaml with vehicles so small that trips must be repeated and split."""
    rnd = random.Random(seed)
    raw = tiny_raw()
    for g in raw["demand"]:
        g["parcels"] = rnd.randint(5, 80)
        if g["direction"] == "up":
            g["volume_litres"] = rnd.randint(50, 900)
    raw["horizon_end"] = rnd.choice(["cyclic", "boundary"])
    for vt in raw["vehicle_types"]:
        vt["compartments_litres"] = {k: v * rnd.uniform(0.08, 0.3)
                                     for k, v in vt["compartments_litres"].items()}
        vt["max_trips_per_day"] = 6
        vt["count"] = 3
    raw["outstanding_waste"] = [dict(w, grams=rnd.randint(0, 40000))
                                for w in raw["outstanding_waste"]]
    return raw


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("mode", ["joint", "single_use", "uncoordinated"])
def test_covers_change_no_optimum(seed, mode):
    """Covers are valid rows: on capacity-bound variants they raise the relaxation (or
    leave it) and leave every mode's optimum where it was."""
    s = load_scenario(_binding_variant(seed))
    plain, covered = _build(s, False, mode), _build(s, True, mode)
    assert _relaxation(covered) >= _relaxation(plain) - 1e-6
    a = run_highs(plain.model, mip_gap=0.0, time_limit_s=60)
    b = run_highs(covered.model, mip_gap=0.0, time_limit_s=60)
    assert a.status == b.status == "optimal"
    assert b.objective == pytest.approx(a.objective, rel=1e-7)
    for built, r in ((plain, a), (covered, b)):
        check_stage(StageOutcome(r.status, r.objective, r.bound, extract_plan(built, s)), s,
                    built.hubs)
