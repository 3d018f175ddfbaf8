"""The planner's solve process (`services.planner.runner`): a frontier job reports each hub
and each point as job progress while it runs, not only at the end."""

from __future__ import annotations

import math

import pytest

import optimizer
from services.planner.runner import _frontier
from services.planner.worker import summarise
from tests.optimizer.test_frontier import _two_hubs


def test_a_frontier_job_reports_its_hubs_and_points_as_progress() -> None:
    """Two hubs solved apart: the job's progress names each hub as its fronts finish, in
    order (1/2, 2/2), then each county point with its cost, bound and gap; the stored
    document has the same points."""
    heard = []
    s = optimizer.load_scenario(_two_hubs())
    doc, html = _frontier(s, {"frontier": {"points": 3, "fronts": ["single_use"]},
                              "threads": 1}, heard.append)
    labels = [p.label for p in heard if p.label.startswith("frontier:")]
    hubs = [lb for lb in labels if "hub" in lb]
    assert len(hubs) == 2
    assert hubs[0].endswith("(1/2)") and hubs[1].endswith("(2/2)")
    assert {lb.split()[2] for lb in hubs} == {"H01's", "H02's"}
    points = [p for p in heard if p.label.startswith("frontier: single_use")]
    assert len(points) >= len(doc["points"]) >= 2
    assert {round(p.incumbent, 4) for p in points} >= {
        round(q["cost_cny"], 4) for q in doc["points"]}
    for p in points:
        assert math.isfinite(p.incumbent) and p.bound <= p.incumbent + 1e-6
    assert labels.index(hubs[-1]) < labels.index(points[0].label)
    assert "<svg" in html


def test_a_frontier_jobs_wall_clock_covers_the_hubs_solves() -> None:
    """The job's time limit (its wall clock in the job store) is at least what the
    frontier's solves are given: the planner's plan plus, per front, the whole-model
    path's points and ends or the hubs' weighted solves (`limits_per_front`), whichever
    is more. At 2 points a front the hubs take 3.75 limits, more than points + 1."""
    from optimizer.frontier import PLANNER_SHARE
    from optimizer.frontier_hubs import limits_per_front
    from services.planner.app import FrontierOptions, frontier_budget_s

    for points in range(2, 26):
        for fronts in (["single_use"], ["single_use", "co2e"]):
            f = FrontierOptions(points=points, fronts=fronts)
            need = 60.0 * (len(fronts) * max(points + 1, limits_per_front(points))
                           + PLANNER_SHARE)
            assert frontier_budget_s(60.0, f) >= need, (points, fronts)
    assert limits_per_front(2) > 3



def _solved(scenario: dict, options: dict) -> dict:
    """The result a solve process sends back (the worker's path, report included)."""
    import time

    from services.planner.runner import SolveProcess

    proc = SolveProcess(scenario, options)
    try:
        end = time.monotonic() + 120
        while time.monotonic() < end:
            for message in proc.messages(0.5):
                if message[0] == "result":
                    return message[1]
                assert message[0] == "progress", message
        raise AssertionError("no result within 120 s")
    finally:
        proc.close()


@pytest.mark.slow
def test_a_dispatch_job_plans_the_hubs_that_have_a_plan() -> None:
    """The dispatch job's solve leaves out a hub with no plan (no van with a chilled
    compartment for its farm shipments) and plans the other, report and all; any other
    job is infeasible as a whole, as `plan solve` is."""
    from tests.optimizer.test_planner import _two_hubs, _without_chilled_vans

    raw = _without_chilled_vans(_two_hubs(10, 3), ["H02"])
    options = {"time_limit_s": 60, "threads": 2}
    dispatch = _solved(raw, {**options, "dispatch": {"date": "2026-12-08"}})
    assert dispatch["status"] in ("optimal", "feasible", "time_limit"), dispatch["status"]
    assert list(dispatch["stats"]["left_out"]) == ["H02"]
    # the job's summary carries it to the planner's metrics (packloop_dispatch_no_plan)
    assert summarise(dispatch)["left_out"] == dispatch["stats"]["left_out"]
    assert {t["hub_id"] for t in dispatch["trips"]} == {"H01"}
    assert "report_error" not in dispatch
    other = _solved(raw, options)
    assert other["status"] == "infeasible" and not other.get("trips")
