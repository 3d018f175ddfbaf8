"""The optimiser's public surface: what `optimizer/__init__.py` exports, pinned by name."""

from __future__ import annotations

import types

import optimizer

EXPORTED = {
    "ALL", "BuiltModel", "CvrpInstance", "DistanceOracle", "Factor", "FactorError",
    "FactorSet", "Mode", "PlanResult", "PlanStatus", "Progress", "ProgressFn", "Route",
    "Scenario", "ScenarioError", "SolveResult", "TripType", "active_villages",
    "baseline_bars_svg", "build_model", "candidate_routes", "capacity_cover_rows",
    "compatible_compartments", "compile_model", "load_factors", "load_scenario",
    "make_highs", "max_stops", "parse_vrp", "read_sol", "report_seconds", "route_map_svg",
    "run_highs", "scenario_from_network", "scenario_from_vrp", "scenario_json_schema",
    "solve", "solve_cvrp", "vehicle_co2e_per_km", "write_report",
    "Frontier", "FrontierError", "FrontierPoint", "WhatIf", "WhatIfError", "marginal_values",
    "solve_frontier", "what_if",
}


def test_exported_names_are_pinned():
    """Adding or dropping a public name is a deliberate change: it has to change this list."""
    assert len(optimizer.__all__) == len(set(optimizer.__all__)), "a name listed twice"
    assert set(optimizer.__all__) == EXPORTED


def test_every_public_name_of_the_package_is_exported():
    """Whatever `optimizer` offers without an underscore is in __all__ (submodules aside),
    and every name in __all__ exists."""
    offered = {name for name, value in vars(optimizer).items()
               if not name.startswith("_") and not isinstance(value, types.ModuleType)}
    assert offered == set(optimizer.__all__)
