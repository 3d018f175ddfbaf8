"""packloop's planner optimiser: joint cold-chain consolidation and packaging reuse.

A library: it takes settings as arguments, never reads the service configuration, and never
imports `services`. Callers import the names below from `optimizer` itself; the modules
behind them may move.
"""

from optimizer.cuts import capacity_cover_rows
from optimizer.cvrp import solve_cvrp
from optimizer.factors import Factor, FactorError, FactorSet, load_factors
from optimizer.frontier import Frontier, FrontierError, FrontierPoint, solve_frontier
from optimizer.marginal import marginal_values
from optimizer.model import BuiltModel, build_model
from optimizer.network_scenario import scenario_from_network
from optimizer.planner import solve
from optimizer.report import baseline_bars_svg, report_seconds, route_map_svg, write_report
from optimizer.result import PlanResult, PlanStatus
from optimizer.routes import DistanceOracle, Route, active_villages, candidate_routes, max_stops
from optimizer.scenario import Scenario, ScenarioError, load_scenario, scenario_json_schema
from optimizer.solver import (
    Progress,
    ProgressFn,
    SolveResult,
    compile_model,
    make_highs,
    run_highs,
)
from optimizer.trips import ALL, Mode, TripType, compatible_compartments, vehicle_co2e_per_km
from optimizer.vrplib import CvrpInstance, parse_vrp, read_sol, scenario_from_vrp
from optimizer.whatif import WhatIf, WhatIfError, what_if

__all__ = [
    # planning a scenario: what the services and the demo call
    "Factor",
    "FactorError",
    "FactorSet",
    "PlanResult",
    "PlanStatus",
    "Progress",
    "ProgressFn",
    "Scenario",
    "ScenarioError",
    "baseline_bars_svg",
    "load_factors",
    "load_scenario",
    "report_seconds",
    "route_map_svg",
    "scenario_from_network",
    "scenario_json_schema",
    "solve",
    "write_report",
    # decisions: what a target costs, what-ifs, what one more is worth
    "Frontier",
    "FrontierError",
    "FrontierPoint",
    "WhatIf",
    "WhatIfError",
    "marginal_values",
    "solve_frontier",
    "what_if",
    # CVRPLIB instances: single-visit scenarios and their own solver
    "CvrpInstance",
    "parse_vrp",
    "read_sol",
    "scenario_from_vrp",
    "solve_cvrp",
    # one model at a time: benchmarks and tests that build and solve a single model
    "ALL",
    "BuiltModel",
    "DistanceOracle",
    "Mode",
    "Route",
    "SolveResult",
    "TripType",
    "active_villages",
    "build_model",
    "candidate_routes",
    "capacity_cover_rows",
    "compatible_compartments",
    "compile_model",
    "make_highs",
    "max_stops",
    "run_highs",
    "vehicle_co2e_per_km",
]
