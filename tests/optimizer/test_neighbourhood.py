"""Day-window neighbourhood search (optimizer.neighbourhood): it finds what its windows can
reach, never returns a plan worse than its start, and its plans pass every plan check."""

from __future__ import annotations

import itertools

import numpy as np
import pyomo.environ as pyo
import pytest

from optimizer import load_scenario
from optimizer.baselines import as_joint, fix_routing
from optimizer.neighbourhood import (
    MIN_SEARCH_S,
    day_windows,
    drop_trips,
    guided_order,
    search_day_windows,
    search_families,
    trip_day_polish,
)
from optimizer.plan import extract_plan
from optimizer.solver import compile_model, objective_of, run_highs
from optimizer.stages import StageOutcome, run_stage
from tests.optimizer.helpers import routes_for
from tests.optimizer.plan_checks import check_stage

COST = (10.0, 7.0, 9.0, 8.0)  # a trip on day d
CAP = 10.0
NEED = {0: 4.0, 2: 6.0}  # litres fixed to a day
FLEX = 13.0  # litres that may go on any day


def _toy() -> tuple[pyo.ConcreteModel, list[int]]:
    """Four days; y_d whole trips of 10 L at COST[d]; the fixed needs on their days and
    FLEX litres spread freely over the days. Returns the model and a feasible start (trip
    counts) that runs everything on day 0."""
    m = pyo.ConcreteModel()
    m.D = pyo.RangeSet(0, 3)
    m.y = pyo.Var(m.D, domain=pyo.NonNegativeIntegers, bounds=(0, 5))
    m.f = pyo.Var(m.D, domain=pyo.NonNegativeReals)
    m.all = pyo.Constraint(expr=sum(m.f[d] for d in m.D) == FLEX)
    m.cap = pyo.Constraint(m.D, rule=lambda m, d: NEED.get(d, 0.0) + m.f[d] <= CAP * m.y[d])
    m.cost = pyo.Objective(expr=sum(COST[d] * m.y[d] for d in m.D))
    return m, [2, 0, 1, 0]


def _by_hand() -> float:
    """Brute force over the trip counts: enough capacity for the fixed needs on their days
    and for FLEX in all the room left."""
    best = float("inf")
    for y in itertools.product(range(6), repeat=4):
        room = [CAP * y[d] - NEED.get(d, 0.0) for d in range(4)]
        if min(room) >= 0 and sum(room) >= FLEX:
            best = min(best, sum(c * n for c, n in zip(COST, y, strict=True)))
    return best


def _start(m: pyo.ConcreteModel, comp, trips: list[int]) -> list[float]:
    """The start as column values: the trips given, FLEX on day 0 beyond what fits."""
    f = {0: min(FLEX, CAP * trips[0] - NEED.get(0, 0.0))}
    f[2] = FLEX - f[0]
    return _columns(m, comp, trips, [f.get(d, 0.0) for d in range(4)])


def _columns(m: pyo.ConcreteModel, comp, trips, flex) -> list[float]:
    return [float(trips[v.index()] if v.parent_component() is m.y else flex[v.index()])
            for v in comp.columns]


def test_windows_cover_every_day_and_wrap_when_cyclic():
    assert day_windows(4, 2, cyclic=True) == [
        frozenset({0, 1}), frozenset({1, 2}), frozenset({2, 3}), frozenset({3, 0})]
    assert day_windows(4, 2, cyclic=False) == [
        frozenset({0, 1}), frozenset({1, 2}), frozenset({2, 3})]
    assert day_windows(3, 5) == [frozenset({0, 1, 2})]


def test_two_day_windows_reach_the_optimum_one_day_windows_miss():
    """From 2 trips on day 0 and 1 on day 2 (29 CNY), the optimum (by brute force, 26 CNY)
    trades one of day 0's trips for one on the cheap day 1. No single day's change can do
    it — day 1 may only add a trip once another day gives its litres up — so one-day
    windows stay at the start."""
    m, trips = _toy()
    comp = compile_model(m)
    start = _start(m, comp, trips)
    first = objective_of(comp, np.array(start))
    assert first == pytest.approx(29.0)
    day_of = [v.index() if v.parent_component() is m.y else None for v in comp.columns]
    best = _by_hand()
    assert best < first - 1
    two = search_day_windows(comp, start, day_of, day_windows(4, 2), 20.0)
    assert two.objective == pytest.approx(best)
    assert objective_of(comp, two.values) == pytest.approx(best)
    assert two.improved >= 1
    one = search_day_windows(comp, start, day_of, day_windows(4, 1), 20.0)
    assert one.objective == pytest.approx(first)
    assert one.improved == 0
    # the model's bounds are left as they were
    assert list(comp.lp.col_upper_) == [5.0 if v.is_integer() else np.inf for v in comp.columns]


