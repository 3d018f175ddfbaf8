"""`packloop plan solve` at the edges a new user meets: broken files, typos in field names,
`--no-baselines`, the time limit, progress lines and the units of its summary."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re
from typing import Any

import pyomo.environ as pyo
import pytest
import yaml
from click.testing import CliRunner

from optimizer import (
    PlanResult,
    Progress,
    ScenarioError,
    SolveResult,
    budget,
    load_scenario,
    planner,
    solve,
    stages,
    write_report,
)
from optimizer.model.covers import joint_floors
from optimizer.routes import hub_routes
from services.cli.plan import plan
from tests.optimizer.helpers import TINY, one_van_raw, tiny_raw


@pytest.mark.parametrize(("name", "text", "place"), [
    ("bad.json", '{"name": "x",\n  "horizon_days": 2,,\n}\n', "bad.json:2:21:"),
    ("bad.yaml", "name: x\nhubs: [a, b\nfoo: 1\n", "bad.yaml:3:4:"),
    ("bad.yml", "name: x\n  bad: indent\n", "bad.yml:2:6:"),
])
def test_a_syntax_error_is_one_line_with_its_place(tmp_path, name, text, place):
    """A file that is not JSON/YAML exits 2 with one line naming file, line and column
    (no traceback of the parser)."""
    path = tmp_path / name
    path.write_text(text)
    r = CliRunner().invoke(plan, ["solve", str(path)])
    assert r.exit_code == 2, r.output
    assert isinstance(r.exception, SystemExit)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    assert place in lines[0] and "syntax error" in lines[0]
    assert "Traceback" not in r.output


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_a_scenario_with_a_byte_order_mark_reads_as_without(tmp_path, suffix):
    """A JSON scenario saved by a Windows editor (UTF-8 with a byte-order mark) was refused
    as "JSON syntax error: Unexpected UTF-8 BOM"; YAML read it."""
    path = tmp_path / f"s{suffix}"
    text = json.dumps(tiny_raw()) if suffix == ".json" else yaml.safe_dump(tiny_raw())
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    r = CliRunner().invoke(plan, ["solve", str(path), "--no-baselines", "--json",
                                  "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["status"] in ("optimal", "feasible")


def test_a_vrp_file_given_as_a_scenario_points_to_vrplib(tmp_path):
    path = tmp_path / "E-n13-k4.vrp"
    path.write_text("NAME : E-n13-k4\nTYPE : CVRP\n")
    r = CliRunner().invoke(plan, ["solve", str(path)])
    assert r.exit_code == 2 and "--vrplib" in r.output, r.output


def test_an_unknown_field_says_which_field_was_meant():
    """A typo in a field name at any depth names the closest field of the model there."""
    raw = tiny_raw()
    raw["villages"][1]["hub_idd"] = raw["villages"][1].pop("hub_id")
    raw["horizon_dayz"] = 3
    raw["prices"]["carbon_cny_per_kg"] = 1.0
    raw["vehicle_types"][0]["count_by_hubs"] = {}
    with pytest.raises(ScenarioError) as e:
        load_scenario(raw)
    problems = dict(e.value.problems)
    assert "did you mean 'hub_id'?" in problems["villages[1].hub_idd"]
    assert "did you mean 'horizon_days'?" in problems["horizon_dayz"]
    assert "did you mean 'carbon_cny_per_kg_co2e'?" in problems["prices.carbon_cny_per_kg"]
    assert "did you mean 'count_by_hub'?" in problems["vehicle_types[0].count_by_hubs"]


def test_an_unknown_field_far_from_any_lists_the_known_ones():
    """Nothing close: the message lists the fields that are allowed there instead."""
    raw = tiny_raw()
    raw["depot"]["zzzz"] = 1
    with pytest.raises(ScenarioError) as e:
        load_scenario(raw)
    message = dict(e.value.problems)["depot.zzzz"]
    assert "unknown field 'zzzz'" in message and "lat" in message and "lon" in message


def test_an_invalid_scenario_exits_2_through_the_cli(tmp_path):
    """A typo in a YAML scenario: exit 2, the path and the suggestion, no traceback."""
    raw = tiny_raw()
    raw["horizon_dayz"] = raw.pop("horizon_days")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(raw))
    r = CliRunner().invoke(plan, ["solve", str(path)])
    assert r.exit_code == 2, r.output
    assert "horizon_dayz" in r.output and "did you mean 'horizon_days'?" in r.output
    assert "Traceback" not in r.output


@pytest.fixture(scope="module")
def tiny_result() -> PlanResult:
    return solve(load_scenario(TINY), time_limit_s=30)


def _table(html: str, first_header: str) -> list[list[str]]:
    """The cells of the report table whose first header is `first_header`, row by row."""
    start = html.index(f"<table><tr><th>{first_header}</th>")
    body = html[start:html.index("</table>", start)]
    rows = re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>",
                                                                     r, flags=re.S)]
            for r in rows]


def test_report_rows_carry_units_and_boxes_are_whole(tiny_result, tmp_path):
    """Every KPI row names its unit; containers show as whole boxes in the report (bought
    and expansions rounded up) while plan.json keeps the model's fractions."""
    result = copy.deepcopy(tiny_result)
    assert result.plan is not None
    pool = result.plan["containers"][0]
    pool["days"][0]["bought"] = 2.7
    pool["expansion"] = 4.2
    trip = next(t for t in result.plan["trips"] if t["kind"] == "milk_run")
    trip["loads"]["empties"] = {"insulated_box": 50.1}
    result = dataclasses.replace(result, plan=result.plan)
    html = write_report(result, load_scenario(TINY), tmp_path).read_text()
    header, *kpi_rows = _table(html, "KPI")
    assert header[:2] == ["KPI", "unit"]
    units = {row[0]: row[1] for row in kpi_rows}
    assert units["total cost"] == "CNY" and units["distance driven"] == "km"
    assert units["CO2e total"] == "kg CO2e" and units["single-use packaging"] == "kg"
    assert all(row[1] for row in kpi_rows), kpi_rows
    assert not any("transport km" in row[0] for row in kpi_rows)
    _, *pools = _table(html, "hub")
    for row in pools:
        assert all(re.fullmatch(r"[\d,]+", cell) for cell in row[2:]), row
    bought = sum(d["bought"] for d in pool["days"])
    assert pools[0][3] == "5" and pools[0][6] == f"{-int(-bought // 1):,d}"
    trips_header, *trip_rows = _table(html, "day")
    empties = [row[trips_header.index("empties, boxes")] for row in trip_rows]
    assert "50" in empties and all("." not in e for e in empties)
    saved = (tmp_path / "plan.json").read_text()
    assert '"bought": 2.7' in saved and '"expansion": 4.2' in saved


