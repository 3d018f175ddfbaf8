"""The officer report's KPIs at village, township and county level against figures recomputed
here from the input events, without the KPI module (streams.officer_kpis).

Events with the campaign fields (said or left out at random) go through real partition
processors in time order; the report's levels come from the month rows those processors
keep (what `GET /months/{YYYY-MM}` serves). The independent reference model decides which
events were applied (dedupe, dead letters); everything else is counted from those events.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from services.reports.officer import co2e_factors, kpi_levels
from streams.months import month_rows
from streams.network import load_network
from streams.officer_kpis import Co2eFactors
from tests.streams.helpers import Harness, MonthModel, expected_months, local_month, parse_ts
from tests.streams.reference import generate

NET = load_network()
MONTH = "2026-11"
PLASTIC = {"plastic_film", "tape", "eps_foam", "pp_plastic"}
TARGETS = {"version": "test", "targets": {
    "tape_le_45mm_rate": {"at_least": 0.9, "since": "2020-12-01", "source": "test"}}}
#: round test factors (not the facts file's), so every CO2e and scrap figure is checkable
PROD = {"cardboard": 1.0, "paper_fill": 2.0, "plastic_film": 3.0, "tape": 4.0,
        "eps_foam": 5.0, "ice_pack": 0.5, "pp_plastic": 6.0}
BURN = {"plastic_film": 10.0, "tape": 20.0, "eps_foam": 30.0, "pp_plastic": 40.0}
SCRAP = {"cardboard": 1.5, "plastic_film": 0.25, "pp_plastic": 2.0}
SUBST = {"insulated_box": 0.7, "reusable_crate": 0.3}
REUSE = {"insulated_box": 0.05, "reusable_crate": 0.02}
CO2E = Co2eFactors(production_kg_per_kg=PROD, incineration_kg_per_kg=BURN,
                   scrap_cny_per_kg=SCRAP, substitute_kg_per_use=SUBST,
                   reuse_kg_per_use=REUSE, new_carton_kg=0.25)


def _with_campaign_fields(events: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    for e in events:
        if e.get("type") != "shipment" or e.get("direction") != "down":
            continue
        if rng.random() < 0.8:
            e["outer_box_added"] = rng.random() < 0.1
        if rng.random() < 0.7:
            e["tape_width_mm"] = rng.choice([40, 45, 48, 60])
        if rng.random() < 0.5:
            e["reused_carton"] = rng.random() < 0.2
        for item in e.get("packaging", []):
            if rng.random() < 0.5:
                item["degradable"] = rng.random() < 0.5
    return events


@pytest.fixture(scope="module")
def run() -> tuple[dict[str, Any], MonthModel, dict[str, Any]]:
    events = generate(NET, 3000, seed=5, villages=25, span_hours=24 * 60,
                      start=datetime(2026, 10, 10, tzinfo=UTC))
    events = _with_campaign_fields(events, seed=5)
    events.sort(key=lambda e: parse_ts(e["occurred_at"]) if "occurred_at" in e else
                datetime.min.replace(tzinfo=UTC))
    h = Harness(2)
    m = MonthModel(NET, 2)
    for e in events:
        h.produce(orjson.dumps(e))
        m.feed(e)
    for p in range(2):
        h.run(p, batch=250)
    states = [s for proc in h.procs.values() for s in proc.villages.values()]
    data = {"month": MONTH, "villages": month_rows(states, MONTH)}
    history = {mo: {"month": mo, "villages": month_rows(states, mo)}
               for mo in ("2026-10", MONTH)}
    return kpi_levels(data, NET, MONTH, TARGETS, co2e=CO2E), m, history


def _recount(m: MonthModel) -> dict[str, dict[str, Any]]:
    """Per village: the month's counts, and the waste on hand at the month's start (the
    applied events before it, generated minus recovered by material, never below 0)."""
    units = {ct.value: (s.material.value, s.unit_grams) for ct, s in NET.container_types.items()}
    out: dict[str, dict[str, Any]] = defaultdict(lambda: {
        "n": defaultdict(int), "gen_before": defaultdict(int), "rec_before": defaultdict(int),
        "single_use": defaultdict(int)})
    for e in m.applied_events:
        month = local_month(parse_ts(e["occurred_at"]), NET)
        v = out[e["village_id"]]
        gen, rec = defaultdict(int), defaultdict(int)
        t = e["type"]
        if t == "shipment" and e["direction"] == "down":
            for item in e["packaging"]:
                gen[item["material"]] += item["grams"]
        elif t == "packaging_return" and e["condition"] != "ok":
            mat, unit = units[e["container_type"]]
            gen[mat] += e["count"] * unit
            if e["condition"] == "damaged":  # handed back: recovered in the same moment
                rec[mat] += e["count"] * unit
        elif t == "recycling_collected":
            for mat, g in e["collected_grams"].items():
                rec[mat] += g
        elif t == "waste_adjustment":
            for mat, g in e.get("generated_grams", {}).items():
                gen[mat] += g
            for mat, g in e.get("recovered_grams", {}).items():
                rec[mat] += g
        if month == MONTH and t in ("shipment", "waste_adjustment"):
            # single-use packaging: not a damaged or lost reusable container
            for mat, g in gen.items():
                v["single_use"][mat] += g
        if month < MONTH:
            for mat, g in gen.items():
                v["gen_before"][mat] += g
            for mat, g in rec.items():
                v["rec_before"][mat] += g
        if month != MONTH or t != "shipment" or e["direction"] != "down":
            continue
        n = v["n"]
        n["parcels"] += 1
        if "outer_box_added" in e:
            n["outer_known"] += 1
            n["outer_added"] += e["outer_box_added"]
        if "tape_width_mm" in e or any(i["material"] == "tape" for i in e["packaging"]):
            n["taped"] += 1
        if "tape_width_mm" in e:
            n["tape_known"] += 1
            n["tape_narrow"] += e["tape_width_mm"] <= 45
        n["reusable"] += bool(e.get("containers"))
        n["reused"] += e.get("reused_carton") is True
        for item in e["packaging"]:
            if item.get("degradable") is not None and item["material"] in PLASTIC:
                n["degradable_known"] += item["grams"]
            if item.get("degradable") is False and item["material"] in PLASTIC:
                n["nondegradable"] += item["grams"]
    return out


def _counted(on_hand: dict[str, int], gen: dict[str, int], rec: dict[str, int]
             ) -> dict[str, int]:
    return {mat: min(max(0, rec.get(mat, 0)), max(0, on_hand.get(mat, 0)) + max(0, gen.get(mat, 0)))
            for mat in set(on_hand) | set(gen) | set(rec)}


def _ratio(on_hand: dict[str, int], gen: dict[str, int], rec: dict[str, int]) -> float | None:
    total = counted = 0
    for mat in set(on_hand) | set(gen) | set(rec):
        available = max(0, on_hand.get(mat, 0)) + max(0, gen.get(mat, 0))
        total += available
        counted += min(max(0, rec.get(mat, 0)), available)
    return counted / total if total else None


def test_every_kpi_at_every_level_matches_the_events(run) -> None:
    """Each KPI of each village recomputed from the events; townships and the county from
    their villages' events summed, the recovery ratio as the mass balance at all three."""
    levels, m, _history = run
    months = expected_months(m)
    counts = _recount(m)
    want: dict[str, dict[str, Any]] = {}
    for (vid, month), x in months.items():
        if month != MONTH:
            continue
        c = counts[vid]
        on_hand = {mat: g - c["rec_before"].get(mat, 0) for mat, g in c["gen_before"].items()}
        on_hand = {mat: g for mat, g in on_hand.items() if g > 0}
        want[vid] = {"gen": dict(x["gen"]), "rec": dict(x["rec"]), "on_hand": on_hand,
                     "n": dict(c["n"]), "pk": x.get("pk", [0, 0, 0]),
                     "cont": {ct: list(v) for ct, v in x["cont"].items()}}
    got = {v["village_id"]: v for v in levels["villages"]}
    assert set(got) == set(want) and len(got) >= 10
    checked_rates = checked_co2e = broken = 0
    for vid, w in want.items():
        g, n = got[vid], w["n"]
        assert g["parcels"] == n.get("parcels", 0)
        assert g["on_hand_start_grams"] == w["on_hand"], vid
        assert g["recovery_ratio"] == pytest.approx(_ratio(w["on_hand"], w["gen"], w["rec"]))
        if n.get("outer_known"):
            assert g["no_second_packaging_rate"] == pytest.approx(
                1 - n["outer_added"] / n["outer_known"])
            checked_rates += 1
        if n.get("tape_known"):
            assert g["tape_le_45mm_rate"] == pytest.approx(n["tape_narrow"] / n["tape_known"])
        if n.get("parcels"):
            assert g["reusable_share"] == pytest.approx(n["reusable"] / n["parcels"])
        assert g["cartons_reused"] == n.get("reused", 0)
        # unknown when no plastic item of the village's month said either way
        assert g["nondegradable_plastic_grams"] == (
            n.get("nondegradable", 0) if n.get("degradable_known") else None)
        assert g["pickups_requested"] == w["pk"][0]
        assert g["containers_lost"] == sum(c[3] for c in w["cont"].values())
        assert g["coverage"]["tape_width"] == (
            pytest.approx(n["tape_known"] / n["taped"]) if n.get("taped") else None)
        # CO2e and scrap from the round test factors
        counted = _counted(w["on_hand"], w["gen"], w["rec"])
        single_use = counts[vid]["single_use"]
        assert g["packaging_co2e_kg"] == pytest.approx(
            sum(gr / 1000 * PROD[mat] for mat, gr in single_use.items() if gr > 0), abs=1e-3)
        if n.get("parcels"):
            assert g["grams_per_parcel"] == pytest.approx(
                sum(gr for gr in single_use.values() if gr > 0) / n["parcels"])
        broken += any(c[2] or c[3] for c in w["cont"].values()) and bool(n.get("parcels"))
        issued = {ct: c[0] for ct, c in w["cont"].items()}
        assert g["co2e_avoided_kg"] == pytest.approx(
            sum(k * (SUBST[ct] - REUSE[ct]) for ct, k in issued.items())
            + 0.25 * n.get("reused", 0)
            + sum(gr / 1000 * BURN.get(mat, 0.0) for mat, gr in counted.items()), abs=1e-3)
        assert g["recovered_scrap_value_cny"] == pytest.approx(
            sum(gr / 1000 * SCRAP.get(mat, 0.0) for mat, gr in counted.items()), abs=1e-2)
        checked_co2e += bool(issued) and bool(counted)
    assert checked_rates >= 5 and checked_co2e >= 5
    assert broken >= 3, "villages with damaged or lost containers and parcels were checked"

    def summed(vids: list[str]) -> float | None:
        """Each village's own balance (recovered counted up to its on hand + generated),
        then summed: one village's unrecorded recovery never fills another's shortfall."""
        total = counted = 0
        for vid in vids:
            w = want[vid]
            for mat in set(w["on_hand"]) | set(w["gen"]) | set(w["rec"]):
                available = max(0, w["on_hand"].get(mat, 0)) + max(0, w["gen"].get(mat, 0))
                total += available
                counted += min(max(0, w["rec"].get(mat, 0)), available)
        return counted / total if total else None

    for t in levels["townships"]:
        members = [vid for vid, v in got.items() if v["hub_id"] == t["hub_id"]]
        assert t["recovery_ratio"] == pytest.approx(summed(members))
        assert t["parcels"] == sum(want[v]["n"].get("parcels", 0) for v in members)
    assert levels["county"]["recovery_ratio"] == pytest.approx(summed(list(want)))
    assert levels["county"]["parcels"] == sum(w["n"].get("parcels", 0) for w in want.values())