def test_pinned_loads_of_days_outside_the_window_stay_as_the_start_has_them():
    """FLEX = 10 L, all on day 0's two trips (29 CNY with day 2's trip). The window of days
    0-1 alone: with day 2's litres free it drops a trip of day 0 and puts 4 L in day 2's
    spare room (19 CNY, by hand: one trip on day 0 holds 6 L besides its need, day 2's trip
    4 L besides its own); with the loads of days outside the window pinned (as the joint
    stage's day windows pin the trips' loads) day 2 keeps carrying nothing, so the window
    must run day 1's 7 CNY trip instead (26 CNY), and day 2's load is the start's."""
    m = pyo.ConcreteModel()
    m.D = pyo.RangeSet(0, 3)
    m.y = pyo.Var(m.D, domain=pyo.NonNegativeIntegers, bounds=(0, 5))
    m.f = pyo.Var(m.D, domain=pyo.NonNegativeReals)
    m.all = pyo.Constraint(expr=sum(m.f[d] for d in m.D) == 10.0)
    m.cap = pyo.Constraint(m.D, rule=lambda m, d: NEED.get(d, 0.0) + m.f[d] <= CAP * m.y[d])
    m.cost = pyo.Objective(expr=sum(COST[d] * m.y[d] for d in m.D))
    comp = compile_model(m)
    start = _columns(m, comp, [2, 0, 1, 0], [10.0, 0.0, 0.0, 0.0])
    assert objective_of(comp, np.array(start)) == pytest.approx(29.0)
    day_of = [v.index() if v.parent_component() is m.y else None for v in comp.columns]
    loads = [v.index() if v.parent_component() is m.f else None for v in comp.columns]
    window = [frozenset({0, 1})]
    free = search_day_windows(comp, start, day_of, window, 20.0)
    assert free.objective == pytest.approx(19.0)
    pinned = search_day_windows(comp, start, day_of, window, 20.0, pinned_day_of_col=loads)
    assert pinned.objective == pytest.approx(26.0)
    f2 = next(k for k, v in enumerate(comp.columns) if v.parent_component() is m.f
              and v.index() == 2)
    assert pinned.values[f2] == pytest.approx(0.0)
    # the model's bounds are left as they were
    assert list(comp.lp.col_lower_) == [0.0] * len(comp.columns)


def test_a_unit_over_the_whole_horizon_reaches_what_day_windows_cannot():
    """Costs 10, 9, 9, 7 and windows of two days without wrapping (a boundary horizon): from
    2 trips on day 0 and 1 on day 2 (29 CNY) the windows reach 28 (day 0's second trip
    moves to day 1) and stall, since the optimum (by brute force, 26 CNY) moves that trip on
    to day 3, two days away. One window over the whole horizon (the unit family) gets there;
    without that family the search stays at 28."""
    cost = (10.0, 9.0, 9.0, 7.0)
    m, trips = _toy()
    m.cost.deactivate()
    m.cost2 = pyo.Objective(expr=sum(cost[d] * m.y[d] for d in m.D))
    comp = compile_model(m)
    start = _start(m, comp, trips)
    assert objective_of(comp, np.array(start)) == pytest.approx(29.0)
    best = min(sum(c * n for c, n in zip(cost, y, strict=True))
               for y in itertools.product(range(6), repeat=4)
               if min(CAP * y[d] - NEED.get(d, 0.0) for d in range(4)) >= 0
               and sum(CAP * y[d] - NEED.get(d, 0.0) for d in range(4)) >= FLEX)
    assert best == pytest.approx(26.0)
    day_of = [v.index() if v.parent_component() is m.y else None for v in comp.columns]
    unit = [0 if v.parent_component() is m.y else None for v in comp.columns]
    days = day_windows(4, 2, cyclic=False)
    alone = search_families(comp, start, [(day_of, days)], 20.0)
    assert alone.objective == pytest.approx(28.0)
    both = search_families(comp, start, [(day_of, days), (unit, [frozenset({0})])], 20.0)
    assert both.objective == pytest.approx(best)
    assert objective_of(comp, both.values) == pytest.approx(best)
    assert both.start_objective == pytest.approx(29.0) and both.improved >= 2


