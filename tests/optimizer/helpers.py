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
