"""The officer's monthly report from month rows: sums per township and county, the
regulated recovery ratio, bilingual CSV headers and a self-contained HTML page.

Rows are written by hand here so every expected figure is visible in the test.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

import pytest

from services.reports.officer import (
    COLUMNS,
    MonthReport,
    build_rows,
    regulated_ratio,
    to_csv,
    to_html,
)
from streams.network import load_network

NET = load_network()


def month_report(data: dict, **changes: object) -> MonthReport:
    values: dict = dict(month=data["month"], county=NET.county, timezone="Asia/Shanghai",
                        rows=build_rows(data, NET),
                        generated_at=datetime(2026, 12, 5, 6, 16, 3, tzinfo=NET.timezone),
                        dead_letters={"too_late": 2, "future_timestamp": 1})
    values.update(changes)
    return MonthReport(**values)


def _row(vid: str, gen: dict, rec: dict, pk: tuple[int, int, int], cont: dict) -> dict:
    return {
        "village_id": vid,
        "hub_id": NET.villages[vid].hub_id,
        "generated_grams": gen,
        "recovered_grams": rec,
        "pickups": dict(zip(("requested", "completed", "overdue"), pk, strict=True)),
        "containers": {
            ct: dict(zip(("issued", "returned", "damaged", "lost"), c, strict=True))
            for ct, c in cont.items()
        },
    }


DATA = {
    "month": "2026-11",
    "villages": [
        _row("H01-V001", {"cardboard": 1000, "eps_foam": 400}, {"cardboard": 1500}, (2, 1, 1),
             {"reusable_crate": [3, 2, 1, 0], "insulated_box": [1, 0, 0, 1]}),
        _row("H01-V002", {"cardboard": 600}, {"cardboard": 300}, (1, 1, 0), {}),
        _row("H02-V001", {}, {"tape": 50}, (0, 0, 0), {"insulated_box": [2, 2, 0, 0]}),
    ],
}


def test_regulated_ratio_caps_each_material_at_its_generation() -> None:
    # 1,500 g cardboard recovered against 1,000 g generated counts as 1,000; EPS 0 of 400
    assert regulated_ratio({"cardboard": 1000, "eps_foam": 400}, {"cardboard": 1500}) == (
        pytest.approx(1000 / 1400))
    assert regulated_ratio({}, {"tape": 50}) is None
    assert regulated_ratio({"tape": 10}, {"tape": 5}) == 0.5


def test_rows_sum_villages_into_townships_and_county() -> None:
    rows = build_rows(DATA, NET)
    levels = [(r["level"].split()[-1], r["hub_id"], r["village_id"]) for r in rows]
    assert levels == [
        ("county", "", ""),
        ("township", "H01", ""), ("village", "H01", "H01-V001"), ("village", "H01", "H01-V002"),
        ("township", "H02", ""), ("village", "H02", "H02-V001"),
    ]
    county, h01, v1, _v2, h02, _v3 = rows
    assert (county["generated"], county["recovered"]) == (2000, 1850)
    assert (county["requested"], county["completed"], county["overdue"]) == (3, 2, 1)
    assert (county["issued"], county["returned"]) == (6, 4)
    # capped per village, then summed: V001 cardboard 1,500 of 1,000 counts 1,000, EPS 0 of
    # 400; V002 cardboard 300 of 600 (V001's surplus does not fill it): 1,300 / 2,000
    assert h01["ratio"] == pytest.approx(1300 / 2000)
    assert county["ratio"] == pytest.approx(1300 / 2000)  # H02 generated nothing
    assert v1["ratio"] == pytest.approx(1000 / 1400)
    assert h02["ratio"] is None and h02["recovered"] == 50
    assert h01["hub_name"] == NET.hubs["H01"].name
    assert v1["village_name"] == NET.villages["H01-V001"].name


def test_csv_has_bilingual_headers_and_one_line_per_row() -> None:
    """Grams and fractions, in columns whose names say so; then the report's frame."""
    report = month_report(DATA)
    text = to_csv(report)
    assert text.startswith("\ufeff级别 level,")  # the byte-order mark spreadsheets need
    parsed = list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))
    assert parsed[0][:8] == [
        "级别 level", "乡镇 township", "乡镇名称 township name", "村 village",
        "村名 village name", "产生量 generated (g)", "回收量 recovered (g)",
        "当月回收比 regulated ratio, capped at generation in the month (fraction)",
    ]
    assert parsed[len(report.rows) + 1] == []  # the table ends with a blank line
    county = dict(zip(parsed[0], parsed[1], strict=True))
    assert county["产生量 generated (g)"] == "2000"
    # per village: cardboard 1,000 + 300 counts, EPS 0 of 400, tape was not generated
    ratio = "当月回收比 regulated ratio, capped at generation in the month (fraction)"
    assert county[ratio] == "0.6500"
    h02 = dict(zip(parsed[0], parsed[5], strict=True))
    assert h02[ratio] == ""
    frame = parsed[len(report.rows) + 2:]
    assert frame == [
        ["报告 report", f"{NET.county} 2026-11 包装废弃物月报 packaging waste monthly report"],
        ["生成时间 generated at", "2026-12-05T06:16:03+08:00"],
        ["死信原因 dead-letter reason", "事件数 events"],
        ["too_late", "2"], ["future_timestamp", "1"], ["合计 total", "3"],
    ]


def test_html_is_self_contained() -> None:
    rows = build_rows(DATA, NET)
    page = to_html(month_report(DATA))
    assert page.startswith("<!DOCTYPE html>") and 'charset="utf-8"' in page
    assert "<script" not in page and "src=" not in page and "href=" not in page
    assert "http" not in page.lower().replace("http-equiv", "")
    for _k, title in COLUMNS:
        assert title.split(" (")[0] in page
    assert page.count("<tr class=") == len(rows)
    assert NET.villages["H01-V001"].name in page