def test_a_search_never_returns_a_worse_plan():
    """Started at the optimum, every window finds nothing cheaper: the start comes back."""
    m, _trips = _toy()
    comp = compile_model(m)
    y = min((y for y in itertools.product(range(6), repeat=4)
             if all(CAP * y[d] >= NEED.get(d, 0.0) for d in range(4))
             and sum(CAP * y[d] - NEED.get(d, 0.0) for d in range(4)) >= FLEX),
            key=lambda y: sum(c * n for c, n in zip(COST, y, strict=True)))
    room = [CAP * y[d] - NEED.get(d, 0.0) for d in range(4)]
    f, left = [], FLEX
    for r in room:
        f.append(min(r, left))
        left -= f[-1]
    start = _columns(m, comp, y, f)
    day_of = [v.index() if v.parent_component() is m.y else None for v in comp.columns]
    out = search_day_windows(comp, start, day_of, day_windows(4, 2), 20.0)
    assert out.objective == pytest.approx(_by_hand())
    assert out.improved == 0
    assert out.windows == 4  # one pass, then it stops at the local optimum


class _Proposes:
    """A sub-MIP solver that ends "feasible" with the plan `propose(start values)`: stands
    in for HiGHS returning something other than an improvement."""

    def __init__(self, real, propose):
        self.real, self.propose, self.start = real, propose, None

    def __getattr__(self, name):
        return getattr(self.real, name)

    def setSolution(self, sol):  # noqa: N802 - HiGHS's name
        self.start = list(sol.col_value)
        self.real.setSolution(sol)

    def getSolution(self):  # noqa: N802 - HiGHS's name
        sol = self.real.getSolution()
        sol.col_value = self.propose(self.start)
        return sol


@pytest.mark.parametrize("what", ["dearer", "cheaper outside the bounds"])
def test_a_proposal_dearer_or_out_of_bounds_is_refused(monkeypatch, what):
    """Each window's answer is checked, not trusted: a dearer plan (one more trip on each
    window's first day) or a cheaper one that breaks a bound (minus one trip) leaves the
    incumbent as it was."""
    import optimizer.neighbourhood as nb

    m, trips = _toy()
    comp = compile_model(m)
    start = _start(m, comp, trips)
    ys = [i for i, v in enumerate(comp.columns) if v.parent_component() is m.y]
    step = 1.0 if what == "dearer" else -1.0

    def propose(vals):
        vals = list(vals)
        vals[ys[1]] += step  # day 1 has no trip in the start: -1 is below its bound 0
        return vals

    real = nb.make_highs
    monkeypatch.setattr(nb, "make_highs", lambda *a: _Proposes(real(*a), propose))
    day_of = [v.index() if v.parent_component() is m.y else None for v in comp.columns]
    out = search_day_windows(comp, start, day_of, day_windows(4, 2), 20.0)
    assert out.windows == 4 and out.improved == 0
    assert out.objective == pytest.approx(objective_of(comp, np.array(start)))
    assert out.values.tolist() == pytest.approx(start)


@pytest.mark.parametrize("name", ["bulky_empties", "non_passive_reusable"])
def test_polish_from_routing_first_reaches_the_joint_optimum(name):
    """A stress scenario's joint model started from its routing-first baseline (trips fixed
    from the single-use plan, where the joint plan runs other trips): the polished values
    are a plan that passes every plan check, and its cost is the joint optimum found by a
    cold solve of the whole model to a 1e-6 gap, well below the start."""
    s = load_scenario(f"examples/scenarios/stress/{name}.yaml")
    hubs = sorted({v.hub_id for v in s.villages})
    routes = routes_for(s)
    _single, b1 = run_stage(s, routes, hubs, "single_use", 30.0, 1e-6, 1, None)
    seq, b = run_stage(s, routes, hubs, "routing_first", 30.0, 1e-6, 1, None,
                       prepare=lambda bb: fix_routing(bb, b1))
    assert seq.objective is not None
    joint, _ = run_stage(s, routes, hubs, "joint", 60.0, 1e-6, 1, None)
    assert joint.status == "optimal" and joint.objective is not None
    assert joint.objective < 0.95 * seq.objective
    as_joint(b)
    comp = compile_model(b.model)
    start = [v.value if v.value is not None else 0.0 for v in comp.columns]
    polish = trip_day_polish(b, s, 1)
    values, stats = polish(comp, start, 30.0)
    obj = objective_of(comp, np.array(values))
    assert stats["search_improved"] >= 1
    assert stats["search_gain_cny"] + stats["drop_gain_cny"] == pytest.approx(
        seq.objective - obj, abs=1e-6)
    assert obj == pytest.approx(joint.objective, rel=1e-6)
    for v, x in zip(comp.columns, values, strict=True):
        v.set_value(x, skip_validation=True)
    check_stage(StageOutcome("feasible", obj, None, extract_plan(b, s)), s, hubs)


