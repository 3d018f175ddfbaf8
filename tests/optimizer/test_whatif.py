"""What-ifs (`optimizer.whatif`, `packloop plan whatif`): the changes land where the keys
say, a bad key is refused by name, and the deltas agree with hand-computed consequences."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from types import SimpleNamespace

import pytest
import yaml
from click.testing import CliRunner

from optimizer import load_scenario
from optimizer.whatif import (
    EXPLAIN_MAX_S,
    EXPLAIN_MIN_S,
    WhatIfError,
    apply_changes,
    explain_seconds,
    what_if,
)
from services.cli.plan_decisions import plan
from tests.optimizer.helpers import ROOT, TINY, tiny_raw
from tests.optimizer.plan_checks import check_plan

TRADEOFF = ROOT / "examples" / "scenarios" / "tiny.yaml"


def _vt(s, name):
    return next(v for v in s.vehicle_types if v.vehicle_type == name)


def test_changes_relative_and_absolute():
    """+N/-N add to what the scenario says, N replaces it, for every kind of key; a
    per-hub count overrides the type's count for that hub only."""
    raw = tiny_raw()
    raw["hubs"].append({"hub_id": "H02", "lat": 28.7, "lon": 119.3})
    raw["vehicle_types"][0]["count_by_hub"] = {"H02": 5}
    s = load_scenario(raw)
    v, done = apply_changes(s, [("fleet.ambient_van.count", "+2"),
                                ("fleet.multi_temp_van.count.H02", "3"),
                                ("fleet.trunk_reefer.count", "-1"),
                                ("pools.H01.insulated_box", "+500"),
                                ("pools.H02.insulated_box", "+7"),
                                ("hubs.H01.cleaning_capacity_per_day", "-100")])
    amb = _vt(v, "ambient_van")
    assert v.hub_vehicle_count(amb, "H01") == 4 and v.hub_vehicle_count(amb, "H02") == 7
    mt = _vt(v, "multi_temp_van")
    assert v.hub_vehicle_count(mt, "H01") == 1 and v.hub_vehicle_count(mt, "H02") == 3
    assert _vt(v, "trunk_reefer").count == 1
    pools = {(p.hub_id, p.container_type): p.count for p in v.container_pools}
    assert pools == {("H01", "insulated_box"): 530, ("H02", "insulated_box"): 7}
    assert v.hubs[0].cleaning_capacity_per_day == 400
    assert [c.key for c in done][0] == "fleet.ambient_van.count"
    assert (done[3].before, done[3].after) == (30, 530)


def _own_counts_raw() -> dict:
    """tiny.yaml with a second hub H02 that has 2 multi_temp_vans of its own (count_by_hub),
    the type's count 1 (H01's): the audit's two_hubs.yaml."""
    raw = tiny_raw()
    raw["hubs"].append({"hub_id": "H02", "lat": 28.7, "lon": 119.3,
                        "cleaning_capacity_per_day": 200})
    _vt_raw(raw, "multi_temp_van")["count_by_hub"] = {"H02": 2}
    return raw


def _vt_raw(raw, name):
    return next(v for v in raw["vehicle_types"] if v["vehicle_type"] == name)


def _hub_counts(s, name):
    vt = _vt(s, name)
    return {h.hub_id: s.hub_vehicle_count(vt, h.hub_id) for h in s.hubs}


@pytest.mark.parametrize(("value", "counts", "after", "by_hub"), [
    ("0", {"H01": 0, "H02": 0}, 0, (("H02", 2, 0),)),
    ("3", {"H01": 3, "H02": 3}, 3, (("H02", 2, 3),)),
    ("2", {"H01": 2, "H02": 2}, 2, (("H02", 2, 2),)),
])
def test_an_absolute_count_is_every_hubs_own_counts_included(value, counts, after, by_hub):
    """`fleet.<type>.count=N` is N vehicles at every hub (issue 15). With H02's own count
    of 2 it was applied as the change of the type's count: =0 left H02 1 van, =3 gave it 4,
    while the change printed "1 → 0" / "1 → 3". The change records H02's own count."""
    s = load_scenario(_own_counts_raw())
    v, (done,) = apply_changes(s, [("fleet.multi_temp_van.count", value)])
    assert _hub_counts(v, "multi_temp_van") == counts
    assert (done.before, done.after, done.by_hub) == (1, after, by_hub)
    # the other types are untouched
    assert _hub_counts(v, "ambient_van") == _hub_counts(s, "ambient_van")


