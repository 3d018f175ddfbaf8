"""packloop's planner optimiser: joint cold-chain consolidation and packaging reuse.

A library: it takes settings as arguments, never reads the service configuration, and never
imports `services`.
"""

from optimizer.factors import Factor, FactorSet, load_factors
from optimizer.network_scenario import scenario_from_network
from optimizer.planner import PlanResult, solve
from optimizer.report import write_report
from optimizer.scenario import Scenario, ScenarioError, load_scenario, scenario_json_schema
from optimizer.solver import Progress

__all__ = [
    "Factor",
    "FactorSet",
    "PlanResult",
    "Progress",
    "Scenario",
    "ScenarioError",
    "load_factors",
    "load_scenario",
    "scenario_from_network",
    "scenario_json_schema",
    "solve",
    "write_report",
]