def test_joint_stage_searches_when_its_limit_has_room():
    """The joint stage started from a baseline searches windows before HiGHS's own solve
    when its limit is at least MIN_SEARCH_S, and below it only drops trips; either way it
    ends at the optimum of this small scenario."""
    s = load_scenario("examples/scenarios/stress/bulky_empties.yaml")
    hubs = sorted({v.hub_id for v in s.villages})
    routes = routes_for(s)
    seen = {}
    for limit in (MIN_SEARCH_S + 1.0, MIN_SEARCH_S - 1.0):
        _single, b1 = run_stage(s, routes, hubs, "single_use", 30.0, 1e-6, 1, None)
        _seq, b = run_stage(s, routes, hubs, "routing_first", 30.0, 1e-6, 1, None,
                            prepare=lambda bb, b1=b1: fix_routing(bb, b1))
        out, _ = run_stage(s, routes, hubs, "joint", limit, 1e-6, 1, None, warm_from=b)
        seen[limit] = out
    searched, plain = seen[MIN_SEARCH_S + 1.0], seen[MIN_SEARCH_S - 1.0]
    assert searched.stats["search_windows"] >= 1 and searched.stats["search_improved"] >= 1
    assert "search_windows" not in plain.stats and "drop_s" in plain.stats
    assert searched.objective == pytest.approx(plain.objective, rel=1e-6)
    check_stage(searched, s, hubs)


def test_windows_are_tried_where_the_plan_is_furthest_from_the_relaxation():
    """Order by Σ cost × |plan − relaxation| over each window's integer columns, computed by
    hand: day 2's trip (cost 9, off by 1.5) outweighs day 0's (cost 10, off by 0.5); ties keep
    their order; continuous columns do not count."""
    windows = day_windows(4, 1)
    x = np.array([2.0, 0.0, 1.0, 0.0, 7.0])
    guide = np.array([1.5, 0.2, 2.5, 0.0, 0.0])
    cost = np.array([10.0, 7.0, 9.0, 8.0, 100.0])
    is_int = np.array([True, True, True, True, False])
    day = np.array([0, 1, 2, 3, 0])
    order = guided_order(windows, x, guide, cost, is_int, day)
    # scores: day 0: 5.0, day 1: 1.4, day 2: 13.5, day 3: 0.0
    assert order == [frozenset({2}), frozenset({0}), frozenset({1}), frozenset({3})]


def test_polish_searches_days_then_each_unit(monkeypatch):
    """The joint stage's polish hands the search two families: the day windows, and one
    window per unit (villages linked by common routes) whose labels are the milk runs' units;
    trunk legs and non-trip columns carry no label, so they stay as the start has them."""
    from optimizer import build_model, neighbourhood
    from optimizer.cuts import components
    from optimizer.neighbourhood import SearchOutcome
    from tests.optimizer.helpers import TINY

    s = load_scenario(TINY)
    b = build_model(s, routes_for(s), mode="joint")
    comp = compile_model(b.model)
    start = [0.0] * len(comp.columns)
    seen = {}

    def capture(comp_, start_, families, *args, **kwargs):
        seen["families"] = families
        x = np.asarray(start_, dtype=np.float64)
        return SearchOutcome(x, 0.0, 0.0, 0, 0, 0.0)

    monkeypatch.setattr(neighbourhood, "search_families", capture)
    trip_day_polish(b, s, 1)(comp, start, 5.0)
    (days, day_wins), (units, unit_wins) = seen["families"]
    unit_of = components(b.trips)
    names = sorted(set(unit_of.values()))
    assert len(unit_wins) == len(names) and set().union(*unit_wins) == set(range(len(names)))
    for j, v in enumerate(comp.columns):
        tt = b.trips[v.index()] if v.parent_component() is b.model.trips else None
        if tt is None or tt.route is None:
            assert units[j] is None
        else:
            assert units[j] == names.index(unit_of[tt.route.stops[0]])
            assert days[j] == tt.day
    assert any(u is not None for u in units)


