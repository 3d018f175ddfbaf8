"""The officer's report says each figure once, under one name, in one unit: the two recovery
figures are told apart and both settled per village; plastic nobody said anything about is
unknown, not 0 g; a month without figures has no change to the next; an impossible month is
refused as such; a mass column of the page is in kg throughout.

Rows are written by hand, so every expected figure is worked out here from them.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import datetime
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from services.cli import cli
from services.reports.officer import MonthReport, build_rows, kpi_levels, to_csv, to_html, to_json
from services.reports.units import kg_text
from streams.months import valid_month
from streams.network import load_network
from streams.officer_kpis import load_targets

NET = load_network()
TZ = NET.timezone
MONTH = "2026-11"
NO_TARGETS: dict[str, Any] = {"version": "none", "targets": {}}


def _row(vid: str, gen: dict[str, int], rec: dict[str, int], on_hand: dict[str, int] | None = None,
         counts: dict[str, int] | None = None) -> dict[str, Any]:
    return {"village_id": vid, "hub_id": NET.villages[vid].hub_id, "generated_grams": gen,
            "recovered_grams": rec, "on_hand_start_grams": on_hand or {},
            "pickups": {}, "containers": {}, "counts": counts or {}}


def _report(data: dict[str, Any], targets: dict[str, Any] = NO_TARGETS) -> MonthReport:
    return MonthReport(month=data["month"], county=NET.county, timezone="Asia/Shanghai",
                       rows=build_rows(data, NET),
                       generated_at=datetime(2026, 12, 5, 6, 0, tzinfo=TZ),
                       dead_letters={}, levels=kpi_levels(data, NET, data["month"], targets))


def _tables(page: str) -> list[tuple[list[str], list[list[str]]]]:
    """Each table of the page: its header cells and its body rows' cells, as text."""
    out = []
    for table in re.findall(r"<table>(.*?)</table>", page, re.S):
        rows = [[html.unescape(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr, re.S)]
                for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)]
        out.append((rows[0], rows[1:]))
    return out


#: H01: V001 collected 500 g of cardboard more than it generated (left from earlier, none on
#: hand on record); V002 collected 400 of 1,000 g generated and had 200 g on hand
TWO_RATIOS = {"month": MONTH, "villages": [
    _row("H01-V001", {"cardboard": 1000}, {"cardboard": 1500}),
    _row("H01-V002", {"cardboard": 1000}, {"cardboard": 400}, on_hand={"cardboard": 200}),
]}


def test_the_two_recovery_figures_have_a_name_each_and_are_settled_per_village() -> None:
    """The regulated ratio counts V001's cardboard up to its 1,000 g and V002's 400 g:
    1,400 / 2,000 (capped on the township's sums, V001's surplus filled V002's shortfall:
    1,900 / 2,000). The mass balance adds V002's 200 g on hand: 1,400 / 2,200. Each is a
    column of its own and only the mass balance is called 回收率."""
    regulated, balance = 1400 / 2000, 1400 / 2200
    report = _report(TWO_RATIOS)
    text = to_csv(report).removeprefix("\ufeff").split("\n\n")[0]
    header, *rows = list(csv.reader(io.StringIO(text)))
    assert len(set(header)) == len(header)
    named = [h for h in header if "回收率" in h]
    assert len(named) == 1 and "mass balance" in named[0]
    county, hub = (dict(zip(header, r, strict=True)) for r in rows[:2])
    assert county[named[0]] == hub[named[0]] == f"{balance:.4f}"
    regulated_col = next(h for h in header if h.startswith("当月回收比"))
    assert county[regulated_col] == hub[regulated_col] == f"{regulated:.4f}"

    body = orjson.loads(to_json(report))
    assert body["rows"][0]["recovery_fraction"] == pytest.approx(regulated)
    assert body["rows"][1]["recovery_fraction"] == pytest.approx(regulated)
    assert body["county"]["recovery_ratio"] == pytest.approx(balance)

    page = to_html(report)
    heads = [h for head, _rows in _tables(page) for h in head]
    assert len([h for h in heads if "回收率" in h]) == 1
    kpi_head, kpi_rows = _tables(page)[0]
    monthly_head, monthly_rows = _tables(page)[1]
    kpi_col = next(i for i, h in enumerate(kpi_head) if "回收率" in h)
    assert kpi_rows[0][kpi_col] == f"{balance * 100:.1f}%"  # 63.6%
    reg_col = next(i for i, h in enumerate(monthly_head) if h.startswith("当月回收比"))
    assert monthly_rows[0][reg_col] == f"{regulated * 100:.1f}%"  # 70.0%


