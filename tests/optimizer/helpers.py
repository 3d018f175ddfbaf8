"""Shared by the optimiser's tests: the example scenarios and the candidate trips a test
model is built from. Imported by test modules; never a test module itself."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from optimizer import Route, Scenario, active_villages, candidate_routes, max_stops

ROOT = Path(__file__).resolve().parents[2]
TINY = ROOT / "examples" / "scenarios" / "tiny.yaml"
NETWORK = ROOT / "streams" / "data" / "sample_county.json"


def tiny_raw() -> dict[str, Any]:
    """A fresh copy of tiny.yaml as plain data, for a test to vary."""
    return yaml.safe_load(TINY.read_text())


def routes_for(s: Scenario) -> dict[str, list[Route]]:
    """The candidate trips the planner would offer for `s` (every hub, active villages)."""
    return candidate_routes(s, active_villages(s), max_stops(s))