def _dominated_best(start: list[int]) -> float:
    """Brute force: the cheapest feasible trip counts with no day above the start's."""
    best = float("inf")
    for y in itertools.product(*(range(n + 1) for n in start)):
        room = [CAP * y[d] - NEED.get(d, 0.0) for d in range(4)]
        if min(room) >= 0 and sum(room) >= FLEX:
            best = min(best, sum(c * n for c, n in zip(COST, y, strict=True)))
    return best


def test_drop_trips_drops_every_trip_the_plan_can_spare():
    """From 3, 0, 2 and 1 trips (56 CNY), dropping the dearest trips first, each as long as
    the plan stays feasible, ends at 1, 0, 1, 1 (27 CNY): the cheapest plan that runs no more
    trips on any day than the start (brute force). Going on to the next day after one drop
    would end at 2, 0, 1, 0 (29). It cannot add a trip, so it stops above the optimum (26:
    one trip moves to day 1, which the windows find)."""
    m, _ = _toy()
    comp = compile_model(m)
    trips = [3, 0, 2, 1]
    start = _columns(m, comp, trips, [13.0, 0.0, 0.0, 0.0])
    assert objective_of(comp, np.array(start)) == pytest.approx(56.0)
    cols = [j for j, v in enumerate(comp.columns) if v.parent_component() is m.y]
    out = drop_trips(comp, start, cols, 10.0)
    assert _dominated_best(trips) == pytest.approx(27.0) and _by_hand() == pytest.approx(26.0)
    assert out.objective == pytest.approx(27.0)
    assert objective_of(comp, out.values) == pytest.approx(27.0)
    assert out.start_objective == pytest.approx(56.0)
    assert out.improved == 3  # two on day 0, one on day 2
    y = {comp.columns[j].index(): out.values[j] for j in cols}
    assert [y[d] for d in range(4)] == [1.0, 0.0, 1.0, 1.0]
    # the plan it returns is feasible: each day's room holds its need, FLEX fits
    f = {v.index(): out.values[j] for j, v in enumerate(comp.columns)
         if v.parent_component() is m.f}
    assert sum(f.values()) == pytest.approx(FLEX)
    assert all(NEED.get(d, 0.0) + f[d] <= CAP * y[d] + 1e-6 for d in range(4))
    # ... and the model's bounds are as they were
    assert list(comp.lp.col_upper_) == [5.0 if v.is_integer() else np.inf for v in comp.columns]


def test_a_plan_cut_short_is_finished_and_an_optimal_one_is_not():
    """run_highs hands HiGHS's plan to `finish` only when HiGHS stopped above the gap: with no
    node and no heuristic allowed HiGHS returns its start (56 CNY) and the finish (the drop
    search) brings it to 27; solved to optimality (26), the finish is not called."""
    cols: list[int] = []
    calls: list[float] = []

    def finish(comp, start, seconds):
        calls.append(seconds)
        cols[:] = [j for j, v in enumerate(comp.columns) if v.is_integer()]
        out = drop_trips(comp, start, cols, seconds)
        return out.values.tolist(), {"finish_s": out.seconds}

    for stop_early in (True, False):
        m, _ = _toy()
        for d, n in enumerate([3, 0, 2, 1]):
            m.y[d].set_value(n)
            m.f[d].set_value(13.0 if d == 0 else 0.0)
        options = {"presolve": "off", "mip_max_nodes": 0, "mip_heuristic_effort": 0.0}
        r = run_highs(m, time_limit_s=10.0, warm_start=True, finish=finish, finish_s=5.0,
                      options=options if stop_early else None)
        if stop_early:
            assert r.status == "time_limit" and calls == [5.0]
            assert r.objective == pytest.approx(27.0)
            assert [pyo.value(m.y[d]) for d in range(4)] == [1, 0, 1, 1]
        else:
            assert r.status == "optimal" and r.objective == pytest.approx(26.0)
            assert calls == [5.0]


def test_a_plan_within_the_finish_gap_is_not_finished():
    """Stopped at its first improving plan (26 CNY) with a bound of 22 (a gap of 15 %), the
    plan is finished when `finish_above_gap` is below that gap and not when it is above."""
    calls: list[float] = []

    def finish(comp, start, seconds):
        calls.append(seconds)
        return start, {"finish_s": 0.0}

    for above, expected in ((0.1, 1), (0.5, 0)):
        calls.clear()
        m, _ = _toy()
        for d, n in enumerate([3, 0, 2, 1]):
            m.y[d].set_value(n)
            m.f[d].set_value(13.0 if d == 0 else 0.0)
        r = run_highs(m, time_limit_s=10.0, warm_start=True, finish=finish, finish_s=1.0,
                      finish_above_gap=above,
                      options={"presolve": "off", "mip_max_improving_sols": 1})
        assert r.status == "time_limit" and r.objective is not None and r.bound is not None
        assert 0.1 < (r.objective - r.bound) / r.objective < 0.5
        assert len(calls) == expected


