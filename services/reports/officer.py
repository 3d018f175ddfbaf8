"""The officer's monthly report: per-township and per-village figures of one month.

Input: the answer of a worker's ``GET /months/{YYYY-MM}`` (gathered from every worker:
the month buckets of the stream state, local calendar months in the network's time
zone) and the reference data for names. Output: CSV or a self-contained HTML page with
Chinese and English column names.

**Regulated recovery ratio**: recovered ÷ generated in the month, where each material's
recovered grams count only up to what was generated of that material in the same month
(and village or township), so over-collecting cardboard left from an earlier month
cannot hide EPS foam that was never collected. Empty when nothing was generated.
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass, field
from typing import Any

COLUMNS = (
    ("level", "级别 level"),
    ("hub_id", "乡镇 township"),
    ("hub_name", "乡镇名称 township name"),
    ("village_id", "村 village"),
    ("village_name", "村名 village name"),
    ("generated", "产生量 generated (g)"),
    ("recovered", "回收量 recovered (g)"),
    ("ratio", "回收率 recovery ratio"),
    ("requested", "申请清运 pickups requested"),
    ("completed", "完成清运 pickups completed"),
    ("overdue", "逾期清运 pickups overdue"),
    ("issued", "容器发出 container uses"),
    ("returned", "容器归还 container returns"),
)
LEVELS = {"county": "县 county", "township": "乡镇 township", "village": "村 village"}


def regulated_ratio(generated: dict[str, int], recovered: dict[str, int]) -> float | None:
    """Recovered ÷ generated, each material's recovery capped at its generation."""
    gen = sum(g for g in generated.values() if g > 0)
    if gen <= 0:
        return None
    rec = sum(min(max(recovered.get(m, 0), 0), g) for m, g in generated.items() if g > 0)
    return rec / gen


@dataclass
class Figures:
    generated: dict[str, int] = field(default_factory=dict)
    recovered: dict[str, int] = field(default_factory=dict)
    requested: int = 0
    completed: int = 0
    overdue: int = 0
    issued: int = 0
    returned: int = 0

    def add(self, row: dict[str, Any]) -> None:
        for m, g in row.get("generated_grams", {}).items():
            self.generated[m] = self.generated.get(m, 0) + g
        for m, r in row.get("recovered_grams", {}).items():
            self.recovered[m] = self.recovered.get(m, 0) + r
        pk = row.get("pickups", {})
        self.requested += pk.get("requested", 0)
        self.completed += pk.get("completed", 0)
        self.overdue += pk.get("overdue", 0)
        for c in row.get("containers", {}).values():
            self.issued += c.get("issued", 0)
            self.returned += c.get("returned", 0)

    def values(self) -> dict[str, Any]:
        return {
            "generated": sum(self.generated.values()),
            "recovered": sum(self.recovered.values()),
            "ratio": regulated_ratio(self.generated, self.recovered),
            "requested": self.requested,
            "completed": self.completed,
            "overdue": self.overdue,
            "issued": self.issued,
            "returned": self.returned,
        }


def build_rows(data: dict[str, Any], network: Any) -> list[dict[str, Any]]:
    """County row, then each township followed by its villages (ids sorted)."""
    county = Figures()
    hubs: dict[str, Figures] = {}
    villages: dict[str, list[dict[str, Any]]] = {}
    for row in data.get("villages", []):
        f = Figures()
        f.add(row)
        county.add(row)
        hubs.setdefault(row["hub_id"], Figures()).add(row)
        village = network.villages.get(row["village_id"])
        villages.setdefault(row["hub_id"], []).append(
            {
                "level": LEVELS["village"],
                "hub_id": row["hub_id"],
                "hub_name": _hub_name(network, row["hub_id"]),
                "village_id": row["village_id"],
                "village_name": village.name if village is not None else "",
                **f.values(),
            }
        )
    out = [
        {
            "level": LEVELS["county"],
            "hub_id": "",
            "hub_name": getattr(network, "county", ""),
            "village_id": "",
            "village_name": "",
            **county.values(),
        }
    ]
    for hub_id in sorted(hubs):
        out.append(
            {
                "level": LEVELS["township"],
                "hub_id": hub_id,
                "hub_name": _hub_name(network, hub_id),
                "village_id": "",
                "village_name": "",
                **hubs[hub_id].values(),
            }
        )
        out.extend(sorted(villages[hub_id], key=lambda r: r["village_id"]))
    return out


def _hub_name(network: Any, hub_id: str) -> str:
    hub = network.hubs.get(hub_id)
    return hub.name if hub is not None else ""


def _cell(key: str, value: Any) -> str:
    if key == "ratio":
        return "" if value is None else f"{value:.4f}"
    return str(value)


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([title for _k, title in COLUMNS])
    for r in rows:
        w.writerow([_cell(k, r[k]) for k, _t in COLUMNS])
    return buf.getvalue()


_CSS = """
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:13px}
th,td{border:1px solid #bbb;padding:3px 7px}
th{background:#eef2ee;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums}
tr.county td{font-weight:bold;background:#dde8dd}
tr.township td{font-weight:bold;background:#f3f6f3}
p.note{color:#555;font-size:12px;max-width:60em}
"""


def to_html(rows: list[dict[str, Any]], month: str, county: str, timezone: str) -> str:
    """A self-contained page (inline CSS, no scripts, no external resources)."""
    e = html.escape
    head = "".join(f"<th>{e(t)}</th>" for _k, t in COLUMNS)
    body = []
    numeric = {"generated", "recovered", "ratio", "requested", "completed", "overdue",
               "issued", "returned"}
    for r in rows:
        cls = "county" if r["level"] == LEVELS["county"] else (
            "township" if r["level"] == LEVELS["township"] else "village")
        cells = "".join(
            f'<td class="n">{e(_cell(k, r[k]))}</td>' if k in numeric
            else f"<td>{e(_cell(k, r[k]))}</td>"
            for k, _t in COLUMNS
        )
        body.append(f'<tr class="{cls}">{cells}</tr>')
    title = f"{county} {month} 包装废弃物月报 packaging waste monthly report"
    return (
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{e(title)}</h1>"
        f"<p class=\"note\">月份按 {e(timezone)} 时区计算 (calendar month in the network's time "
        "zone). 回收率 = 各材料回收量 (不超过当月产生量) ÷ 产生量 (regulated recovery ratio: each "
        "material's recovered grams count up to what was generated of it that month). "
        "容器发出 = reusable containers sent with shipments; 容器归还 = returned (good or "
        "damaged).</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "</body></html>\n"
    )