def test_non_degradable_plastic_is_unknown_when_no_item_said() -> None:
    """45.8 kg of film and 180 kg of EPS, none saying whether it is degradable: the figure is
    unknown and the "no non-degradable plastic" target neither met nor missed; so in an empty
    month. Once items say, their grams are judged."""
    targets = load_targets()
    assert "nondegradable_plastic_grams" in targets["targets"]
    silent = {"month": MONTH, "villages": [_row(
        "H01-V001", {"plastic_film": 45_800, "eps_foam": 180_000}, {},
        counts={"parcels": 40, "degradable_known_grams": 0, "nondegradable_plastic_grams": 0})]}
    for data in (silent, {"month": MONTH, "villages": []}):
        county = kpi_levels(data, NET, MONTH, targets)["county"]
        assert county["nondegradable_plastic_grams"] is None
        assert county["targets_met"]["nondegradable_plastic_grams"] is None
    report = _report(silent, targets)
    head, rows = _tables(to_html(report))[0]
    col = next(i for i, h in enumerate(head) if h.startswith("不可降解塑料"))
    assert rows[0][col] == "–"
    assert orjson.loads(to_json(report))["county"]["nondegradable_plastic_grams"] is None

    def judged(known: int, nondegradable: int) -> dict[str, Any]:
        data = {"month": MONTH, "villages": [_row("H01-V001", {"plastic_film": 900}, {}, counts={
            "parcels": 3, "degradable_known_grams": known,
            "nondegradable_plastic_grams": nondegradable})]}
        return kpi_levels(data, NET, MONTH, targets)["county"]

    said = judged(900, 0)
    assert said["nondegradable_plastic_grams"] == 0
    assert said["targets_met"]["nondegradable_plastic_grams"] is True
    some = judged(900, 250)
    assert some["nondegradable_plastic_grams"] == 250
    assert some["targets_met"]["nondegradable_plastic_grams"] is False


def test_no_change_from_a_month_without_figures() -> None:
    """October without rows: every KPI of its trend point is None, so is every change to
    November, parcels included; with October's rows the change is November less October."""
    november = {"month": MONTH, "villages": [
        _row("H01-V001", {"cardboard": 1000}, {"cardboard": 500}, counts={"parcels": 8838}),
        _row("H01-V002", {"cardboard": 10}, {}, counts={"parcels": 2})]}
    empty = kpi_levels(november, NET, MONTH, NO_TARGETS,
                       history={MONTH: november, "2026-10": {"villages": []}})
    for level in (empty["county"], *empty["townships"], *empty["villages"]):
        assert set(level["month_on_month"].values()) == {None}, level["month_on_month"]
        assert level["trend_12m"][-2]["month"] == "2026-10"
        assert level["trend_12m"][-2]["parcels"] is None
    october = {"month": "2026-10", "villages": [
        _row("H01-V001", {"cardboard": 100}, {}, counts={"parcels": 8000})]}
    known = kpi_levels(november, NET, MONTH, NO_TARGETS,
                       history={MONTH: november, "2026-10": october})
    assert known["county"]["month_on_month"]["parcels"] == 8840 - 8000
    villages = {v["village_id"]: v for v in known["villages"]}
    assert villages["H01-V001"]["month_on_month"]["parcels"] == 838
    # V002 had no row in October: nothing to compare with
    assert villages["H01-V002"]["month_on_month"]["parcels"] is None


@pytest.mark.parametrize(("month", "valid"), [
    ("0000-01", False), ("0000-12", False), ("0001-01", True), ("9999-12", True),
    ("2026-11\n", False), ("\u0662\u0660\u0662\u0666-11", False)])
