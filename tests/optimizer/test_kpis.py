"""KPIs recomputed from a plan: figures checked against hand computations on tiny.yaml."""

from __future__ import annotations

from typing import Any

import pytest

from optimizer import load_scenario
from optimizer.kpis import compute_kpis, reductions
from tests.optimizer.helpers import tiny_raw


def _kpis(single_use: float, cost: float = 100.0) -> dict[str, Any]:
    return {"cost_cny": {"total": cost}, "km": 10.0, "co2e_kg": {"total": 5.0},
            "single_use_grams": single_use}


def test_a_reduction_from_nothing_is_not_zero_per_cent() -> None:
    """A joint plan using 8.7 kg of single-use packaging against a baseline using none
    read 0 % ("no difference"); the ratio has no value there."""
    cut = reductions(_kpis(8742.9, cost=90.0), _kpis(0.0))
    assert cut["single_use_grams"] is None
    assert cut["cost"] == pytest.approx(0.1) and cut["km"] == 0.0
    assert reductions(_kpis(0.0), _kpis(0.0))["single_use_grams"] == 0.0
    assert reductions(_kpis(50.0), _kpis(200.0))["single_use_grams"] == pytest.approx(0.75)


def test_return_utilisation_counts_a_trunk_legs_recyclables() -> None:
    """A trunk leg bringing 92 kg of recyclables up to the county: its return load is their
    litres at the hub's bulkiest litres per kg (8 L/kg in tiny.yaml), as its return row
    counts them; they were left out of the figure."""
    s = load_scenario(tiny_raw())
    trunk = {"day": 0, "hub_id": "H01", "kind": "trunk", "vehicle_type": "trunk_reefer",
             "stops": ["H01"], "km": 20.0,
             "loads": {"down_litres": {}, "up_litres": {}, "empties": {},
                       "recyclables_grams": 92_000.0}, "stop_loads": {}}
    plan = {"trips": [trunk], "packaging": [], "containers": [], "recyclables": []}
    kpis = compute_kpis(plan, s)
    # 92 kg × 8 L/kg = 736 L of the reefer truck's 8,000 + 6,000 L
    assert kpis["vehicle_utilisation"]["return"] == pytest.approx(736 / 14_000)
    assert kpis["vehicle_utilisation"]["outbound"] == 0.0


def test_containers_added_to_the_pools_are_reported_beside_those_bought() -> None:
    """`containers_bought` counts the containers bought during the horizon only; the pool
    expansion (a buyer's order before it) was in no KPI."""
    s = load_scenario(tiny_raw())
    plan = {"trips": [], "packaging": [], "recyclables": [],
            "containers": [{"hub_id": "H01", "container_type": "insulated_box",
                            "expansion": 12.0, "days": [{"bought": 2.0,
                                                         "returned_to_pool": 0.0}]}]}
    kpis = compute_kpis(plan, s)
    assert kpis["containers_bought"] == 2.0
    assert kpis["containers_added_to_pools"] == {"insulated_box": 12.0}
