"""The trade-off frontier (`optimizer.frontier`, `packloop plan frontier`): its points are
complete, mutually non-dominated plans, and its ends are the optima of single-objective
solves built here on their own (the test's own sums over the packaging variables, not the
model's criterion expressions)."""

from __future__ import annotations

import json
from pathlib import Path

import pyomo.environ as pyo
import pytest
import yaml
from click.testing import CliRunner

from optimizer import build_model, load_scenario, run_highs, solve
from optimizer.frontier import solve_frontier
from services.cli.plan_decisions import plan
from tests.optimizer.helpers import ROOT, TINY, routes_for, tiny_raw
from tests.optimizer.plan_checks import check_plan, recompute_cost

TRADEOFF = ROOT / "examples" / "scenarios" / "tiny.yaml"


def _grams_expr(b, s):
    """Single-use grams with this file's arithmetic: parcels per option × the scenario's
    grams of that option (a reusable one: what goes with each use)."""
    grams = {o.option_id: o.waste_grams for o in s.packaging.single_use}
    grams.update({r.container_type: r.per_use_waste_grams for r in s.packaging.reusable})
    m = b.model
    return sum(grams[k[3]] * m.pack[k] for k in b.pack_keys) + sum(
        grams[k[3]] * m.pack_up[k] for k in b.pack_up_keys)


def _lexicographic_waste_optimum(s) -> tuple[float, float, float]:
    """min single-use grams, then min cost at those grams: (grams, cost, cost bound), solved
    to optimality in a model built here."""
    b = build_model(s, routes_for(s), mode="joint")
    m = b.model
    m.cost.deactivate()
    m.g_obj = pyo.Objective(expr=_grams_expr(b, s))
    r = run_highs(m, mip_gap=0.0)
    assert r.objective is not None
    g_star = r.objective
    m.g_obj.deactivate()
    m.g_cap = pyo.Constraint(expr=_grams_expr(b, s) <= g_star + 1e-6)
    m.cost.activate()
    r2 = run_highs(m, mip_gap=0.0, warm_start=True)
    assert r2.objective is not None and r2.bound is not None
    return g_star, r2.objective, r2.bound


def _dominates(a: dict, b: dict, keys: tuple[str, ...]) -> bool:
    tol = 1e-6
    return all(a[k] <= b[k] + tol * max(1, abs(b[k])) for k in keys) and any(
        a[k] < b[k] - tol * max(1, abs(b[k])) for k in keys)


@pytest.fixture(scope="module")
def tradeoff():
    s = load_scenario(TRADEOFF)
    return s, solve_frontier(s, points=7, mip_gap=1e-6)


def test_points_are_complete_plans_and_distinct(tradeoff):
    """At least five distinct points per front (7 asked), each a feasible plan whose
    reported cost and criteria are its own (recomputed from the plan)."""
    s, f = tradeoff
    for front in ("single_use", "co2e"):
        pts = f.front(front)
        distinct = {(round(p.cost_cny, 4), round(p.criterion(), 4)) for p in pts}
        assert len(distinct) >= 5, (front, distinct)
    for p in f.points:
        check_plan(p.result.plan, s, p.result.kpis)
        assert recompute_cost(p.result.plan, s) == pytest.approx(p.cost_cny, rel=1e-6)
        assert p.result.objective == pytest.approx(p.cost_cny, rel=1e-6)
        assert p.result.gap is not None and p.result.gap <= 1e-5


def test_no_point_dominated(tradeoff):
    """No point of a front is dominated by another of the same front on (cost, its
    criterion), and no point by any other on all three of cost, CO2e, single-use grams."""
    _s, f = tradeoff
    doc = f.to_json_dict()
    pts = doc["points"]
    crit = {"single_use": "single_use_grams", "co2e": "co2e_kg"}
    for a in pts:
        for b in pts:
            if a is b:
                continue
            if a["front"] == b["front"]:
                assert not _dominates(b, a, ("cost_cny", crit[a["front"]])), (a, b)
            assert not _dominates(b, a, ("cost_cny", "co2e_kg", "single_use_grams")), (a, b)