@pytest.mark.parametrize(("value", "counts", "after", "by_hub"), [
    ("+1", {"H01": 2, "H02": 3}, 2, (("H02", 2, 3),)),
    ("-1", {"H01": 0, "H02": 1}, 0, (("H02", 2, 1),)),
    ("+0", {"H01": 1, "H02": 2}, 1, (("H02", 2, 2),)),
])
def test_a_relative_count_changes_every_hub_from_its_own(value, counts, after, by_hub):
    """±N changes every hub's count by N, each from its own (H02's 2), and the change says
    what each hub with its own count went from and to."""
    s = load_scenario(_own_counts_raw())
    v, (done,) = apply_changes(s, [("fleet.multi_temp_van.count", value)])
    assert _hub_counts(v, "multi_temp_van") == counts
    assert (done.before, done.after, done.by_hub) == (1, after, by_hub)


def test_a_relative_count_below_0_at_a_hub_is_refused_by_hub_and_key():
    """A hub's own count taken below 0 was cut to 0 in silence (the type's own count is
    refused): `-1` with H02's own 0 left H02 at 0 and H01 at 2. Now it is refused, naming
    the key and the hub; so is a hub on the type's count (H01's 1, `-2`)."""
    raw = _own_counts_raw()
    _vt_raw(raw, "multi_temp_van").update(count=3, count_by_hub={"H02": 0})
    s = load_scenario(raw)
    with pytest.raises(WhatIfError) as e:
        apply_changes(s, [("fleet.multi_temp_van.count", "-1")])
    assert str(e.value) == ("fleet.multi_temp_van.count: -1 takes hub H02 (0 → -1) below 0 "
                            "vehicles")
    with pytest.raises(WhatIfError) as e:
        apply_changes(load_scenario(_own_counts_raw()), [("fleet.multi_temp_van.count", "-3")])
    assert str(e.value) == ("fleet.multi_temp_van.count: -3 takes hubs H01 (1 → -2), H02 (2 "
                            "→ -1) below 0 vehicles")


def test_every_hub_with_its_own_count_keeps_the_types_count_out_of_it():
    """When every hub has its own count, the type's count is no hub's: a change by -2 that
    would take it below 0 takes no hub there, and is applied to the hubs."""
    raw = _own_counts_raw()
    _vt_raw(raw, "multi_temp_van")["count_by_hub"] = {"H01": 3, "H02": 4}
    v, (done,) = apply_changes(load_scenario(raw), [("fleet.multi_temp_van.count", "-2")])
    assert _hub_counts(v, "multi_temp_van") == {"H01": 1, "H02": 2}
    assert done.by_hub == (("H01", 3, 1), ("H02", 4, 2))


def test_cli_prints_each_hub_with_its_own_count_and_refuses_below_0(tmp_path, capsys):
    """The change's line names the hubs of their own count as they changed (JSON: `by_hub`),
    the simple line unchanged; a hub below 0 exits 2 before any solve, naming hub and key."""
    from optimizer.result import PlanResult
    from optimizer.whatif import WhatIf
    from services.cli.plan_decisions import _whatif_table

    s = load_scenario(_own_counts_raw())
    _v, done = apply_changes(s, [("fleet.multi_temp_van.count", "0"),
                                 ("fleet.multi_temp_van.count", "+1"),
                                 ("fleet.ambient_van.count", "+1")])
    none = PlanResult.infeasible([], factor_set=s.factor_set)
    doc = WhatIf(done, none, none).to_json_dict()
    assert doc["changes"] == [
        {"key": "fleet.multi_temp_van.count", "from": 1, "to": 0,
         "by_hub": {"H02": {"from": 2, "to": 0}}},
        {"key": "fleet.multi_temp_van.count", "from": 0, "to": 1},  # no own count left
        {"key": "fleet.ambient_van.count", "from": 2, "to": 3}]
    _whatif_table(doc)
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["fleet.multi_temp_van.count: 1 → 0 (hub H02: 2 → 0)",
                       "fleet.multi_temp_van.count: 0 → 1", "fleet.ambient_van.count: 2 → 3"]
    path = tmp_path / "two_hubs.yaml"
    path.write_text(yaml.safe_dump(_own_counts_raw()))
    r = CliRunner().invoke(plan, ["whatif", str(path), "--set", "fleet.multi_temp_van.count=-2"])
    assert r.exit_code == 2
    assert "fleet.multi_temp_van.count: -2 takes hub H01 (1 → -1) below 0" in " ".join(
        r.output.split())