def test_only_a_time_limited_single_use_stage_gets_a_finish(monkeypatch):
    """run_stage hands run_highs the drop search as `finish` for the single-use stage with a
    time limit, and for no other stage (the packaging-first baseline included) nor without
    a limit."""
    from optimizer import stages
    from optimizer.baselines import fix_packaging, packaging_rule
    from tests.optimizer.helpers import TINY

    s = load_scenario(TINY)
    hubs = sorted({v.hub_id for v in s.villages})
    routes = routes_for(s)
    seen: dict[tuple[str, float | None], bool] = {}
    real = stages.run_highs

    def spy(model, **kwargs):
        seen[(kwargs["label"].split(":")[0], kwargs["time_limit_s"])] = (
            kwargs.get("finish") is not None and kwargs.get("finish_s", 0.0) > 0)
        return real(model, **kwargs)

    monkeypatch.setattr(stages, "run_highs", spy)
    for limit in (10.0, None):
        run_stage(s, routes, hubs, "single_use", limit, 1e-6, 1, None)
        run_stage(s, routes, hubs, "uncoordinated", limit, 1e-6, 1, None)
        rule = packaging_rule(s, hubs)
        run_stage(s, routes, hubs, "packaging_first", limit, 1e-6, 1, None,
                  prepare=lambda b, rule=rule: fix_packaging(b, s, rule))
    assert seen == {("single_use", 10.0): True, ("single_use", None): False,
                    ("uncoordinated", 10.0): False, ("uncoordinated", None): False,
                    ("packaging_first", 10.0): False, ("packaging_first", None): False}


def test_the_lp_neighbourhood_finds_the_least_criterion_from_a_poor_start():
    """Least single-use grams of a one-truck case (`test_frontier_hubs`: bags leave 100 g,
    crates and boxes none) from its least-cost plan, 14 bags and 2 boxes (1,400 g): the LP's
    neighbourhood, every integer held between the floor and the ceiling of its LP value,
    holds a plan of 0 g, which replaces the start and is a complete plan; from that plan the
    start is kept. Without the neighbourhood HiGHS had kept a county hub's poor start for
    its whole 9 s (docs/optimizer.md)."""
    from optimizer import solve
    from optimizer.frontier_model import WholeModel
    from optimizer.marginal import plan_as_start
    from optimizer.neighbourhood import lp_neighbourhood, relaxation_values
    from tests.optimizer.plan_checks import check_plan
    from tests.optimizer.test_frontier_hubs import _capped_trunk_case

    s = load_scenario(_capped_trunk_case())
    first = solve(s, mip_gap=0.0, baselines=False, marginals=False)
    sv = WholeModel(s, None, 0.0, 1, None, hubs=["H"])
    assert plan_as_start(sv.b, first.plan, 1)
    m = sv.b.model
    m.fr_obj = pyo.Objective(expr=sv.expr("single_use_grams"), sense=pyo.minimize)
    comp = compile_model(m)
    start = [float(v.value) for v in comp.columns]
    assert objective_of(comp, np.asarray(start)) == pytest.approx(1400.0)
    values, stats = lp_neighbourhood(1, 0.0)(comp, start, 30.0)
    assert objective_of(comp, np.asarray(values)) == pytest.approx(0.0, abs=1e-6)
    assert stats["lp_neighbourhood_gain"] == pytest.approx(1400.0)
    lp = relaxation_values(comp, 1)
    assert lp is not None
    for j, v in enumerate(comp.columns):
        if v.is_integer():
            assert np.floor(lp[j] + 1e-6) - 1e-6 <= values[j] <= np.ceil(lp[j] - 1e-6) + 1e-6
    for v, x in zip(comp.columns, values, strict=True):
        v.set_value(float(x), skip_validation=True)
    plan = extract_plan(sv.b, s)
    check_plan(plan, s)
    kept, again = lp_neighbourhood(1, 0.0)(comp, values, 30.0)
    assert kept is values and again["lp_neighbourhood_gain"] == 0.0
