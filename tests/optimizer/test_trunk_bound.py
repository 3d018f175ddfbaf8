"""The trunk rounding bound (optimizer.trunk_bound): it must lift the bound where the
relaxation runs a fraction of a trunk truck because bulky packaging is cheaper, and never
rise above the joint model's optimum."""

from __future__ import annotations

import pytest

from optimizer import build_model, load_scenario, run_highs
from optimizer.solver import compile_model
from optimizer.trunk_bound import trunk_columns, trunk_rounding_bound
from tests.optimizer.helpers import routes_for
from tests.optimizer.test_cuts import _relaxation

BOX_CNY = 15.0
TRUCK_CNY = 100.0


def _trunk_case(parcels: int) -> dict:
    """`parcels` to one village, all through the county's trunk truck (100 L, 100 CNY a
    trip, no km cost); a free milk-run van big enough for everything; a free bag of 20 L or
    a box of 10 L at 15 CNY."""
    return {
        "name": "trunk", "horizon_days": 1, "horizon_end": "boundary",
        "depot": {"id": "C", "lat": 28.5, "lon": 119.2},
        "hubs": [{"hub_id": "H", "lat": 28.6, "lon": 119.2}],
        "villages": [{"village_id": "V", "hub_id": "H", "lat": 28.61, "lon": 119.2}],
        "classes": [{"class_id": "ambient", "litres_per_parcel": 10}],
        "vehicle_types": [
            {"vehicle_type": "van", "base": "hub", "compartments_litres": {"ambient": 1000},
             "fixed_cost_cny": 0, "cost_per_km_cny": 0, "co2e_per_km_kg": 0, "count": 1},
            {"vehicle_type": "truck", "base": "county", "compartments_litres": {"ambient": 100},
             "fixed_cost_cny": TRUCK_CNY, "cost_per_km_cny": 0, "co2e_per_km_kg": 0,
             "count": 10}],
        "demand": [{"village_id": "V", "day": 0, "class_id": "ambient", "direction": "down",
                    "parcels": parcels}],
        "packaging": {"single_use": [
            {"option_id": "bag", "class_ids": ["ambient"], "litres_per_parcel": 20,
             "cost_cny": 0, "waste_grams": 0, "co2e_kg": 0},
            {"option_id": "box", "class_ids": ["ambient"], "litres_per_parcel": 10,
             "cost_cny": BOX_CNY, "waste_grams": 0, "co2e_kg": 0}]},
        "prices": {"carbon_cny_per_kg_co2e": 0, "disposal_cny_per_kg": 0},
    }


def _best_by_hand(parcels: int) -> float:
    """min 100 trucks + 15 boxes over whole trucks, 20 L a bag and 10 L a box."""
    return min(TRUCK_CNY * k + BOX_CNY * boxes for boxes in range(parcels + 1)
               for k in range(11) if 100 * k >= 20 * (parcels - boxes) + 10 * boxes)


@pytest.mark.parametrize("parcels", [16, 14, 21])
def test_bound_is_the_whole_truck_optimum(parcels):
    """16 parcels: the relaxation packs all in bags (a box saves 10 CNY of truck for 15) and
    runs 3.2 trucks, 320 CNY; a plan runs 3 trucks and boxes 2 parcels (330) or 4 trucks
    (400). The bound with the trunk counts whole is that optimum, which HiGHS confirms."""
    s = load_scenario(_trunk_case(parcels))
    best = _best_by_hand(parcels)
    b = build_model(s, routes_for(s))
    lp = _relaxation(b)
    assert lp == pytest.approx(TRUCK_CNY * parcels * 20 / 100)  # bags, fractional trucks
    assert lp < best - 1  # so the bound has something to add
    tb = trunk_rounding_bound(b, 30.0)
    assert tb.branched
    assert tb.relaxation == pytest.approx(lp)
    assert tb.bound == pytest.approx(best)
    r = run_highs(b.model, mip_gap=0.0)
    assert r.status == "optimal" and r.objective == pytest.approx(best)


def test_whole_trunks_in_the_relaxation_need_no_branching():
    """15 parcels in bags fill 3 trucks exactly: the relaxation is the bound."""
    s = load_scenario(_trunk_case(15))
    b = build_model(s, routes_for(s))
    tb = trunk_rounding_bound(b, 30.0)
    assert not tb.branched and tb.bound == pytest.approx(300.0)


def test_a_bound_cut_short_stays_below_the_optimum():
    """With no time to branch the bound is the relaxation's, never above the optimum; the
    trunk columns are the county trucks' counts only."""
    s = load_scenario(_trunk_case(16))
    b = build_model(s, routes_for(s))
    comp = compile_model(b.model)
    cols = trunk_columns(b, comp)
    assert cols and all(b.trips[comp.columns[j].index()].vehicle_type == "truck" for j in cols)
    tb = trunk_rounding_bound(b, 0.0)
    # the relaxation solves (a tiny model); no node is branched: its value is the bound
    assert tb.bound == pytest.approx(320.0) and not tb.branched
    assert tb.bound < _best_by_hand(16)


def test_a_group_cut_short_reports_the_trunk_bound(monkeypatch):
    """A hub group whose joint solve stopped at the relaxation's bound (320 CNY here: a
    stand-in for a county hub's few seconds) reports the trunk rounding bound, the
    hand-computed optimum 330, and says where it came from; without the trunk rounding
    the group's bound stays at the relaxation's."""
    from optimizer import stages

    real = stages._Group.run

    def cut_short(self, stage, mode, *args, **kwargs):
        done = real(self, stage, mode, *args, **kwargs)
        if stage == "joint" and done is not None:
            o, b = done
            return stages.dataclasses.replace(o, status="time_limit", bound=320.0), b
        return done

    monkeypatch.setattr(stages._Group, "run", cut_short)
    s = load_scenario(_trunk_case(16))
    out = stages.solve_hubs(s, ["H"], 30.0, None, 1, None)
    joint = out["joint"]
    assert joint.objective == pytest.approx(_best_by_hand(16))
    assert joint.bound == pytest.approx(_best_by_hand(16))
    assert joint.stats["bound_from_trunk_rounding"] == 1.0
    assert not any(k.startswith("bound_from_") and k != "bound_from_trunk_rounding"
                   for k in joint.stats)


def test_the_budget_gives_a_share_and_skips_what_cannot_branch():
    from optimizer.budget import BudgetParams

    p = BudgetParams()
    assert p.trunk_bound_s(4.0) == pytest.approx(2.0)
    assert p.trunk_bound_s(100.0) == pytest.approx(p.trunk_bound_max_s)
    assert p.trunk_bound_s(0.8) == 0.0  # 0.4 s is below the minimum: not run
