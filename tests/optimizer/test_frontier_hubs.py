"""The frontier hub by hub (`optimizer.frontier_hubs`): its county bound is the least, over
every split of ε among the hubs, of the hubs' own lower bounds (checked against a brute
force over splits), it never exceeds the best plan at each point's criterion (a whole-model
solve built here), and with the Lagrangian lines it proves the two-hub front's points."""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo
import pytest

from optimizer import build_model, load_scenario, run_highs
from optimizer.frontier import solve_frontier
from optimizer.frontier_hubs import HubFront, HubPoint, county_bound
from tests.optimizer.helpers import routes_for
from tests.optimizer.plan_checks import check_plan
from tests.optimizer.test_frontier import _grams_expr, _two_hubs

CRIT = "single_use_grams"


def _pt(eps, cost, g, bound):
    return HubPoint(eps, cost, {CRIT: g, "co2e_kg": 0.0}, bound, "optimal", {})


def _hub(b_cost, g_nad, floor, lines, levels):
    """A hub whose least cost is bounded by `b_cost` at criterion `g_nad`, whose criterion
    is at least `floor`, with `lines` (λ, L) and ε solves `levels` (ε, bound)."""
    (e_end, b_end), *inner = sorted(levels)
    return HubFront("H", _pt(None, b_cost, g_nad, b_cost), _pt(e_end, b_end, e_end, b_end),
                    [_pt(e, b, e, b) for e, b in inner], floor, lines)


def _phi(h: HubFront, g: float) -> float:
    """The hub's lower bound at criterion g, as the module's docstring defines it."""
    if g < h.crit_floor - 1e-9:
        return float("inf")
    out = h.cost_end.bound
    for lam, L in h.lines:
        out = max(out, L - lam * g)
    for q in [h.crit_end, *h.interior]:
        if g <= q.eps + 1e-9:
            out = max(out, q.bound)
    return out


def test_county_bound_is_the_least_over_every_split():
    """Two hubs with different costs of cutting the criterion (one steep, one flat, one
    with steps only): the MILP's bound equals a brute force over splits on a fine grid."""
    a = _hub(100.0, 50.0, 10.0, [(2.0, 160.0), (0.5, 120.0)], [(10.0, 140.0), (30.0, 120.0)])
    b = _hub(80.0, 40.0, 0.0, [], [(0.0, 130.0), (20.0, 95.0)])
    for eps in (10.0, 25.0, 40.0, 55.0, 90.0):
        got = county_bound(eps, [a, b], CRIT)
        grid = np.linspace(0.0, 100.0, 20001)
        brute = min(_phi(a, g) + _phi(b, eps - g) for g in grid if eps - g >= 0)
        assert got == pytest.approx(brute, abs=0.02), eps


def _eps_optimum(s, front: str, eps: float) -> float:
    """The least cost of a plan with at most `eps` of the front's criterion, one model of
    all hubs built here (single-use grams: its own sum), solved to optimality."""
    b = build_model(s, routes_for(s), mode="joint")
    crit = _grams_expr(b, s) if front == "single_use" else b.model.co2e_kg
    b.model.cap = pyo.Constraint(expr=crit <= eps + 1e-6 * max(1.0, eps))
    r = run_highs(b.model, mip_gap=0.0)
    assert r.objective is not None
    return r.objective


def test_two_hub_points_are_valid_and_proven_by_the_lines():
    """Each point of the two-hub fronts is a complete plan meeting its ε, no cheaper than
    the best such plan, and its bound no higher; the hubs' Lagrangian lines prove every
    point (without them the step bounds of the hubs' ε solves left 0.6-1.2 % gaps)."""
    s = load_scenario(_two_hubs())
    heard: list[tuple[str, int, int]] = []
    f = solve_frontier(s, points=5, mip_gap=1e-6, on_hub=lambda *a: heard.append(a))
    assert f.stats["by_hub"] is True
    assert sorted(h for h, _k, _n in heard) == ["H01", "H02"]
    assert sorted(k for _h, k, _n in heard) == [1, 2]
    for front in ("single_use", "co2e"):
        pts = f.front(front)
        assert len(pts) >= 4, front
        for p in pts:
            check_plan(p.result.plan, s, p.result.kpis)
            assert set(p.result.plan["hubs"]) == {"H01", "H02"}
            best = _eps_optimum(s, front, p.criterion())
            assert p.cost_cny >= best - 1e-6 * best
            assert p.result.bound <= best + 1e-6 * best
            assert p.result.gap <= 1e-5, (front, p.role, p.result.gap)