def test_a_month_is_a_calendar_month(month: str, valid: bool) -> None:
    """There is no year 0 (the worker and the report could not shift months back from it);
    a trailing newline or non-ASCII digits are not YYYY-MM."""
    assert valid_month(month) is valid


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The months the report command asks a stand-in worker for; it refuses what a worker
    refuses (not YYYY-MM from year 1)."""
    months: list[str] = []

    def fetch(url: str, month: str, timeout: float = 30.0) -> dict[str, Any]:
        months.append(month)
        if not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", month) or month < "0001-01":
            raise RuntimeError("month must be YYYY-MM")
        return {"month": month, "villages": []}

    monkeypatch.setattr("services.cli.report.fetch_month", fetch)
    monkeypatch.setattr("services.cli.worker.read_dead_letters", lambda *a, **k: [])
    return months


def test_year_zero_is_one_invalid_month_error(asked: list[str]) -> None:
    result = CliRunner().invoke(cli, ["report", "officer", "--month", "0000-01"])
    assert result.exit_code == 2, result.output
    assert "invalid month" in result.output
    assert "did not answer" not in result.output and "beyond" not in result.output
    assert asked == []


def test_the_trend_of_year_one_asks_for_no_month_before_it(asked: list[str]) -> None:
    """0001-03 is a month (beyond those kept: written with --allow-empty); its trend reaches
    back past year 1, which is not asked for."""
    result = CliRunner().invoke(cli, ["report", "officer", "--month", "0001-03", "--source",
                                      "worker", "--allow-empty", "--format", "json"])
    assert result.exit_code == 0, result.output
    assert sorted(asked) == ["0001-01", "0001-02", "0001-03"]
    assert "beyond the 25 months" in orjson.loads(result.output)["empty_reason"]


def test_kg_for_people() -> None:
    """Always kg; to the gram under 10 kg, so some grams never read as 0."""
    assert [kg_text(g) for g in (0, 16, 995, 1_720, 45_800, 1_452_000)] == [
        "0.000 kg", "0.016 kg", "0.995 kg", "1.720 kg", "45.8 kg", "1,452 kg"]


def test_every_mass_column_of_the_page_is_in_kg() -> None:
    """995 g and 1,720 g in one column read 0.995 kg and 1.720 kg, not "995 g" and "1.72 kg";
    so in the KPI table's mass columns (non-degradable plastic, unrecorded recovery)."""
    said = {"parcels": 5, "degradable_known_grams": 995, "nondegradable_plastic_grams": 995}
    data = {"month": MONTH, "villages": [
        _row("H01-V001", {"plastic_film": 995}, {"plastic_film": 995}, counts=said),
        _row("H02-V001", {"cardboard": 1720}, {"cardboard": 2000})]}
    page = to_html(_report(data))
    mass = ("产生量", "回收量", "未登记回收", "不可降解塑料")
    checked: list[str] = []
    for head, rows in _tables(page)[:2]:
        for i, title in enumerate(head):
            if title.startswith(mass):
                cells = [r[i] for r in rows]
                assert all(c.endswith(" kg") or c == "–" for c in cells), (title, cells)
                checked += cells
    assert {"0.995 kg", "1.720 kg", "2.715 kg", "2.995 kg", "0.280 kg"} <= set(checked)
    assert not any(c.endswith(" g") and not c.endswith(" kg") for c in checked)


@pytest.mark.parametrize("text", [b"", b"target:\n  recovery_ratio: {at_least: 0.5}\n",
                                  b"targets: {}\n", b"name: tiny\nhorizon_days: 7\n",
                                  b"\xff\xfe", b"targets: [\n"])
def test_a_targets_file_without_targets_is_refused_by_name(tmp_path, text: bytes) -> None:
    """An empty file, `target:` misspelled or another YAML file were taken as "no change":
    the report judged the month by the defaults and named the county's file in its version.
    A file that is not UTF-8 said only "'utf-8' codec can't decode", without the file."""
    path = tmp_path / "county-targets.yaml"
    path.write_bytes(text)
    with pytest.raises(ValueError, match="county-targets.yaml: ") as err:
        load_targets(path)
    assert str(err.value).startswith(str(path))
