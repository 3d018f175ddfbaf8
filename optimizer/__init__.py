"""packloop's planner optimiser: joint cold-chain consolidation and packaging reuse.

A library: it takes settings as arguments, never reads the service configuration, and never
imports `services`.
"""

from optimizer.scenario import Scenario, ScenarioError, load_scenario, scenario_json_schema
from optimizer.planner import PlanResult, solve

__all__ = [
    "PlanResult",
    "Scenario",
    "ScenarioError",
    "load_scenario",
    "scenario_json_schema",
    "solve",
]