def test_without_by_hub_the_whole_model_gives_the_same_front():
    """`by_hub=False` keeps the whole-county model (the fallback when the county fleet links
    the hubs): the same costs at the same criterion values on this separable case."""
    s = load_scenario(_two_hubs())
    a = solve_frontier(s, points=4, mip_gap=1e-6, fronts=("single_use",))
    b = solve_frontier(s, points=4, mip_gap=1e-6, fronts=("single_use",), by_hub=False)
    assert a.stats["by_hub"] is True and "by_hub" not in b.stats
    ka = sorted((round(p.criterion(), 3), round(p.cost_cny, 4)) for p in a.points)
    kb = sorted((round(p.criterion(), 3), round(p.cost_cny, 4)) for p in b.points)
    assert ka == kb


def _fp(role: str, cost: float, co2e: float):
    from optimizer.frontier import FrontierPoint
    from optimizer.result import PlanResult

    kpis = {"cost_cny": {"total": cost}, "co2e_kg": {"total": co2e}, "single_use_grams": 0.0}
    return FrontierPoint("co2e", role, None, PlanResult(
        status="feasible", objective=cost, bound=None, gap=None, plan={}, kpis=kpis))


def test_the_ends_are_the_best_points_kept():
    """As on the county week's CO2e front: the hubs' CO2e solves found plans cheaper than
    the planner's least-cost plan and lower in CO2e, which then is dominated and dropped;
    the cheapest point kept becomes the cost-optimal end and the least-CO2e one the other
    end (both were labelled interior, and the ends named dropped plans)."""
    from optimizer.frontier import _non_dominated
    from optimizer.frontier_hubs import _ends

    pts = [_fp("cost_optimal", 348_405.6, 61_025.7), _fp("co2e_optimal", 348_060.7, 60_953.8),
           _fp("interior", 347_952.6, 60_935.6), _fp("interior", 347_853.8, 60_921.3),
           _fp("interior", 347_854.2, 60_920.4)]
    kept, n_drop = _non_dominated(pts)
    assert n_drop == 3
    kept, cheap, low = _ends(kept, "co2e")
    assert (cheap.role, cheap.cost_cny) == ("cost_optimal", 347_853.8)
    assert (low.role, low.co2e_kg) == ("co2e_optimal", 60_920.4)
    assert [p.role for p in kept] == ["cost_optimal", "co2e_optimal"]
    one, cheap, low = _ends([_fp("interior", 1.0, 1.0)], "co2e")
    assert cheap is low and one[0].role == "cost_optimal"


def test_a_hub_with_nothing_to_trade_keeps_its_least_cost_plan():
    """Hub H02 ships only chilled parcels, which go in boxes at the least cost already: its
    range is empty (it had been solved at a level below its own start, and the lines' λ grid
    divided by its zero grams). Its least-cost plan is its part of every point, and the
    points stay valid and proven."""
    raw = _two_hubs()
    for d in raw["demand"]:
        if d["village_id"].startswith("H02") and d.get("direction", "down") == "down":
            d["class_id"] = "chilled"
    s = load_scenario(raw)
    f = solve_frontier(s, points=4, mip_gap=1e-6, fronts=("single_use",))
    assert f.stats["by_hub"] is True
    h02 = [q for q in f.stats["solves"] if q["label"].startswith("H02:")]
    assert [q["label"].split(":")[-1] for q in h02] == ["cost_end", "min", "min_cost"]
    pts = f.front("single_use")
    assert len(pts) >= 3
    for p in pts:
        check_plan(p.result.plan, s, p.result.kpis)
        best = _eps_optimum(s, "single_use", p.criterion())
        assert p.cost_cny >= best - 1e-6 * best
        assert p.result.bound <= best + 1e-6 * best
        assert p.result.gap <= 1e-5, (p.role, p.result.gap)
