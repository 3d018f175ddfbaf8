"""Shared by the optimiser's tests: the example scenarios and the candidate trips a test
model is built from. Imported by test modules; never a test module itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyomo.environ as pyo
import yaml

from optimizer import (
    Route,
    Scenario,
    active_villages,
    build_model,
    candidate_routes,
    max_stops,
    run_highs,
)

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "scenarios" / "tiny.yaml"
NETWORK = ROOT / "streams" / "data" / "sample_county.json"


def tiny_raw() -> dict[str, Any]:
    """A fresh copy of tiny.yaml as plain data, for a test to vary."""
    return yaml.safe_load(TINY.read_text())


def one_van_raw(demand: list[dict[str, Any]], **van: Any) -> dict[str, Any]:
    """One hub, one village 10 km away by the matrix, one van type (`van` overrides its
    fields), ambient parcels of 10 litres in a 1.20 CNY carton: small enough to reason about
    by hand."""
    return {"name": "t", "horizon_days": 1, "horizon_end": "cyclic",
            "depot": {"id": "COUNTY", "lat": 28.0, "lon": 119.0},
            "hubs": [{"hub_id": "H1", "lat": 28.1, "lon": 119.0}],
            "villages": [{"village_id": "V1", "hub_id": "H1", "lat": 28.2, "lon": 119.0}],
            "classes": [{"class_id": "amb", "litres_per_parcel": 10}],
            "vehicle_types": [{"vehicle_type": "van", "base": "hub",
                               "compartments_litres": {"amb": 1000}, "fixed_cost_cny": 60,
                               "cost_per_km_cny": 1.2, "co2e_per_km_kg": 0.256, **van}],
            "demand": demand,
            "packaging": {"single_use": [{"option_id": "carton", "class_ids": ["amb"],
                                          "cost_cny": 1.2, "waste_grams": 200,
                                          "co2e_kg": 0.24}]},
            "prices": {"carbon_cny_per_kg_co2e": 0.1, "disposal_cny_per_kg": 0.5},
            "routing": {"distance_matrix_km": {"H1": {"V1": 10}, "V1": {"H1": 10}}}}


def routes_for(s: Scenario) -> dict[str, list[Route]]:
    """The candidate trips the planner would offer for `s` (every hub, active villages)."""
    return candidate_routes(s, active_villages(s), max_stops(s))


def joint_lp(s: Scenario, routes: dict[str, list[Route]], hubs: list[str]) -> float:
    """The joint model's LP relaxation, relaxed by Pyomo and solved through run_highs: a
    check on the planner's own relaxation (`stages.relaxation_bound`), which relaxes the
    compiled arrays instead."""
    fresh = build_model(s, routes, hubs=hubs)
    for v in fresh.model.component_data_objects(pyo.Var):
        if v.is_integer():
            v.domain = pyo.NonNegativeReals
    lp = run_highs(fresh.model).objective
    assert lp is not None
    return lp