def test_townships_and_villages_come_worst_first_with_their_targets(run) -> None:
    levels, _m, _history = run
    ratios = [t["recovery_ratio"] for t in levels["townships"] if t["recovery_ratio"] is not None]
    assert ratios == sorted(ratios)
    tape = levels["county"]["tape_le_45mm_rate"]
    assert levels["county"]["targets_met"]["tape_le_45mm_rate"] is (tape >= 0.9)
    assert levels["targets"] == TARGETS


def test_the_page_shows_the_kpis_with_their_targets(run) -> None:
    """The HTML report leads with the KPI table: the county, then every township, Chinese
    titles first, the tape target marked met or missed as the county's figure says."""
    from services.reports.officer import MonthReport, to_html

    levels, _m, _history = run
    page = to_html(MonthReport(month=MONTH, county=NET.county, timezone="Asia/Shanghai",
                               rows=[], generated_at=datetime(2026, 12, 1, tzinfo=UTC),
                               levels=levels))
    table = page.split("考核指标 officer KPIs", 1)[1].split("</table>", 1)[0]
    assert table.count("<tr>") == 2 + len(levels["townships"])  # head, county, townships
    assert "胶带≤45毫米 tape &lt;= 45 mm" in table
    met = levels["county"]["targets_met"]["tape_le_45mm_rate"]
    assert ("✓" if met else "✗") in table.split("</tr>")[1]