def test_extremes_equal_single_objective_optima(tradeoff):
    """The cost-optimal end costs what `optimizer.solve` finds; the waste-optimal end has
    the least single-use grams and, at those grams, the least cost, both from a
    lexicographic solve built in this test."""
    s, f = tradeoff
    ext = f.to_json_dict()["extremes"]
    best = solve(s, mip_gap=1e-6, baselines=False, decompose=False)
    assert best.objective is not None and best.gap is not None
    tol = (best.gap + (ext["cost_optimal"]["gap"] or 0) + 1e-6) * best.objective
    assert ext["cost_optimal"]["cost_cny"] == pytest.approx(best.objective, abs=tol)
    g_star, cost_at, bound_at = _lexicographic_waste_optimum(s)
    w = ext["single_use_optimal"]
    assert w["single_use_grams"] == pytest.approx(g_star, abs=1e-3)
    assert w["cost_cny"] == pytest.approx(cost_at, abs=(cost_at - bound_at)
                                          + (w["gap"] or 0) * cost_at + 1e-4)
    # a real trade-off: waste costs money to avoid here
    assert w["cost_cny"] > ext["cost_optimal"]["cost_cny"] + 1.0
    assert ext["cost_optimal"]["single_use_grams"] > g_star + 1000


def test_marginal_costs_are_the_steps_between_neighbours(tradeoff):
    """Each marginal cost is the cost difference to the next cheaper point per kg (per
    tonne CO2e) avoided, and, on a convex front of continuous packaging choices, does not
    fall as more is avoided."""
    _s, f = tradeoff
    pts = [p for p in f.to_json_dict()["points"] if p["front"] == "single_use"]
    pts.sort(key=lambda p: p["cost_cny"])
    assert pts[0]["marginal_cny_per_kg_single_use"] is None
    prev = 0.0
    for a, b in zip(pts, pts[1:], strict=False):
        want = (b["cost_cny"] - a["cost_cny"]) / ((a["single_use_grams"]
                                                   - b["single_use_grams"]) / 1000)
        assert b["marginal_cny_per_kg_single_use"] == pytest.approx(want, rel=1e-9)
        assert want >= prev - 1e-6
        prev = want
    co2 = sorted((p for p in f.to_json_dict()["points"] if p["front"] == "co2e"),
                 key=lambda p: p["cost_cny"])
    b, a = co2[1], co2[0]
    assert b["marginal_cny_per_t_co2e"] == pytest.approx(
        (b["cost_cny"] - a["cost_cny"]) / ((a["co2e_kg"] - b["co2e_kg"]) / 1000), rel=1e-9)


