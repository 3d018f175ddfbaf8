"""`packloop demo` end to end, shortened to one simulated day.

The figures the demo prints and writes into its report must equal the stream
worker's tallies, and those must equal what the test computes itself from the
same simulation (re-drawn from the seed), with the definitions of the stream issue.
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from services.demo import DemoOptions, run_demo
from services.settings import get_settings
from services.simulation.simulator import SimulationConfig, Simulator
from streams.network import load_network


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("demo")
    options = DemoOptions(days=1, scale=0.1, seed=5, plan_horizon_days=2,
                          plan_time_limit_s=20, plan_hubs=3, out_dir=out,
                          decision_time_limit_s=4)
    return run_demo(options, get_settings()), options


def _expected_generated(options: DemoOptions) -> Counter:
    network = load_network()
    start = date.today() - timedelta(days=int(round(options.days)))
    sim = Simulator(network, SimulationConfig(
        days=options.days, scale=options.scale, seed=options.seed,
        start=datetime(start.year, start.month, start.day, tzinfo=network.timezone)))
    generated: Counter = Counter()
    unit = {c.value: (s.material.value, s.unit_grams) for c, s in network.container_types.items()}
    for event in sim.events():
        if event["type"] == "shipment" and event["direction"] == "down":
            for line in event["packaging"]:
                generated[line["material"]] += line["grams"]
        elif event["type"] == "packaging_return" and event["condition"] in ("damaged", "lost"):
            material, grams = unit[event["container_type"]]
            generated[material] += grams * event["count"]
    return generated


def test_demo_figures_match_independent_tallies(demo) -> None:
    """Generated grams equal the test's own tally of the simulated events."""
    result, options = demo
    expected = _expected_generated(options)
    assert result.figures["generated_grams"] == sum(expected.values())
    by_material: Counter = Counter()
    for village in result.status["villages"].values():
        by_material.update(village["generated_grams"])
    assert +by_material == +expected
    assert result.figures["events"]["applied"] == result.simulation["accepted"]


def test_report_shows_stream_and_plan_figures(demo) -> None:
    """The report is written, offline-safe, and shows the stream's and the plan's numbers."""
    result, _ = demo
    page = Path(result.report).read_text(encoding="utf-8")
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", page)  # nothing fetched
    assert f"{result.figures['generated_grams'] / 1000:,.1f} kg" in page
    assert f"{result.figures['recovered_grams'] / 1000:,.1f} kg" in page
    plan = result.plan["json"]
    assert f"{plan['kpis']['cost_cny']['total']:,.0f}" in page
    for name, baseline in plan["baselines"].items():
        if baseline.get("kpis"):
            assert f"{baseline['kpis']['cost_cny']['total']:,.0f}" in page, name
        elif name in ("sequential", "uncoordinated"):  # said, not dropped without a word
            assert f"{name.capitalize()}: no plan ({baseline['status']}" in page, name
    assert page.count("<svg") >= 4  # township chart, pickups, containers, map, bars
    assert re.search(r"Plan status <b>(optimal|feasible|time_limit)</b>", page)


def test_report_shows_the_decisions(demo) -> None:
    """The busiest township's single-use front (non-dominated points, the cheapest its
    cost-optimal end), a what-if whose deltas are variant minus base, and tomorrow's run
    sheet: each of its trips one of the county plan's day-0 trips of that township, every
    stop one of its villages."""
    result, _ = demo
    d = result.decisions
    assert d is not None
    page = Path(result.report).read_text(encoding="utf-8")
    assert f"Decisions for township {d.hub_id}" in page
    pts = [p for p in d.frontier["points"] if p["front"] == "single_use"]
    assert pts
    if len(pts) == 1:  # no trade-off: the least-cost plan also uses the least single-use
        assert "has one point" in page
    for a in pts:
        for b in pts:
            assert not (b["cost_cny"] < a["cost_cny"] - 1e-6
                        and b["single_use_grams"] < a["single_use_grams"] - 1e-6)
    cheapest = min(pts, key=lambda p: p["cost_cny"])
    assert cheapest["role"] == "cost_optimal"
    for p in pts:
        assert f"{p['cost_cny']:,.2f}" in page
    w = d.whatif
    assert {c["key"].split(".")[0] for c in w["changes"]} <= {"fleet", "pools"}
    assert w["delta"]["cost_cny"] == pytest.approx(w["variant"]["cost_cny"]
                                                   - w["base"]["cost_cny"])
    assert f"{w['delta']['cost_cny']:+,.2f}" in page
    sheet = d.run_sheet
    plan = result.plan["json"]
    day0 = [t for t in plan["trips"] if t["day"] == 0 and t["hub_id"] == sheet["hub_id"]
            and t["kind"] == "milk_run"]
    assert f"{len(day0)} trip(s) from the county plan's first day" in page
    assert sorted(tuple(t["stops"]) for t in day0) == sorted(
        tuple(stop["village_id"] for stop in t["stops"]) for t in sheet["trips"])
    villages = {v.village_id for v in load_network().villages.values()
                if v.hub_id == sheet["hub_id"]}
    assert all(stop["village_id"] in villages for t in sheet["trips"] for stop in t["stops"])
    assert d.run_sheet_path is not None and d.run_sheet_path.exists()
    assert f"run-sheet-{sheet['hub_id']}.html" in page


def test_a_second_demo_counts_again_in_a_ledger_of_its_own(demo) -> None:
    """The demo's simulation has a seed, so a second run sends the same event ids. With the
    data folder's ledger (which remembers what earlier lives applied) the second demo
    counted nothing and died on an empty status; and both runs' synthetic county went
    into the officer's records. Each demo now has a new ledger of its own in its folder."""
    import dataclasses
    import sqlite3

    first, options = demo
    settings = get_settings()

    def month_rows(path: Path) -> int:
        if not path.exists():
            return 0
        with sqlite3.connect(path) as db:
            return int(db.execute("SELECT count(*) FROM ledger_months").fetchone()[0])

    data_ledger = Path(str(settings.ledger_db_url).split("///", 1)[-1])
    before = month_rows(data_ledger)
    again = run_demo(dataclasses.replace(options, decisions=False, plan_time_limit_s=8),
                     settings)
    assert again.figures["events"]["applied"] == again.simulation["accepted"] > 0
    assert again.figures["generated_grams"] == first.figures["generated_grams"]
    assert month_rows(options.out_dir / "demo-ledger.db") > 0  # the demo's ledger has them
    assert month_rows(data_ledger) == before  # the officer's has none of them