def test_month_on_month_and_the_12_month_trend(run) -> None:
    """With the months before, each level gives its change since last month and the 12
    months ending with this one; a month without figures is a point without values."""
    _levels, _m, history = run
    levels = kpi_levels(history[MONTH], NET, MONTH, TARGETS, history=history)
    october = kpi_levels(history["2026-10"], NET, "2026-10", TARGETS)
    county = levels["county"]
    assert [p["month"] for p in county["trend_12m"]][-2:] == ["2026-10", MONTH]
    assert county["trend_12m"][-1]["recovery_ratio"] == county["recovery_ratio"]
    assert county["trend_12m"][-2]["parcels"] == october["county"]["parcels"] > 0
    assert county["month_on_month"]["parcels"] == (county["parcels"]
                                                   - october["county"]["parcels"])
    first = county["trend_12m"][0]
    assert first["parcels"] is None and first["recovery_ratio"] is None
    hub = levels["townships"][0]
    before = next(t for t in october["townships"] if t["hub_id"] == hub["hub_id"])
    assert hub["month_on_month"]["recovery_ratio"] == pytest.approx(
        hub["recovery_ratio"] - before["recovery_ratio"])


def test_the_csv_carries_each_rows_kpis(run) -> None:
    """After the figures, each CSV row has its own level's KPIs (county, township, village)."""
    import csv
    import io

    from services.reports.officer import MonthReport, build_rows, to_csv

    levels, _m, history = run
    report = MonthReport(month=MONTH, county=NET.county, timezone="Asia/Shanghai",
                         rows=build_rows(history[MONTH], NET),
                         generated_at=datetime(2026, 12, 1, tzinfo=UTC), levels=levels)
    text = to_csv(report).removeprefix("\ufeff").split("\n\n")[0]
    rows = list(csv.DictReader(io.StringIO(text)))
    col = "包裹 parcels"
    assert int(rows[0][col]) == levels["county"]["parcels"] > 0
    by_village = {v["village_id"]: v for v in levels["villages"]}
    for r in rows:
        vid = r["村 village"]
        if vid:
            assert int(r[col]) == by_village[vid]["parcels"]
            rate = by_village[vid]["tape_le_45mm_rate"]
            cell = r["胶带≤45毫米 tape <= 45 mm (fraction)"]
            assert cell == ("" if rate is None else f"{rate:.4f}")


