"""The frontier hub by hub (`optimizer.frontier_hubs`): its county bound is the least, over
every split of ε among the hubs, of the hubs' own lower bounds (checked against a brute
force over splits), it never exceeds the best plan at each point's criterion (a whole-model
solve built here), and with the Lagrangian lines it proves the two-hub front's points."""

from __future__ import annotations

import dataclasses

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


def test_a_point_is_bounded_at_the_criterion_its_plans_reach():
    """Three hubs at their proven least (1,000 kg each, the end's cost bound 200) whose
    levels sit a millionth above it (`LEX_REL`), the next step (up to 1,500 kg) bounded at
    120: at the levels' sum two hubs' millionths let the third onto that step (520); at
    the criterion the plans reach every hub stays at its least (600)."""
    from optimizer.frontier_hubs import point_bound
    from optimizer.frontier_model import LEX_REL, _cap_level

    least = 1e6
    level = _cap_level(least, LEX_REL)
    parts = [_hub(50.0, 2e6, least, [], [(level, 200.0), (1.5e6, 120.0)]) for _ in range(3)]
    qs = [dataclasses.replace(h.crit_end, criteria={CRIT: least, "co2e_kg": 0.0})
          for h in parts]
    assert county_bound(3 * level, parts, CRIT) == pytest.approx(520.0)
    assert point_bound(qs, parts, CRIT) == pytest.approx(600.0)
    # the plans at their level: the millionths let one hub onto the next step, unless a
    # bound holds a little above the level (`TRUNK_WIDEN`, the far end's trunk bound)
    at_level = [dataclasses.replace(q, criteria={CRIT: level, "co2e_kg": 0.0}) for q in qs]
    assert point_bound(at_level, parts, CRIT) == pytest.approx(520.0)
    for h in parts:
        h.steps.append((least * (1 + 1e-4), 199.0))
    assert point_bound(at_level, parts, CRIT) == pytest.approx(599.0)  # one hub onto 199


def _eps_optimum(s, front: str, eps: float) -> float:
    """The least cost of a plan with at most `eps` of the front's criterion, one model of
    all hubs built here (single-use grams: its own sum), solved to optimality."""
    b = build_model(s, routes_for(s), mode="joint")
    crit = _grams_expr(b, s) if front == "single_use" else b.model.co2e_kg
    b.model.cap = pyo.Constraint(expr=crit <= eps + 1e-6 * max(1.0, eps))
    r = run_highs(b.model, mip_gap=0.0)
    assert r.objective is not None
    return r.objective


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
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


def _capped_trunk_case() -> dict:
    """`test_trunk_bound`'s one-truck case with a criterion: a bag (20 L, free) leaves 100 g
    of single-use waste, a box (10 L, 15 CNY) and a crate (20 L, 1 CNY) none."""
    from tests.optimizer.test_trunk_bound import _trunk_case

    case = _trunk_case(16)
    options = case["packaging"]["single_use"]
    options[0]["waste_grams"] = 100
    options.append({"option_id": "crate", "class_ids": ["ambient"], "litres_per_parcel": 20,
                    "cost_cny": 1, "waste_grams": 0, "co2e_kg": 0})
    return case


def _capped_best_by_hand(parcels: int, grams: float) -> float:
    """min 100 trucks + 1 a crate + 15 a box over whole trucks, with at most `grams` of
    bags."""
    return min(100.0 * k + 1.0 * crates + 15.0 * (parcels - bags - crates)
               for bags in range(parcels + 1) for crates in range(parcels + 1 - bags)
               for k in range(11)
               if 100 * bags <= grams and 100 * k >= 20 * (bags + crates)
               + 10 * (parcels - bags - crates))


@pytest.mark.parametrize("grams", [600.0, 0.0, 1000.0])
def test_trunk_bound_under_a_criterion_cap_is_the_whole_truck_optimum(grams):
    """At most 6 bags (600 g): the relaxation packs 6 bags and 10 crates and runs 3.2 trucks
    (330 CNY); every plan runs whole trucks, best 3 with two parcels boxed (338). HiGHS's
    bound at a tight ε had stayed near the relaxation on the county week's hubs; the trunk
    rounding bound under the ε row is the hand-computed optimum, which HiGHS confirms."""
    from optimizer.frontier_model import WholeModel

    s = load_scenario(_capped_trunk_case())
    best = _capped_best_by_hand(16, grams)
    sv = WholeModel(s, None, 0.0, 1, None, hubs=["H"])
    bound = sv.trunk_bound("t", (CRIT, grams), 30.0)
    assert bound == pytest.approx(best)
    assert sv.solves[-1]["relaxation"] < best - 1  # the relaxation alone says less
    r = sv.solve("check", sv.expr("cost"), cap=(CRIT, grams))
    assert r.status == "optimal" and r.objective == pytest.approx(best)


def test_the_least_criterion_end_is_bounded_by_its_trunk_rounding(monkeypatch):
    """A hub's least-criterion end: no bags (0 g); 16 crates fill 3.2 trucks in the
    relaxation (336 CNY) and every plan runs 3 with two parcels boxed (344). HiGHS proves
    this small case at once, so its least-cost solve at the end is made to stop as on a
    county hub, with the relaxation's bound: the end's bound is then the trunk rounding
    bound under the end's criterion row (at the least cost's criterion, 1,400 g, it would be
    330). A solve HiGHS proves gets no trunk bound."""
    import dataclasses

    from optimizer import solve
    from optimizer.frontier_hubs import hub_fronts
    from optimizer.frontier_model import WholeModel

    s = load_scenario(_capped_trunk_case())
    first = solve(s, mip_gap=0.0, baselines=False, marginals=False)
    assert first.objective == pytest.approx(_capped_best_by_hand(16, 1600.0))
    end = _capped_best_by_hand(16, 0.0)
    (fr,) = hub_fronts(s, "H", ("single_use",), first.plan, first.bound, 4, None, None,
                       None, 1)
    assert fr.crit_end.bound == pytest.approx(end)
    assert not [q for q in fr.solves if q["status"] == "trunk_rounding"]
    # the least criterion searched the LP's neighbourhood first (`lp_neighbourhood`; here
    # its start, the LP on the least-cost plan's trucks, is the least already)
    (low,) = [q for q in fr.solves if q["label"].endswith(":min")]
    assert low["lp_neighbourhood_s"] > 0 and low["lp_neighbourhood_gain"] == 0.0

    proven = WholeModel.solve

    def cut_short(self, label, objective, **kw):
        r = proven(self, label, objective, **kw)
        if label.endswith(":min_cost"):
            r = dataclasses.replace(r, status="time_limit", bound=336.0)
        return r

    monkeypatch.setattr(WholeModel, "solve", cut_short)
    (fr,) = hub_fronts(s, "H", ("single_use",), first.plan, first.bound, 4, None, None,
                       None, 1)
    assert fr.crit_end.criteria[CRIT] == pytest.approx(0.0, abs=1e-6)
    assert fr.crit_end.cost == pytest.approx(end)
    trunk = [q for q in fr.solves if q["status"] == "trunk_rounding"]
    assert len(trunk) == 1
    assert trunk[0]["bound"] == pytest.approx(end)
    assert trunk[0]["relaxation"] == pytest.approx(336.0)
    assert fr.crit_end.bound == pytest.approx(end)
