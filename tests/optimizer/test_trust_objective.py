"""The objective a solve reports is the cost of the values it returns (issue #12: "the
reported objective can disagree with the plan")."""

from __future__ import annotations

import pyomo.environ as pyo
import pytest

import optimizer
from optimizer import solver, stages
from optimizer.baselines import fix_routing
from optimizer.routes import hub_routes
from tests.optimizer.helpers import tiny_raw
from tests.optimizer.plan_checks import check_result, check_stage


def _cover_model() -> pyo.ConcreteModel:
    """min 5a + x + 7y + z  s.t.  4a + x + y + 3z ≥ 9,  a ∈ {0, 1}, x ≤ 8, y ≤ 3, z ≤ 2,
    started at (a, x, y, z) = (0, 4, 3, 1), which covers 10 and costs 26.

    By hand: per unit of cover, z costs 1/3, x 1, a 5/4 and y 7, so the optimum takes z = 2
    (6 units for 2) and x = 3 (3 units for 3): cost 5. HiGHS 1.16 with presolve on, given
    that start, reports objective 5 = bound, "optimal", and returns the start (cost 26)."""
    m = pyo.ConcreteModel()
    m.a = pyo.Var(domain=pyo.Binary, initialize=0)
    m.x = pyo.Var(bounds=(0, 8), initialize=4)
    m.y = pyo.Var(bounds=(0, 3), initialize=3)
    m.z = pyo.Var(bounds=(0, 2), initialize=1)
    m.cover = pyo.Constraint(expr=4 * m.a + m.x + m.y + 3 * m.z >= 9)
    m.cost = pyo.Objective(expr=5 * m.a + m.x + 7 * m.y + m.z)
    return m


def test_warm_started_solve_reports_the_cost_of_its_own_values():
    """The instance where HiGHS's figure and its solution disagree: the result is the true
    optimum, its objective is the cost of the values loaded into the model, and the values
    are the optimum's (before, `run_highs` reported 5 with the start's values, costing 26)."""
    m = _cover_model()
    r = solver.run_highs(m, warm_start=True, threads=1, mip_gap=0.0)
    assert r.status == "optimal"
    assert pyo.value(m.cost) == pytest.approx(r.objective, rel=1e-9)
    assert r.objective == pytest.approx(5.0, rel=1e-9)
    assert (pyo.value(m.x), pyo.value(m.z)) == pytest.approx((3.0, 2.0))


def _injected_disagreement(monkeypatch) -> list[dict]:
    """Make HiGHS's first answer claim an objective 1 CNY below the cost of its values;
    return the calls `_run_once` receives (start given or not, options)."""
    real = solver._run_once
    calls: list[dict] = []

    def fake(comp, start, **kw):
        run = real(comp, start, **kw)
        calls.append({"start": start is not None, "options": dict(kw.get("options") or {})})
        if len(calls) == 1 and run.highs_objective is not None:
            run.highs_objective -= 1.0
        return run

    monkeypatch.setattr(solver, "_run_once", fake)
    return calls


def test_disagreement_is_solved_again_without_presolve_or_start(monkeypatch):
    """The guard on its own: when HiGHS's objective differs from c·x + offset of its values,
    the model is solved again with presolve off and no start, and the event is recorded."""
    calls = _injected_disagreement(monkeypatch)
    m = _cover_model()
    m.x.set_value(3.0)  # started at the optimum, HiGHS's own answer is right
    m.y.set_value(0.0)
    m.z.set_value(2.0)
    r = solver.run_highs(m, warm_start=True, threads=1, mip_gap=0.0)
    assert [c["start"] for c in calls] == [True, False]
    assert calls[1]["options"]["presolve"] == "off"
    assert r.rechecks["objective_resolves"] == 1
    assert r.rechecks["objective_mismatch"] == pytest.approx(1.0, rel=1e-6)
    assert r.objective == pytest.approx(5.0) and pyo.value(m.cost) == pytest.approx(5.0)


def test_agreement_costs_no_second_solve(monkeypatch):
    """Without a disagreement HiGHS runs once and nothing is recorded."""
    calls: list[bool] = []
    real = solver._run_once
    monkeypatch.setattr(solver, "_run_once",
                        lambda comp, start, **kw: calls.append(True) or real(comp, start, **kw))
    m = _cover_model()
    r = solver.run_highs(m, threads=1, mip_gap=0.0)
    assert calls == [True] and r.rechecks == {}
    assert r.objective == pytest.approx(5.0)


def test_recheck_reaches_the_plan_stats(monkeypatch):
    """A recheck inside a hub's joint solve shows in the plan's stats, and the plan still
    passes every check (its objective equal to the cost recomputed from it)."""
    s = optimizer.load_scenario(tiny_raw())
    routes = hub_routes(s, ["H01"])
    _su, b1 = stages.run_stage(s, routes, ["H01"], "single_use", 30, 0.0, 1, None)
    _seq, b2 = stages.run_stage(s, routes, ["H01"], "routing_first", 30, 0.0, 1, None,
                                prepare=lambda b: fix_routing(b, b1))
    _injected_disagreement(monkeypatch)
    joint, _ = stages.run_stage(s, routes, ["H01"], "joint", 30, 0.0, 1, None, warm_from=b2)
    assert joint.stats["objective_resolves"] == 1
    check_stage(joint, s, ["H01"])
    monkeypatch.undo()
    res = optimizer.solve(s, time_limit_s=30, threads=1)
    check_result(res, s)