def test_co2e_factors_come_from_the_facts_file() -> None:
    """The report's CO2e factors recomputed from factors.yaml's numbers by hand: an insulated
    box replaces an EPS box and its tape (made and burnt), a crate the parcel mix's outer
    packaging; a use costs a wash and 1/cycle-life of the container; a new carton is its
    board."""
    from pathlib import Path

    import yaml

    raw = yaml.safe_load((Path(__file__).resolve().parents[2] / "optimizer" / "data"
                          / "factors.yaml").read_text("utf-8"))

    def v(dotted: str) -> Any:
        g, n = dotted.split(".")
        return raw[g][n]["value"]

    board, film = v("materials_kg_co2e_per_kg.board"), v("materials_kg_co2e_per_kg.plastic_film")
    eps = v("materials_kg_co2e_per_kg.polystyrene_eps")
    pp = v("materials_kg_co2e_per_kg.polypropylene_moulded")
    burn_film = v("incineration_kg_co2e_per_kg.plastic_film")
    tape_g = v("packaging.tape_m_per_box") * v("packaging.tape_grams_per_m")
    f = co2e_factors(NET)
    assert f.substitute_kg_per_use["insulated_box"] == pytest.approx(
        v("packaging.eps_box_grams") / 1000
        * (eps + v("incineration_kg_co2e_per_kg.polystyrene_eps"))
        + tape_g / 1000 * (film + burn_film))
    mix = v("packaging.parcel_mix")
    carton = (v("packaging.carton_grams") / 1000 * board + tape_g / 1000 * (film + burn_film)
              + v("simulation.paper_fill_grams_per_carton") / 1000 * board)
    bag = v("packaging.mailer_bag_grams") / 1000 * (film + burn_film)
    envelope = v("packaging.envelope_grams") / 1000 * board
    assert f.substitute_kg_per_use["reusable_crate"] == pytest.approx(
        mix["carton"] * carton + mix["bag"] * bag + mix["envelope"] * envelope)
    wash = v("containers.cleaning_kwh_per_container") * v("vehicles.china_grid_kg_co2_per_kwh")
    crate = NET.container_types[next(ct for ct in NET.container_types
                                     if ct.value == "reusable_crate")]
    assert f.reuse_kg_per_use["reusable_crate"] == pytest.approx(
        wash + crate.unit_grams / 1000 * pp / v("containers.reusable_crate_cycle_life"))
    assert f.new_carton_kg == pytest.approx(v("packaging.carton_grams") / 1000 * board)
    assert f.scrap_cny_per_kg["cardboard"] == v("scrap_cny_per_kg.board")