def test_map_has_a_legend_and_names_on_hover(tiny_result, tmp_path):
    """The route map says what its markers and colours are, and every village, hub and the
    county seat has its id (and name) in an SVG title a browser shows on hover."""
    html = write_report(tiny_result, load_scenario(TINY), tmp_path).read_text()
    svg = html[html.index("<h2>Route map</h2>"):]
    for label in ("village", "township hub", "county seat", "milk run: ambient_van"):
        assert f"<!-- {label} -->" in svg, label
    titles = re.findall(r"<title>([^<]*)</title>", svg)
    for v in tiny_raw()["villages"]:
        assert f"village {v['village_id']}" in titles
    assert "hub H01 (Township hub 1)" in titles
    assert any(t.startswith("county seat COUNTY") for t in titles)


def test_plan_solve_shows_single_use_in_kg(tmp_path):
    """`plan solve` prints single-use packaging in kg (as `plan status` does), with units
    on every row and whole trips."""
    r = CliRunner().invoke(plan, ["solve", str(TINY), "--time-limit", "30"])
    assert r.exit_code == 0, r.output
    rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:-1]]
            for line in r.stdout.splitlines() if line.startswith("│")}
    assert {"cost, CNY", "CO2e, kg", "distance, km", "trips", "single-use packaging, kg"} \
        <= set(rows)
    assert rows["single-use packaging, kg"][2] == "32.4"  # 32,440 g in the uncoordinated plan
    assert all("." not in n for n in rows["trips"])


def _mirrored(hubs: int) -> dict[str, Any]:
    """tiny.yaml with `hubs` copies of its hub and villages, side by side, and the county
    trucks to serve them all."""
    raw = tiny_raw()
    one = raw["villages"]
    raw["hubs"] = [{**raw["hubs"][0], "hub_id": f"H{h:02d}", "lon": 119.2 + 0.1 * h}
                   for h in range(1, hubs + 1)]
    raw["villages"] = [{**v, "village_id": v["village_id"].replace("H01", f"H{h:02d}"),
                        "hub_id": f"H{h:02d}", "lon": v["lon"] + 0.1 * (h - 1)}
                       for h in range(1, hubs + 1) for v in one]
    for key in ("demand", "outstanding_waste"):
        raw[key] = [{**g, "village_id": g["village_id"].replace("H01", f"H{h:02d}")}
                    for h in range(1, hubs + 1) for g in raw[key]]
    for vt in raw["vehicle_types"]:  # county trucks enough for every hub: no linked solve
        if vt["base"] == "county" and vt.get("count"):
            vt["count"] *= hubs
    return raw