@pytest.mark.slow
def test_cli_frontier_json_and_files(tmp_path: Path):
    """`plan frontier --json --out`: the document's contract keys, one directory per point
    with its plan.json and report.html, and the frontier page with both charts."""
    out = tmp_path / "fr"
    r = CliRunner().invoke(plan, ["frontier", str(TRADEOFF), "--points", "5", "--json",
                                  "--out", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout[r.stdout.index("{"):])
    assert set(doc) >= {"points", "extremes"}
    assert {"cost_optimal", "single_use_optimal", "co2e_optimal"} <= set(doc["extremes"])
    for p in doc["points"]:
        assert {"cost_cny", "co2e_kg", "single_use_grams", "gap", "status", "plan",
                "front"} <= set(p)
        plan_doc = json.loads((out / p["plan"]).read_text())
        assert plan_doc["kpis"]["cost_cny"]["total"] == pytest.approx(p["cost_cny"])
        # no marginal values at a capped point, and each hub says why (it was an empty
        # object, read as "nothing binds"), in the JSON and the report
        mv = plan_doc["marginal_values"]
        assert {n["hub_id"] for n in mv["not_computed"]} == \
            {h.hub_id for h in load_scenario(TRADEOFF).hubs}
        assert all("plan solve" in n["why"] for n in mv["not_computed"])
        report = (out / p["plan"]).with_name("report.html").read_text()
        assert "What one more is worth" in report and "not computed" in report
    page = (out / "frontier.html").read_text()
    assert page.count("<svg") == 2 and "current plan" in page


def test_cli_frontier_bad_points():
    """--points below 2 is a usage error (exit 2)."""
    r = CliRunner().invoke(plan, ["frontier", str(TINY), "--points", "1"])
    assert r.exit_code == 2


def _two_hubs() -> dict:
    """tiny.yaml and a copy of its hub 0.05° east: two hub groups for the planner."""
    import copy

    import yaml

    raw = yaml.safe_load(TRADEOFF.read_text())
    hub = copy.deepcopy(raw["hubs"][0])
    hub.update(hub_id="H02", lon=hub["lon"] + 0.05)
    raw["hubs"].append(hub)
    for v in list(raw["villages"]):
        raw["villages"].append({**v, "village_id": v["village_id"].replace("H01", "H02"),
                                "hub_id": "H02", "lon": v["lon"] + 0.05})
    for key in ("demand", "outstanding_waste"):
        raw[key] += [{**d, "village_id": d["village_id"].replace("H01", "H02")}
                     for d in raw[key]]
    raw["container_pools"].append({**raw["container_pools"][0], "hub_id": "H02"})
    return raw


@pytest.mark.slow
def test_several_hubs_start_from_the_planner():
    """With two hub groups the cost-optimal end is the planner's plan (solved hub by hub),
    and the fronts are solved hub by hub (`optimizer.frontier_hubs`). Its cost equals a
    whole-model solve's, the other end the lexicographic optimum built here, and the fronts
    are as long and non-dominated as with one hub."""
    s = load_scenario(_two_hubs())
    f = solve_frontier(s, points=6, mip_gap=1e-6, fronts=("single_use",))
    assert f.stats["solves"][0]["label"] == "cost (planner)"
    whole = solve(s, mip_gap=1e-6, baselines=False, decompose=False, marginals=False)
    ext = f.to_json_dict()["extremes"]
    assert ext["cost_optimal"]["cost_cny"] == pytest.approx(whole.objective, rel=1e-5)
    g_star, cost_at, _ = _lexicographic_waste_optimum(s)
    assert ext["single_use_optimal"]["single_use_grams"] == pytest.approx(g_star, abs=1e-3)
    assert ext["single_use_optimal"]["cost_cny"] == pytest.approx(cost_at, rel=1e-5)
    pts = f.front("single_use")
    assert len({round(p.cost_cny, 4) for p in pts}) >= 5
    for p in pts:
        check_plan(p.result.plan, s, p.result.kpis)
        assert set(p.result.plan["hubs"]) == {"H01", "H02"}


def test_each_solve_keeps_to_the_time_limit(monkeypatch):
    """A point's solve gets the time limit less its start's time and what HiGHS overran its
    limit by in the solve before (never below half the limit): `--time-limit` is per point."""
    import dataclasses

    from optimizer import frontier_model as frontier

    s = load_scenario(TINY)
    sv = frontier.WholeModel(s, 60.0, None, 1, None)
    seen: list[float] = []
    real = frontier.run_highs

    def overrunning(model, *, time_limit_s, **kw):
        seen.append(time_limit_s)
        return dataclasses.replace(real(model, time_limit_s=time_limit_s, **kw),
                                   highs_s=time_limit_s + 7.0)

    monkeypatch.setattr(frontier, "run_highs", overrunning)
    sv.solve("first", sv.expr("cost"))
    sv.solve("second", sv.expr("cost"))
    assert seen[0] == pytest.approx(60.0, abs=0.5)
    assert seen[1] == pytest.approx(53.0, abs=0.5)
    assert sv.highs_limit(60.0, 40.0) == pytest.approx(30.0)  # half the limit at least


def test_a_point_cut_short_keeps_the_least_cost_bound(monkeypatch):
    """An ε solve that stops with a weak bound (0 here, a stand-in for the whole county
    model's root after 60 s) reports at least the least cost's bound: an ε row only raises
    the least cost."""
    import dataclasses

    from optimizer import frontier_model as frontier

    real = frontier.run_highs

    def weak_eps(model, *, label="", **kw):
        r = real(model, label=label, **kw)
        return dataclasses.replace(r, bound=0.0) if ":eps" in label else r

    monkeypatch.setattr(frontier, "run_highs", weak_eps)
    s = load_scenario(TINY)
    f = solve_frontier(s, points=4, mip_gap=1e-6, fronts=("single_use",), planner_start=False)
    least = f.ends["cost_optimal"].result.bound
    assert least is not None and least > 0
    interior = [p for p in f.front("single_use") if p.role == "interior"]
    assert interior
    for p in interior:
        assert p.result.bound == pytest.approx(least)
        assert p.result.gap == pytest.approx((p.cost_cny - least) / p.cost_cny, rel=1e-6)


def test_a_frontier_of_demand_no_trip_can_serve_exits_2_with_the_reason(tmp_path):
    """As `plan solve` says it (the whole model's builder raised a ScenarioError that
    escaped as a traceback): a class no compartment carries and no passive packaging
    covers."""
    raw = json.loads(json.dumps(load_scenario(TINY).model_dump()))
    raw["classes"].append({"class_id": "frozen", "refrigerated": True,
                           "litres_per_parcel": 10.0})
    raw["demand"].append({"village_id": raw["villages"][0]["village_id"], "day": 0,
                          "class_id": "frozen", "direction": "down", "parcels": 5})
    raw["packaging"]["single_use"][0]["class_ids"].append("frozen")
    path = tmp_path / "s.json"
    path.write_text(json.dumps(raw))
    r = CliRunner().invoke(plan, ["frontier", str(path), "--points", "3", "--threads", "1",
                                  "--time-limit", "5"])
    assert r.exit_code == 2, r.output
    assert "no frontier:" in r.output and "'frozen'" in r.output


def test_the_table_shows_only_the_front_asked_for():
    """--front single_use printed an empty 'cost against CO2e' table under its own."""
    r = CliRunner().invoke(plan, ["frontier", str(TINY), "--points", "3", "--threads", "1",
                                  "--front", "single_use"])
    assert r.exit_code == 0, r.output
    assert "cost against single-use packaging" in r.output
    assert "cost against CO2e" not in r.output


def test_an_end_proven_to_highs_tolerance_is_optimal():
    """The tiny front's cost-optimal end had gap 1e-9 and read "feasible", where `plan
    solve` calls the same plan "optimal": a gap within HiGHS's tolerances is a proof."""
    f = solve_frontier(load_scenario(TINY), points=3, threads=1, fronts=("single_use",))
    for p in f.points:
        assert p.result.gap is not None and p.result.gap <= 1e-6
        assert p.result.status == "optimal", (p.role, p.result.gap)


def test_the_table_says_when_the_least_end_is_not_proven(capsys):
    """A least-single-use end cut short by its time limit (20.3 t found, 17.2 t a bound on
    the county week) is no least: the table says how far it may be; a proven one says
    nothing more."""
    from services.cli.plan_decisions import _frontier_table

    point = {"front": "single_use", "role": "single_use_optimal", "cost_cny": 1.0,
             "single_use_grams": 20_287_900.0, "co2e_kg": 1.0, "gap": 0.05}
    pay = {"single_use_min": 20_287_900.0, "single_use_min_bound": 17_218_966.7}
    _frontier_table({"points": [point], "extremes": {"payoff": {"single_use": pay}}})
    out = capsys.readouterr().out
    assert "least single-use packaging found: 20,287.9 kg" in out
    assert "no plan goes below 17,219.0 kg" in out
    pay["single_use_min_bound"] = pay["single_use_min"]
    _frontier_table({"points": [point], "extremes": {"payoff": {"single_use": pay}}})
    assert "no plan goes below" not in capsys.readouterr().out


def _no_trunk(tmp_path: Path) -> Path:
    """tiny.yaml without trunk vehicles: no plan moves anything between county and hub."""
    raw = tiny_raw()
    next(v for v in raw["vehicle_types"] if v["vehicle_type"] == "trunk_reefer")["count"] = 0
    path = tmp_path / "no_trunk.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_an_infeasible_frontier_says_why_in_json_and_in_words(tmp_path: Path):
    """`plan frontier --json` of an infeasible scenario printed nothing on stdout (only
    "no frontier: cost-optimal plan: no plan (infeasible)" on stderr), where `plan solve
    --json` gives a document with its diagnosis. Now a document with the status, no
    points and the failed end's diagnosis, exit 2; without --json the diagnosis lines."""
    path = _no_trunk(tmp_path)
    args = ["frontier", str(path), "--points", "2", "--time-limit", "5", "--threads", "1"]
    r = CliRunner().invoke(plan, [*args, "--json"])
    assert r.exit_code == 2, r.output
    doc = json.loads(r.stdout)
    assert doc["status"] == "infeasible" and doc["points"] == []
    assert doc["diagnosis"] and all({"what", "why"} <= set(d) for d in doc["diagnosis"])
    assert any("trunk_reefer vehicles on day" in d["what"] and "(0 available)" in d["what"]
               for d in doc["diagnosis"])
    r = CliRunner().invoke(plan, args)
    assert r.exit_code == 2, r.output
    assert "no frontier: cost-optimal plan" in r.output
    assert any(ln.startswith("infeasible: ") and "trunk_reefer vehicles on day" in ln
               and "(0 available)" in ln for ln in r.output.splitlines()), r.output


def test_the_table_fits_80_columns(capsys, monkeypatch):
    """At 80 columns the plan column cut its own role name to "single_use_o…"; no cell is
    cut now, with figures as large as the county's."""
    from services.cli.plan_decisions import _frontier_table

    monkeypatch.setenv("COLUMNS", "80")
    points = [{"front": front, "role": role, "cost_cny": 1_234_567.89,
               "single_use_grams": 202_879_000.0, "co2e_kg": 123_456.5, "gap": 0.0123,
               key: marginal}
              for front, key in (("single_use", "marginal_cny_per_kg_single_use"),
                                 ("co2e", "marginal_cny_per_t_co2e"))
              for role, marginal in (("cost_optimal", None), ("interior", 12.34),
                                     (f"{front}_optimal", 123_456.56))]
    _frontier_table({"points": points, "extremes": {"payoff": {}}})
    out = capsys.readouterr().out
    assert "…" not in out
    assert "single_use_optimal" in out and "co2e_optimal" in out
    assert "1,234,567.89" in out and "123,456.56" in out
    assert max(map(len, out.splitlines())) <= 80


def test_a_step_within_the_points_gaps_is_marked(capsys):
    """Steps of 22-66 CNY between points 3 % from their optima were printed as CNY per kg
    like any other (an audit): such a step is flagged in the JSON, marked ~ in the table
    with a line saying what it means."""
    from optimizer.frontier_model import FrontierPoint, marginal_to_cheaper
    from optimizer.result import PlanResult
    from services.cli.plan_decisions import _frontier_table

    def point(cost: float, grams: float, gap: float | None) -> FrontierPoint:
        kpis = {"cost_cny": {"total": cost}, "co2e_kg": {"total": 50.0},
                "single_use_grams": grams}
        return FrontierPoint("single_use", "interior", None, PlanResult(
            status="time_limit", objective=cost, bound=None, gap=gap, plan=None, kpis=kpis))

    for gap, within in ((0.03, True), (0.0, False), (None, True)):
        front = [point(1000.0, 50_000.0, gap), point(1030.0, 40_000.0, gap)]
        m = marginal_to_cheaper(front, front[1])
        assert m["marginal_cny_per_kg_single_use"] == pytest.approx(3.0)
        assert m["marginal_within_gaps"] is within
    doc = {"points": [
        {"front": "single_use", "role": "cost_optimal", "cost_cny": 1000.0,
         "single_use_grams": 50_000.0, "co2e_kg": 50.0, "gap": 0.03,
         "marginal_cny_per_kg_single_use": None, "marginal_within_gaps": None},
        {"front": "single_use", "role": "interior", "cost_cny": 1030.0,
         "single_use_grams": 40_000.0, "co2e_kg": 50.0, "gap": 0.03,
         "marginal_cny_per_kg_single_use": 3.0, "marginal_within_gaps": True}],
        "extremes": {}}
    _frontier_table(doc)
    out = capsys.readouterr().out
    assert "~3.00" in out and "within the two points' gaps" in out