@pytest.mark.parametrize("key,value,words", [
    ("fleet.ambient_vn.count", "+1", "did you mean 'fleet.ambient_van.count'"),
    ("pools.H09.insulated_box", "1", "unknown key 'pools.H09.insulated_box'"),
    ("fleet.ambient_van.count", "-5", "below 0"),
    ("fleet.ambient_van.count", "+1.5", "whole number"),
    ("hubs.H01.cleaning_capacity_per_day", "lots", "not +N, -N or N"),
])
def test_bad_changes_named(key, value, words):
    """A bad key or value is refused with the key named (and the closest known key)."""
    with pytest.raises(WhatIfError, match=key.replace(".", r"\.")) as e:
        apply_changes(load_scenario(TINY), [(key, value)])
    assert words in str(e.value)


def test_cli_unknown_key_exits_2():
    """`plan whatif` with an unknown key exits 2 before solving, naming the key."""
    r = CliRunner().invoke(plan, ["whatif", str(TINY), "--set", "fleet.ambient_van.cont=+1"])
    assert r.exit_code == 2
    assert "fleet.ambient_van.cont" in r.output and "did you mean" in r.output


def test_more_boxes_save_the_expansion():
    """tiny.yaml's cheapest plan expands the 30-box pool by E boxes, each costing its
    price and production CO2e spread over the amortisation weeks. N more boxes at the
    start (N ≥ E) save exactly E × that, and change nothing else."""
    s = load_scenario(TRADEOFF)
    change = [("pools.H01.insulated_box", "+20")]
    w = what_if(s, change, mip_gap=0.0)
    check_plan(w.base.plan, s, w.base.kpis)
    check_plan(w.variant.plan, apply_changes(s, change)[0], w.variant.kpis)
    assert w.started_from_base
    expansion = sum(c["expansion"] for c in w.base.plan["containers"])
    assert 0 < expansion <= 20
    box = next(r for r in s.packaging.reusable if r.container_type == "insulated_box")
    per_box = (box.price_cny + s.prices.carbon_cny_per_kg_co2e * box.production_co2e_kg) * (
        s.horizon_days / 7 / s.prices.pool_amortisation_weeks)
    d = w.deltas()
    assert d["cost_cny"] == pytest.approx(-expansion * per_box, rel=1e-6)
    assert d["km"] == pytest.approx(0.0, abs=1e-9) and d["trips"] == 0