def test_no_baselines_returns_the_joint_plan_when_cold_solves_find_nothing(monkeypatch):
    """Without baselines the single-use stage used to start cold; a hub squeezed by the
    deadline whose cold single-use and joint solves found nothing in their time left the
    county without a plan (`status time_limit ... trips 0`, "no solution found", exit 0).
    The uncoordinated stage now always runs as the start (not reported), so the plan
    survives solves that find nothing from scratch."""
    real = stages.run_highs

    def cold_finds_nothing(model: pyo.ConcreteModel, **kwargs: Any) -> SolveResult:
        free_trips = model.name == "packloop_single_use" or (
            model.name == "packloop_joint" and not all(v.fixed for v in model.trips.values()))
        if free_trips and not kwargs.get("warm_start"):
            return SolveResult("time_limit_no_solution", None, None, None, 1.0, 0.0, 0.0, 0.0,
                               0, 0, 0, 0)
        return real(model, **kwargs)

    monkeypatch.setattr(stages, "run_highs", cold_finds_nothing)
    r = CliRunner().invoke(plan, ["solve", str(TINY), "--no-baselines", "--json",
                                  "--time-limit", "30"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout[r.stdout.index("{"):])
    assert data["objective"] is not None and data["trips"], data["status"]
    assert "uncoordinated" not in data["baselines"]


def test_a_solver_error_is_not_called_infeasible(monkeypatch):
    """HiGHS failing (numerical trouble: a van of 1e15 litres did it) is no verdict on the
    scenario: the plan's status is "error" and the message says so, where it read
    "infeasible: solver: no solution found (error)"."""
    def fails(model: pyo.ConcreteModel, **kwargs: Any) -> SolveResult:
        return SolveResult("error", None, None, None, 1.0, 0.0, 0.0, 0.0, 0, 0, 0, 0)

    monkeypatch.setattr(stages, "run_highs", fails)
    r = CliRunner().invoke(plan, ["solve", str(TINY), "--time-limit", "10"])
    assert r.exit_code == 2
    assert "status error" in r.stdout and "infeasible" not in r.output
    assert "solver error" in r.stderr
    r = CliRunner().invoke(plan, ["solve", str(TINY), "--time-limit", "10", "--json"])
    assert json.loads(r.stdout[:r.stdout.rindex("}") + 1])["status"] == "error"


def test_the_summary_says_which_groups_never_ran_their_joint_solve(capsys):
    """At 15 s on the county week every hub kept its uncoordinated plan, and the summary
    showed it as the joint plan without a word."""
    from services.cli.plan import _summary

    ran = {"joint": {"objective": 100.0, "highs_s": 2.5, "bound": 99.0}}
    skipped = {"joint": {"objective": 120.0, "highs_s": None, "bound": 110.0},
               "uncoordinated": {"objective": 120.0}}
    data = {"status": "time_limit", "objective": 220.0, "gap": 0.05, "trips": [],
            "stats": {"hubs": [ran, skipped, ran]}, "kpis": None}
    _summary(data)
    said = " ".join(capsys.readouterr().out.split())
    assert "1 of 3 hub group(s) had no time for their joint solve" in said
    assert "(1 uncoordinated)" in said and "no gap" not in said
    _summary({**data, "stats": {"hubs": [ran, ran]}})
    assert "no time for their joint solve" not in capsys.readouterr().out


def test_the_summary_names_the_plan_each_group_hands_on_and_why_there_is_no_gap(capsys):
    """At 200 % of the county on a slow machine the summary said every group without a
    joint solve kept its uncoordinated plan, where most handed on their sequential plans,
    and the gap was '-' without a word: six groups had no bound."""
    from services.cli.plan import _summary

    seq = {"joint": {"objective": 90.0, "highs_s": None, "bound": 80.0},
           "sequential": {"objective": 90.0}, "single_use": {"objective": 95.0},
           "uncoordinated": {"objective": 120.0}}
    first = {"joint": {"objective": 120.0, "highs_s": None, "bound": None},
             "single_use": {"objective": None}, "uncoordinated": {"objective": 120.0}}
    data = {"status": "time_limit", "objective": 300.0, "gap": None, "trips": [],
            "stats": {"hubs": [seq, seq, first]}, "kpis": None}
    _summary(data)
    said = " ".join(capsys.readouterr().out.split())
    assert "(2 sequential, 1 uncoordinated)" in said, said
    assert "no gap: 1 of 3 hub group(s) have no bound" in said, said


def test_the_summary_warns_of_a_plan_s_diagnosis(capsys):
    """A plan with a diagnosis (a hub group whose later stages failed hands on its first
    plan): the summary says so. Before, only a run without a plan printed its diagnosis."""
    from services.cli.plan import _summary

    data = {"status": "time_limit", "objective": 300.0, "gap": 0.01, "trips": [],
            "stats": {"hubs": []}, "kpis": None,
            "diagnosis": [{"what": "hubs H02", "why": "its later stages failed (boom)"}]}
    _summary(data)
    said = " ".join(capsys.readouterr().out.split())
    assert "warning: hubs H02: its later stages failed (boom)" in said, said
    _summary({**data, "diagnosis": []})
    assert "warning" not in capsys.readouterr().out


def test_a_group_without_time_keeps_its_first_plan():
    """A hub group whose budget is spent after its first plan skips the later stages and
    hands the uncoordinated plan on as its joint plan, instead of giving each stage a 1 s
    floor past the budget. Its bound is the one known before any solve (the joint model
    never ran): the floors plus each parcel in its cheapest packaging."""
    s = load_scenario(TINY)
    out = stages.solve_hubs(s, ["H01"], 0.0, None, 1, None, False)
    unc, joint = out["uncoordinated"], out["joint"]
    assert unc.plan is not None
    for skipped in ("single_use", "sequential"):
        assert out[skipped].plan is None and out[skipped].status == "time_limit_no_solution"
    assert joint.plan is unc.plan and joint.objective == unc.objective
    assert joint.status == "time_limit"
    floor = joint_floors(s, hub_routes(s, ["H01"]), ["H01"]).bound
    assert 0 < floor < joint.objective
    assert joint.bound == pytest.approx(floor) and joint.stats["bound_from_floors"] == 1.0


@pytest.mark.parametrize("overhead_s", [0.05, 0.4, 1.5, 3.0])
def test_stage_limits_fit_in_the_group_budget(overhead_s):
    """Whatever the budget, a group whose stages all run to their limits (none reaches its
    gap early: the worst case) ends within its budget plus HiGHS's overshoot, once the
    budget covers its first plan; the first stage always runs, and an ample budget runs
    every stage."""
    rows = 800
    for budget_s in [0.0, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120]:
        spent, ran = 0.0, []
        for stage in budget.STAGES:
            limit = budget.stage_limit(stage, budget_s - spent, overhead_s, rows)
            if limit is None:
                break
            ran.append(stage)
            spent += budget.stage_overhead_s(stage, overhead_s) + limit
        assert ran[0] == "uncoordinated"
        least = overhead_s + budget.first_plan_s(rows)
        assert spent <= max(budget_s, least) + 0.25, (budget_s, ran, spent)
        if budget_s >= 4 * (overhead_s + 1):
            assert ran == list(budget.STAGES), (budget_s, ran)


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _simulate(rows: list[int], workers: int, limit_s: float, true_s_per_row: float,
              overhead_share: float = 0.6, later_skipped: list[int] | None = None,
              later_budgets: list[tuple[float, float]] | None = None
              ) -> tuple[float, list[int], float]:
    """Run `planner._Schedule` through both phases on a fake clock, every group taking its
    whole budget (the worst case: none reaches its gap early) but never less than its true
    cost; returns when the last group ends, the groups given up and the deadline, and adds
    the groups whose later stages never started to `later_skipped` and each later
    budget, with the least the schedule then reckoned that group's later stages need, to
    `later_budgets`."""
    clock = _Clock()
    deadline = clock.now + limit_s
    schedule = planner._Schedule(rows, workers, deadline, budget.DEFAULT, clock=clock)
    given_up: list[int] = []
    starts: dict[int, float] = {}
    last_end = clock.now
    for phase in ("first", "later"):
        schedule.begin(phase, [] if given_up else list(range(len(rows))))
        ends: list[tuple[float, int]] = []  # (end time, key) of running groups
        while schedule.pending or ends:
            while schedule.pending and len(ends) < workers:
                started = schedule.start()
                if started is None:
                    left = schedule.not_started()
                    given_up += left if phase == "first" else []
                    if phase == "later" and later_skipped is not None:
                        later_skipped += left
                    break
                key, group_deadline = started
                assert group_deadline is not None
                starts[key] = clock.now
                if phase == "later" and later_budgets is not None:
                    later_budgets.append((group_deadline - clock.now, budget.later_least_s(
                        rows[key], schedule.rate)))
                ends.append((max(group_deadline, clock.now + true_s_per_row * rows[key]), key))
            if not ends:
                break
            ends.sort()
            end, key = ends.pop(0)
            took = end - starts[key]
            clock.now = last_end = max(last_end, end)
            overhead = true_s_per_row * rows[key] * overhead_share
            stage = "uncoordinated" if phase == "first" else "single_use"
            schedule.done(key, {stage: stages.StageOutcome(
                "feasible", 1.0, 0.9, {}, {"overhead_s": overhead, "highs_s": took - overhead})})
    return last_end, given_up, deadline


COUNTY_ROWS = [1290, 1204, 1032, 1032, 1032, 946, 946, 860, 774, 774, 774, 688, 688, 688, 688,
               688, 688, 688, 688, 688]  # the county week's hub groups


@pytest.mark.parametrize("true_s_per_row", [0.5e-3, 1.0e-3, 1.5e-3])
def test_the_schedule_ends_by_the_deadline(true_s_per_row):
    """20 hub groups of the county week's sizes on 2 workers, 18 s: whether the machine is
    quicker or slower than the first guess, every group starts and the last one ends by
    the deadline, give or take half a second (each group takes its whole budget, as if none
    reached its gap)."""
    end, given_up, deadline = _simulate(COUNTY_ROWS, 2, 18.0, true_s_per_row)
    assert given_up == []
    assert end <= deadline + 0.5, end - deadline


@pytest.mark.parametrize("true_s_per_row", [1.0e-3, 2.0e-3, 2.5e-3])
def test_every_group_starts_its_later_stages(true_s_per_row):
    """Twice the county (40 groups) on 2 workers in 120 s, each group taking its whole
    budget: every group that had a first plan also starts its later stages, so that each
    ends with a sequential plan and a bound. The first groups took their overcommitted
    shares and the last ones never started (in this simulation at 2-2.5 ms a row, as on a
    slow machine, 20-24 of 40; 6 in a real run at 200 % of the county, which kept their
    uncoordinated plans without a bound: the county had no gap)."""
    skipped: list[int] = []
    end, given_up, deadline = _simulate(COUNTY_ROWS * 2, 2, 120.0, true_s_per_row,
                                        later_skipped=skipped)
    assert given_up == []
    assert skipped == [], skipped
    assert end <= deadline + 0.5, end - deadline


def test_no_group_is_budgeted_below_its_later_stages_least_while_time_allows():
    """Where no group stops early, the first groups' overcommitted shares are of the time
    beyond every group's least: 40 groups at 2 ms a row (the 200 % county on a slow
    machine) got as little as 1.1 s each at the end, a third of what a sequential plan
    with its bound needs."""
    budgets: list[tuple[float, float]] = []
    _simulate(COUNTY_ROWS * 2, 2, 120.0, 2e-3, later_budgets=budgets)
    assert len(budgets) == 40
    short = [(round(b, 2), round(least, 2)) for b, least in budgets if b < least - 1e-6]
    assert short == []


def test_the_group_refused_its_later_stages_still_fits_its_bound():
    """The schedule refuses a group's later stages when less than their least is left; its
    bound (a build and an LP cut at the deadline) must still fit then, or the first group
    refused, refused for exactly that, never got one and the county kept no bound. Where
    not even the build fits, there is none."""
    rows, rate = 1290, 1.5e-3
    refused = budget.later_min_s(rows, rate) - 0.15
    assert budget.bound_fits(refused, rows, rate)
    assert not budget.bound_fits(rate * rows - 0.01, rows, rate)


def test_the_schedule_gives_up_rather_than_overrun():
    """A machine too slow for a first plan of every group in the time: groups that no
    longer fit are not started (the county gets no plan, with the reason) instead of the
    plan running on far past its limit; what started ends near the deadline."""
    end, given_up, deadline = _simulate(COUNTY_ROWS, 2, 18.0, 4e-3)
    assert given_up
    assert end <= deadline + 4e-3 * max(COUNTY_ROWS), end - deadline


def test_a_first_try_without_a_plan_is_queued_again_with_twice_its_time():
    """A hub group whose first plan found nothing in its share of the limit goes back in
    the queue and starts again, after the others, with at least twice the wall time that
    try took (more than its share would give it then); only a second miss, or a deadline
    without room for the retry, leaves the county without a plan (with
    `routing.pyvrp_pool` the county week gave up at 12.5 s of 120 s because one group's
    ~4 s share was too small)."""
    clock = _Clock()
    schedule = planner._Schedule([900, 800, 700], 2, clock.now + 30.0, budget.DEFAULT,
                                 clock=clock)
    schedule.begin("first", [0, 1, 2])
    a, b = schedule.start(), schedule.start()
    assert a is not None and b is not None and a[0] == 0 and a[1] is not None
    tried = a[1] - clock.now
    clock.now = a[1]  # group 0 used its whole budget and found no plan
    schedule.done(0, {"uncoordinated": stages.StageOutcome("time_limit_no_solution", None,
                                                           None, None)})
    assert schedule.retry(0)
    assert schedule.pending == [2, 0]
    clock.now += 1.0
    schedule.done(b[0], {"uncoordinated": stages.StageOutcome(
        "feasible", 1.0, 0.9, {}, {"overhead_s": 1.0, "highs_s": 2.0})})
    c = schedule.start()
    assert c is not None and c[0] == 2
    again = schedule.start()
    assert again is not None and again[0] == 0 and again[1] is not None
    assert again[1] - clock.now >= 2 * tried - 1e-9
    clock.now = again[1]
    assert not schedule.retry(0)  # a second miss: the county has no plan
    late = planner._Schedule([900], 1, clock.now + 6.0, budget.DEFAULT, clock=clock)
    late.begin("first", [0])
    assert late.start() is not None
    clock.now += 4.0  # 2 s left: no room for a retry of 8 s
    assert not late.retry(0)


def test_the_county_has_a_plan_when_a_first_try_misses(monkeypatch):
    """End to end through `solve`: the first try of one group ends without a plan; the
    county still gets a plan, from that group's second try (before, it gave up)."""
    real = planner._first_worker
    calls: list[list[str]] = []

    def misses_once(args):
        calls.append(args[1])
        if len(calls) == 1:
            return stages.StageOutcome("time_limit_no_solution", None, None, None), None
        return real(args)

    monkeypatch.setattr(planner, "_first_worker", misses_once)
    result = solve(load_scenario(_mirrored(2)), time_limit_s=60, threads=1)
    assert result.plan is not None, result.diagnosis
    assert len(calls) == 3 and calls[0] == calls[2]


def test_county_progress_is_the_county_as_it_stands():
    """Progress is the county's objective (the sum of every group's best plan, unknown until
    every group has one) and bound (the sum of the joint bounds, unknown until every group
    has one): never nan, and the objective only falls, where the old running sum over
    finished hubs rose as hubs finished."""
    seen: list[Progress] = []
    county = planner._County(seen.append, 2, 0.0)
    county.report(0, Progress(300.0, -math.inf, math.inf, 1.0, "uncoordinated:H01"))
    county.report(0, Progress(200.0, -math.inf, math.inf, 2.0, "single_use:H01"))
    county.report(1, Progress(310.0, -math.inf, math.inf, 2.5, "uncoordinated:H02"))
    county.report(0, Progress(190.0, 150.0, 0.2, 3.0, "joint:H01"))
    county.report(1, Progress(math.inf, 160.0, math.inf, 3.5, "joint:H02"))
    county.done(0, stages.StageOutcome("feasible", 185.0, 184.0, {}), "hub 1/2 done")
    county.done(1, stages.StageOutcome("feasible", 250.0, 249.0, {}), "hub 2/2 done")
    objectives = [p.incumbent for p in seen]
    assert objectives[:2] == [math.inf, math.inf]
    assert seen[0].label == "uncoordinated:H01 (1/2 hub groups planned)"
    assert objectives[2:] == [510.0, 500.0, 500.0, 495.0, 435.0]
    assert [p.bound for p in seen][3:] == [-math.inf, 310.0, 344.0, 433.0]
    assert seen[-1].gap == pytest.approx(2 / 435)
    assert not any(math.isnan(x) for p in seen for x in (p.incumbent, p.bound, p.gap))


def test_plan_solve_progress_shows_no_nan_or_inf():
    """`plan solve` prints the county's objective, bound and gap, '-' while unknown; the
    objective it prints never rises."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "three.yaml"
        path.write_text(yaml.safe_dump(_mirrored(3)))
        r = CliRunner().invoke(plan, ["solve", str(path), "--time-limit", "60",
                                      "--threads", "1"])
    assert r.exit_code == 0, r.output
    lines = [line for line in r.stderr.splitlines() if "objective" in line]
    assert lines and not any(re.search(r"\bnan\b|\binf\b", line) for line in lines)
    objectives = [float(m.group(1).replace(",", "")) for line in lines
                  if (m := re.search(r"objective +([\d,.]+)", line))]
    assert objectives and objectives == sorted(objectives, reverse=True)
    assert "(1/3 hub groups planned)" in r.stderr


def test_groups_without_room_for_later_stages_keep_their_first_plans():
    """When no group has room for its later stages (here: a single-use stage would need
    1000 s of HiGHS), the plan ends with every group's first plan, promptly (the loop once
    spun forever on the groups it could not start)."""
    import threading

    s = load_scenario(_mirrored(3))
    params = dataclasses.replace(budget.DEFAULT, min_stage_s=1000.0)
    out: list[PlanResult] = []
    worker = threading.Thread(target=lambda: out.append(
        solve(s, time_limit_s=30, threads=1, params=params)), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive() and out
    result = out[0]
    assert result.plan is not None and result.status == "time_limit"
    unc = result.baselines["uncoordinated"]
    assert result.objective == pytest.approx(unc["objective"])


def test_plan_solve_gives_the_solve_what_is_left_of_its_limit(monkeypatch, tmp_path):
    """--time-limit is the command's: the time the process has run already and the report's
    expected time come out of what the solve is given."""
    import optimizer
    from services.cli import plan as plan_cli

    given: list[float] = []
    real = optimizer.solve

    def solve(scenario, **kwargs):
        given.append(kwargs["time_limit_s"])
        return real(scenario, **{**kwargs, "time_limit_s": 30})

    monkeypatch.setattr(optimizer, "solve", solve)
    monkeypatch.setattr(plan_cli, "_seconds_since_process_start", lambda: 5.0)
    r = CliRunner().invoke(plan, ["solve", str(TINY), "--time-limit", "20", "--out",
                                  str(tmp_path)])
    assert r.exit_code == 0, r.output
    report_s = optimizer.report_seconds(load_scenario(TINY))
    assert 20 - 5 - report_s - 2 < given[0] <= 20 - 5 - report_s


def test_the_first_group_tries_even_when_its_estimate_does_not_fit() -> None:
    """A job whose process started slowly is left less time than a first plan's estimate:
    its first group still starts, within the deadline's grace, instead of giving up with
    time left (a 5 s plan job failed in 0.1 s under the chaos soak); a second group that
    does not fit after it is given up."""
    clock = _Clock()
    rows = [2000, 2000]
    schedule = planner._Schedule(rows, 1, clock.now + 0.6, budget.DEFAULT, clock=clock,
                                 grace_s=0.2)
    schedule.begin("first", [0, 1])
    assert schedule.least_s(0) > 0.6 + 0.2  # the estimate alone would give up
    started = schedule.start()
    assert started is not None
    key, group_deadline = started
    assert group_deadline is not None and group_deadline <= clock.now + 0.6 + 0.2 + 1e-9
    clock.now += 0.7
    assert schedule.start() is None
    # past the deadline and its grace, nothing starts, first group or not
    late = planner._Schedule(rows, 1, clock.now - 1.0, budget.DEFAULT, clock=clock)
    late.begin("first", [0, 1])
    assert late.start() is None


def test_summary_says_where_an_early_bound_comes_from(capsys):
    """A plan whose hub groups took their bound from before the joint solve says so, with
    the count of each kind, and how to tighten it; a plan without one says nothing of it."""
    from services.cli.plan import _summary

    data = {"status": "time_limit", "objective": 100.0, "gap": 0.12, "trips": [],
            "kpis": None, "stats": {"joint": {"bound_from_floors": 1.0,
                                              "bound_from_relaxation": 3.0, "highs_s": 9.0}}}
    _summary(data)
    said = " ".join(capsys.readouterr().out.split())
    assert "the bound of 4 hub group(s) is from before their joint solve" in said
    assert "1 from floors, 3 from the LP relaxation" in said and "--time-limit" in said
    _summary({**data, "stats": {"joint": {"highs_s": 9.0}}})
    assert "before their joint solve" not in capsys.readouterr().out
    # the trunk rounding bound is no early bound: said apart, and not counted in with them
    _summary({**data, "stats": {"joint": {"bound_from_trunk_rounding": 2.0,
                                          "bound_from_floors": 1.0}}})
    said = " ".join(capsys.readouterr().out.split())
    assert "the bound of 2 hub group(s) is their joint model with whole trunk trips" in said
    assert "the bound of 1 hub group(s) is from before their joint solve (1 from floors)" in said


def _solve_cli(tmp_path, raw: dict[str, Any], *args: str):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(raw))
    return CliRunner().invoke(plan, ["solve", str(path), "--threads", "1", *args])


@pytest.mark.parametrize(("base", "field", "value", "said"), [
    ("hub", "count", 0, ("has no vehicles",)),
    ("county", "shift_minutes", 1, ("farm shipments of class", "to the county")),
])
def test_a_village_without_demand_or_vans_is_diagnosed_not_a_traceback(
        tmp_path, base, field, value, said):
    """Hub vans all counted 0 (nothing can come back for washing: the cleaning row had no
    variables and Pyomo raised), and trunk trucks whose shift no trip fits in (the farm
    shipments' trunk row had none): each exits 2 with the demand that cannot be served."""
    raw = tiny_raw()
    for vt in raw["vehicle_types"]:
        if vt["base"] == base:
            vt[field] = value
    r = _solve_cli(tmp_path, raw)
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert all(words in r.output for words in said), r.output


def test_a_class_only_reusable_boxes_pack_has_a_joint_plan_and_says_why_no_baseline(tmp_path):
    """With no single-use option for a class, the plans without reuse cannot pack it: the
    joint plan is still made, and the uncoordinated baseline says why it has none (before:
    a Pyomo error on the packing row with nothing to pack into)."""
    raw = tiny_raw()
    cold = {c for r in raw["packaging"]["reusable"] for c in r["class_ids"]}
    for o in raw["packaging"]["single_use"]:
        o["class_ids"] = [c for c in o["class_ids"] if c not in cold]
    raw["packaging"]["single_use"] = [o for o in raw["packaging"]["single_use"]
                                      if o["class_ids"]]
    r = _solve_cli(tmp_path, raw, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["status"] in ("optimal", "feasible") and doc["objective"] > 0
    unc = doc["baselines"]["uncoordinated"]
    assert unc["objective"] is None
    assert "no single-use packaging option" in json.dumps(unc)


def test_nothing_to_plan_is_an_empty_plan_at_cost_0(tmp_path):
    """No demand and no recyclables (a quiet day from the live state): a plan with no
    trips at cost 0, not 'infeasible: no plan found'."""
    raw = tiny_raw()
    raw["demand"], raw["outstanding_waste"] = [], []
    r = _solve_cli(tmp_path, raw, "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["status"] == "optimal" and doc["trips"] == []
    assert doc["objective"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("demand", [
    [], [{"village_id": "V1", "day": 0, "class_id": "amb", "direction": "down", "parcels": 0}]])
def test_a_model_with_no_columns_is_the_empty_plan_not_a_solver_error(tmp_path, demand):
    """Nothing to move and no container pools: the model has no columns, and HiGHS's
    kModelEmpty (no solution) read as 'solver error ... numerical trouble', exit 2, for the
    plan and every baseline."""
    r = _solve_cli(tmp_path, one_van_raw(demand, count=2), "--json")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["status"] == "optimal" and doc["trips"] == []
    assert doc["objective"] == pytest.approx(0.0, abs=1e-9)
    assert doc["baselines"]["uncoordinated"]["status"] == "optimal"


@pytest.mark.parametrize("args", [["--gap", "-1"], ["--gap", "5"], ["--gap", "nan"],
                                  ["--threads", "0"], ["--time-limit", "-5"],
                                  ["--time-limit", "inf"]])
def test_nonsense_numbers_are_usage_errors(args):
    """Before, --gap 5 and --threads 0 ran, and --time-limit -5 failed as 'first plans need
    about 0.5 s more'."""
    r = CliRunner().invoke(plan, ["solve", str(TINY), *args])
    assert r.exit_code == 2, r.output
    assert f"Invalid value for '{args[0]}'" in r.output


@pytest.mark.parametrize("fleet", ["free", "exact"])
def test_fleet_without_vrplib_is_a_usage_error(fleet):
    """`--fleet free` on a scenario was silently ignored (a scenario's fleet is its vehicle
    types' counts): refused before any solve, naming both flags."""
    r = CliRunner().invoke(plan, ["solve", str(TINY), "--fleet", fleet])
    assert r.exit_code == 2, r.output
    assert isinstance(r.exception, SystemExit)
    assert "--fleet" in r.output and "--vrplib" in r.output and "status" not in r.output


@pytest.mark.parametrize("command", ["solve", "frontier"])
def test_an_out_directory_that_cannot_be_written_is_refused_before_any_solve(
        command, tmp_path):
    """`--out` under a file (or anywhere not writable) ended in a traceback after the whole
    solve (NotADirectoryError from the report): now a usage error naming --out, at once."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    r = CliRunner().invoke(plan, [command, str(TINY), "--out", str(blocker / "sub")])
    assert r.exit_code == 2, r.output
    assert "Invalid value for '--out'" in r.output and "Not a directory" in r.output
    assert "status" not in r.output and "Traceback" not in r.output
    ok = tmp_path / "new" / "dir"
    r = CliRunner().invoke(plan, ["solve", str(TINY), "--out", str(ok), "--time-limit", "30"])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in ok.iterdir()) == ["plan.json", "report.html"]


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
def test_budget_params_reach_the_stages_in_and_out_of_worker_processes(threads):
    """`solve(params=...)` reached the schedule but not the stages: the workers (and the
    inline path) ran `first_plan`/`later_stages` with the defaults, so a single-use share
    raised from 0.35 to 0.55 changed nothing on the county week. Here a trunk bound that
    may never run (`trunk_bound_min_s` above any budget) must leave no trace in any hub's
    stats, while the defaults compute it."""
    s = load_scenario(_mirrored(2))
    ran = [h["joint"] for h in solve(s, time_limit_s=60, threads=threads).stats["hubs"]]
    assert all("trunk_bound_s" in j for j in ran)
    never = budget.BudgetParams(trunk_bound_min_s=1e9)
    skipped = [h["joint"] for h in solve(s, time_limit_s=60, threads=threads,
                                         params=never).stats["hubs"]]
    assert len(skipped) == 2 and not any("trunk_bound_s" in j for j in skipped)


def test_an_out_directory_made_for_a_solve_that_fails_is_removed(tmp_path):
    """`--out` is created before the solve (to refuse a path that cannot be written); a
    run that ends with nothing written (here an invalid scenario) left it behind empty,
    with its parents. Folders that were there, or hold anything, stay."""
    raw = tiny_raw()
    raw["vehicle_types"][0]["count"] = -1
    out = tmp_path / "new" / "plans"
    r = _solve_cli(tmp_path, raw, "--out", str(out))
    assert r.exit_code == 2 and "count" in r.output, r.output
    assert not (tmp_path / "new").exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "old.txt").write_text("x")
    r = _solve_cli(tmp_path, raw, "--out", str(kept / "sub"))
    assert r.exit_code == 2 and sorted(p.name for p in kept.iterdir()) == ["old.txt"]
    # an infeasible plan still writes its report (the diagnosis), so its folder stays
    raw = tiny_raw()
    for vt in raw["vehicle_types"]:
        if vt["base"] == "hub":
            vt["count"] = 0
    r = _solve_cli(tmp_path, raw, "--out", str(out))
    assert r.exit_code == 2 and sorted(p.name for p in out.iterdir()) == [
        "plan.json", "report.html"]