def test_cli_whatif_json():
    """`plan whatif --json`: the changes, both plans' figures and the deltas between them;
    less cleaning capacity makes the plan dearer and puts parcels back in single-use."""
    r = CliRunner().invoke(plan, ["whatif", str(TINY), "--set",
                                  "hubs.H01.cleaning_capacity_per_day=5", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout[r.stdout.index("{"):])
    assert doc["changes"] == [{"key": "hubs.H01.cleaning_capacity_per_day", "from": 500.0,
                               "to": 5.0}]
    for k in ("cost_cny", "km", "co2e_kg", "single_use_grams", "trips"):
        assert doc["delta"][k] == pytest.approx(doc["variant"][k] - doc["base"][k])
    assert doc["delta"]["cost_cny"] > 0 and doc["delta"]["single_use_grams"] > 0
    # the base plan's trips still serve the variant, packaging moved back to single-use
    assert doc["variant_started_from_base"] is True


@pytest.mark.slow
def test_whatif_json_is_all_of_stdout_when_the_base_plan_does_not_fit_the_variant():
    """With no trunk vehicles left the base plan's trips are outside the variant's bounds:
    the variant starts cold, and nothing but the JSON document reaches stdout (Pyomo had
    printed a warning per trip there, so the output did not parse)."""
    r = subprocess.run([sys.executable, "-m", "services.cli", "plan", "whatif", str(TRADEOFF),
                        "--set", "fleet.trunk_reefer.count=0", "--time-limit", "8", "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    doc = json.loads(r.stdout)
    assert doc["variant_started_from_base"] is False
    assert doc["variant"]["status"] == "infeasible"


def test_deltas_agree_with_the_base_marginal_values():
    """With a binding pool that does not pay to grow (amortised over one week), the
    what-if's cost delta for one more box is the marginal value the base plan reported, and
    more cleaning capacity where it does not bind changes nothing, as its zero value says."""
    raw = yaml.safe_load(TRADEOFF.read_text())
    raw["prices"]["pool_amortisation_weeks"] = 1
    s = load_scenario(raw)
    w = what_if(s, [("pools.H01.insulated_box", "+1")], mip_gap=0.0)
    (pool,) = w.base.marginal_values["pools"]
    assert pool["delta_cost_cny_per_box"] < -0.5
    assert w.deltas()["cost_cny"] == pytest.approx(pool["delta_cost_cny_per_box"], rel=1e-6)
    (clean,) = w.base.marginal_values["cleaning"]
    w2 = what_if(s, [("hubs.H01.cleaning_capacity_per_day", "+1")], mip_gap=0.0)
    assert clean["delta_cost_cny_per_unit_per_day"] == pytest.approx(0.0, abs=1e-9)
    assert w2.deltas()["cost_cny"] == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize(("change", "why"), [
    ("fleet.multi_temp_van.count=0", "'chilled' compartment"),
    ("fleet.trunk_reefer.count=0", "trunk_reefer vehicles on day"),
])
def test_a_variant_without_a_plan_says_why_and_exits_2(change, why):
    """Taking away every van with a chilled compartment left demand no trip can serve: the
    model builder's ScenarioError escaped as a traceback. Taking away the trunk trucks made
    the base plan's trips, fixed as the variant's start, break the county fleet row, which
    Pyomo's compiler raised. Both are the answer to the question asked: the variant has no
    plan, and why."""
    r = CliRunner().invoke(plan, ["whatif", str(TINY), "--set", change, "--threads", "1",
                                  "--time-limit", "20"])
    assert r.exit_code == 2, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert "variant: infeasible" in r.output and why in r.output


@pytest.mark.parametrize(("limit_s", "spent_s", "explain_s"), [
    (20.0, 5.0, 15.0),  # what is left
    (20.0, 19.5, EXPLAIN_MIN_S),  # nearly nothing left: the floor
    (20.0, 40.0, EXPLAIN_MIN_S),  # overrun already
    (300.0, 5.0, EXPLAIN_MAX_S),  # plenty left: the cap
    (None, 5.0, EXPLAIN_MAX_S),  # no time limit
])
def test_the_diagnosis_gets_what_the_time_limit_has_left(limit_s, spent_s, explain_s):
    """Between the floor and the cap, the diagnosis of an infeasible variant gets the
    variant's time limit less what its model and solve took."""
    assert explain_seconds(limit_s, spent_s) == explain_s


@pytest.mark.parametrize(("solve_s", "explain_s"), [(15.0, 5.0), (19.5, EXPLAIN_MIN_S)])
def test_an_infeasible_variants_diagnosis_keeps_to_the_time_limit(monkeypatch, solve_s,
                                                                  explain_s):
    """The diagnosis ran min(30 s, --time-limit) after a solve that had used its own share,
    so `plan whatif --time-limit 20` could run 20 s past it for an infeasible variant. With
    the variant's solve taking `solve_s` of whatif's clock (a clock the test moves; the
    solves and the diagnosis are real), the diagnosis gets what is left, or the floor."""
    import optimizer.frontier
    import optimizer.solver
    import optimizer.whatif

    now = [1000.0]
    monkeypatch.setattr(optimizer.whatif, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    solve = optimizer.frontier.WholeModel.solve
    real_explain = optimizer.solver.explain
    asked: list[float] = []

    def slow_solve(self, *args, **kwargs):
        result = solve(self, *args, **kwargs)
        now[0] += solve_s
        return result

    def explain(comp, limit=20, time_limit_s=30.0):
        asked.append(time_limit_s)
        return real_explain(comp, limit, time_limit_s)

    monkeypatch.setattr(optimizer.frontier.WholeModel, "solve", slow_solve)
    monkeypatch.setattr(optimizer.solver, "explain", explain)
    w = what_if(load_scenario(TINY), [("fleet.trunk_reefer.count", "0")], time_limit_s=20.0,
                threads=1)
    assert w.variant.status == "infeasible"
    assert any("trunk_reefer vehicles on day" in d["what"] and "(0 available)" in d["what"]
               for d in w.variant.diagnosis)
    assert asked == [explain_s]


def test_the_whatif_help_states_the_diagnosis_bounds():
    """--time-limit's help says the diagnosis's floor and cap, the module's numbers."""
    r = CliRunner().invoke(plan, ["whatif", "--help"])
    assert r.exit_code == 0
    help_text = " ".join(r.output.split())
    assert f"at least {EXPLAIN_MIN_S:g} s, at most {EXPLAIN_MAX_S:g} s" in help_text


def test_a_vehicle_count_change_is_a_whole_number_in_json():
    """`"to": 2.0` for a vehicle count read like a fraction of a van."""
    s = load_scenario(TINY)
    _variant, done = apply_changes(s, [("fleet.ambient_van.count", "+1")])
    assert isinstance(done[0].after, int) and not isinstance(done[0].after, bool)
    assert json.dumps({"to": done[0].after}) == f'{{"to": {done[0].after:d}}}'


@pytest.mark.parametrize("key", ["fleet.multi_temp_van.count", "fleet.multi_temp_van.count.H01",
                                 "pools.H01.insulated_box"])
@pytest.mark.parametrize("value", ["99999999999999999999", "+1" + "0" * 400])
def test_a_number_beyond_the_scenarios_limit_is_refused_by_its_key(key, value):
    """A what-if's value goes through the scenario's limit (MAX_NUMBER, 1e9), and the
    message names the key the user wrote, not the scenario field it lands in
    (`vehicle_types[1].count`); 400 digits (an infinite float) read as no whole number."""
    with pytest.raises(WhatIfError) as e:
        apply_changes(load_scenario(TINY), [(key, value)])
    message = str(e.value)
    assert message.startswith(f"{key}: ") and "at most 1,000,000,000" in message
    assert "vehicle_types" not in message and "container_pools" not in message
    r = CliRunner().invoke(plan, ["whatif", str(TINY), "--set", f"{key}={value}"])
    assert r.exit_code == 2 and key in r.output and "at most 1,000,000,000" in r.output


def test_the_changes_print_whole_numbers_in_full(capsys):
    """The table printed a count of 1e9 vehicles as "1e+09" (`:g`); a whole number is
    printed as one, a fraction as written."""
    from services.cli.plan_decisions import _whatif_table

    side = {"status": "optimal", "gap": 0.0}
    _whatif_table({"changes": [
        {"key": "fleet.multi_temp_van.count", "from": 1, "to": 1_000_000_000},
        {"key": "hubs.H01.cleaning_capacity_per_day", "from": 500.0, "to": 800.5},
        {"key": "fleet.trunk_reefer.count", "from": None, "to": 2}],
        "base": side, "variant": side, "delta": None})
    out = capsys.readouterr().out
    assert "fleet.multi_temp_van.count: 1 → 1,000,000,000" in out
    assert "hubs.H01.cleaning_capacity_per_day: 500 → 800.5" in out
    assert "fleet.trunk_reefer.count: unlimited → 2" in out
    assert "e+" not in out
    # a hub's cleaning capacity left at its default is no number anyone set
    _whatif_table({"changes": [
        {"key": "hubs.H01.cleaning_capacity_per_day", "from": 1e9, "to": 100.0}],
        "base": side, "variant": side, "delta": None})
    assert "hubs.H01.cleaning_capacity_per_day: unlimited → 100" in capsys.readouterr().out


def test_an_infeasible_base_answers_in_json_with_its_diagnosis(tmp_path):
    """`plan whatif --json` on a base with no plan (no trunk vehicles) prints its document,
    each side with its status and its diagnosis in words, and exits 2 (as `plan solve
    --json` and `plan frontier --json` do)."""
    raw = tiny_raw()
    next(v for v in raw["vehicle_types"] if v["vehicle_type"] == "trunk_reefer")["count"] = 0
    path = tmp_path / "no_trunk.yaml"
    path.write_text(yaml.safe_dump(raw))
    r = CliRunner().invoke(plan, ["whatif", str(path), "--set", "fleet.ambient_van.count=+1",
                                  "--time-limit", "5", "--threads", "1", "--json"])
    assert r.exit_code == 2, r.output
    doc = json.loads(r.stdout)
    for side in ("base", "variant"):
        assert doc[side]["status"] == "infeasible"
        whats = [d["what"] for d in doc[side]["diagnosis"]]
        assert any("trunk_reefer vehicles on day" in w and "(0 available)" in w
                   for w in whats), whats
        assert not any(re.search(r"\b[a-z_]+\[", w) for w in whats), whats
    assert doc["delta"] is None


def test_the_cost_change_between_optimal_plans_is_bracketed_by_the_gaps(capsys):
    """Proven solves pin the change to the delta itself; cut solves give a range, and a
    range holding 0 is said to show no effect (a 20 s what-if on a county hub "saved"
    39.49 CNY for a box whose marginal value was 0)."""
    raw = yaml.safe_load(TRADEOFF.read_text())
    raw["prices"]["pool_amortisation_weeks"] = 1
    w = what_if(load_scenario(raw), [("pools.H01.insulated_box", "+1")], mip_gap=0.0)
    lo, hi = w.cost_delta_range()
    assert w.variant.objective is not None and w.base.objective is not None
    change = w.variant.objective - w.base.objective
    assert lo == pytest.approx(change, abs=1e-6) and hi == pytest.approx(change, abs=1e-6)
    assert w.to_json_dict()["optimal_cost_delta_range"] == [lo, hi]

    from services.cli.plan_decisions import _whatif_table

    side = {"status": "time_limit", "gap": 0.017, "cost_cny": 18_700.0}
    doc = {"changes": [], "base": side, "variant": {**side, "cost_cny": 18_660.0},
           "delta": {"cost_cny": -40.0}, "optimal_cost_delta_range": [-360.0, 290.0]}
    _whatif_table(doc)
    assert "it holds 0, so no effect is shown" in capsys.readouterr().out
    _whatif_table({**doc, "optimal_cost_delta_range": [-90.0, -20.0]})
    assert "the change lowers the cost" in capsys.readouterr().out


def test_a_change_that_changes_nothing_shows_no_effect_within_the_solvers_tolerance():
    """Two proven optima of 6,727.2343 CNY gave the range [-9.1e-13, -9.1e-13], and the
    what-if said "the change lowers the cost" (an audit): differences within 1e-6 of the
    cost are 0."""
    import dataclasses

    from optimizer.result import PlanResult
    from optimizer.whatif import WhatIf, cost_effect

    def side(objective: float, bound: float) -> PlanResult:
        return PlanResult(status="optimal", objective=objective, bound=bound, gap=0.0,
                          plan=None, kpis=None)

    less = 6727.2343 - 9.1e-13
    same = WhatIf([], side(6727.2343, 6727.2343), side(less, less))
    assert same.cost_delta_range() == (0.0, 0.0)
    kpis = {"cost_cny": {"total": 6727.2343}, "km": 10.0, "co2e_kg": {"total": 5.0},
            "single_use_grams": 100.0, "trips": 3}
    noisy = {**kpis, "cost_cny": {"total": less}}
    with_kpis = WhatIf([], dataclasses.replace(same.base, kpis=kpis),
                       dataclasses.replace(same.variant, kpis=noisy))
    assert with_kpis.deltas() == {"cost_cny": 0.0, "km": 0.0, "co2e_kg": 0.0,
                                  "single_use_grams": 0.0, "trips": 0.0}
    assert cost_effect(same.cost_delta_range()) == "none"
    cheaper = WhatIf([], side(6727.2343, 6727.2343), side(6726.0, 6726.0))
    assert cost_effect(cheaper.cost_delta_range()) == "lowers"


@pytest.mark.parametrize("value", ["2.5", "+0.5"])
def test_a_box_count_is_whole(value):
    """2.5 boxes were taken as given and planned with (an audit)."""
    with pytest.raises(WhatIfError, match=r"pools\.H01\.insulated_box") as e:
        apply_changes(load_scenario(TINY), [("pools.H01.insulated_box", value)])
    assert "a container count is a whole number" in str(e.value)


def test_the_table_says_whether_a_change_is_within_the_marginal_values_range():
    """A binding pool whose box is worth 2.87 CNY for 1.35 more boxes: `plan whatif` with
    one more says the change is within that range and prices it; with five more it says
    the change is beyond it, where the re-solve (3.86 CNY for five, not 14.3) is the
    answer."""
    from services.cli.plan_decisions import _marginal_notes

    raw = yaml.safe_load(TRADEOFF.read_text())
    raw["prices"]["pool_amortisation_weeks"] = 1
    s = load_scenario(raw)
    for k, within in ((1, True), (5, False)):
        w = what_if(s, [("pools.H01.insulated_box", f"+{k}")], mip_gap=0.0)
        (pool,) = w.base.marginal_values["pools"]
        doc = w.to_json_dict()
        (note,) = _marginal_notes(doc)
        (reading,) = doc["marginal_readings"]  # the verdict is in the JSON too
        assert reading["within"] is within and reading["change"] == k
        assert reading["holds_for"] == pool["valid_for_boxes"]["more"]
        assert doc["cost_effect"] == "lowers"
        assert f"{pool['delta_cost_cny_per_box']:+,.2f} CNY a box, on its own trips" in note
        assert f"{pool['valid_for_boxes']['more']:,.1f} boxes more" in note
        if within:
            assert "within it" in note
            assert w.deltas()["cost_cny"] == pytest.approx(pool["delta_cost_cny_per_box"],
                                                          rel=1e-6)
        else:
            assert "beyond it" in note
            assert w.deltas()["cost_cny"] > k * pool["delta_cost_cny_per_box"] + 1.0


def _doc(changes: list[tuple[str, float, float]], mv: dict) -> dict:
    """The part of a what-if document the notes read: its changes against `mv`."""
    from optimizer.whatif import Change, marginal_readings

    return {"marginal_readings": marginal_readings([Change(k, a, b) for k, a, b in changes],
                                                   mv)}


def test_the_table_says_when_a_range_is_not_known():
    """A marginal value without a range (HiGHS gave no ranging) is said to have none, not a
    range of 0 (which read "for at least 0.0 boxes more; beyond it")."""
    from services.cli.plan_decisions import _marginal_notes

    doc = _doc([("pools.H01.insulated_box", 30, 31)], {"pools": [{
        "hub_id": "H01", "container_type": "insulated_box",
        "delta_cost_cny_per_box": -2.0, "valid_for_boxes": None}]})
    assert doc["marginal_readings"][0]["within"] is None
    (note,) = _marginal_notes(doc)
    assert "not known" in note and "0.0" not in note


def test_a_key_set_twice_is_one_change_against_the_range():
    """`--set pools.H01.insulated_box=+1 --set pools.H01.insulated_box=+1` is +2 from the
    base: beyond a range of 1.35 (each step was priced alone, both "within" it); a value
    not worked out says so, with why, instead of nothing."""
    from services.cli.plan_decisions import _marginal_notes

    pool = {"hub_id": "H01", "container_type": "insulated_box",
            "delta_cost_cny_per_box": -2.87, "valid_for_boxes": {"more": 1.35, "fewer": 18.2}}
    doc = _doc([("pools.H01.insulated_box", 30, 31), ("pools.H01.insulated_box", 31, 32),
                ("pools.H02.insulated_box", 30, 31)],
               {"pools": [pool], "not_computed": [{"hub_id": "H02", "why": "no time left"}]})
    assert [r["within"] for r in doc["marginal_readings"]] == [False, None]
    first, second, footnote = _marginal_notes(doc)
    assert "this change is +2, beyond it" in first
    assert second.startswith("pools.H02.insulated_box: the base plan has no marginal value")
    assert "(no time left)" in second and "several at once" in footnote


def test_a_relative_change_of_an_unlimited_cleaning_capacity_says_so():
    """A hub without a stated cleaning capacity has the scenario's default, no limit:
    "+5" was refused as "1,000,000,005: too large"."""
    from optimizer.whatif import WhatIfError, apply_changes

    raw = tiny_raw()
    raw["hubs"][0].pop("cleaning_capacity_per_day", None)
    s = load_scenario(raw)
    with pytest.raises(WhatIfError, match="sets no limit \\(unlimited\\), so '\\+5'"):
        apply_changes(s, [("hubs.H01.cleaning_capacity_per_day", "+5")])
    assert apply_changes(s, [("hubs.H01.cleaning_capacity_per_day", "100")])[0].hubs[
        0].cleaning_capacity_per_day == 100
