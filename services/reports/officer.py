"""The officer's monthly report: per-township and per-village figures of one month.

Input: the answer of a worker's ``GET /months/{YYYY-MM}`` (gathered from every worker:
the month buckets of the stream state, local calendar months in the network's time
zone), the reference data for names, and the dead-letter topic. Output: CSV, JSON or a
self-contained HTML page with Chinese and English column names.

People read the HTML page: kg and percentages. Programs read CSV and JSON: grams and
fractions, in columns whose names say so (``(g)``, ``(fraction)``, ``_grams``). The CSV
starts with a UTF-8 byte-order mark, without which spreadsheet programs on Chinese-locale
machines decode it in the local code page and garble the headers.

A month without figures is not reported as a month of zeros: :func:`empty_reason` says
why it is empty (in the future, beyond the months the workers keep, or no events).

Two recovery figures, each under its own name (one Chinese and one English name each, so
no two columns read 回收率 for different numbers):

- **当月回收比 regulated ratio** (the table's ``ratio``, JSON ``recovery_fraction``):
  recovered ÷ generated in the month, where each material's recovered grams count only up
  to what was generated of that material in the same month and village, so
  over-collecting cardboard left from an earlier month cannot hide EPS foam that was
  never collected. Settled per village and material, then summed for townships and the
  county, so one village's surplus never fills another's shortfall. Empty when nothing
  was generated.
- **回收率 recovery ratio, 物料平衡 mass balance** (the KPI ``recovery_ratio``,
  :mod:`streams.officer_kpis`): the same, with what was on hand at the month's start
  added to what there was to recover. The targets and Prometheus use this one.
"""

from __future__ import annotations

import csv
import html
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any

import orjson

from services.reports.units import kg_text, percent_text
from streams import MONTH_BUCKETS_KEPT, decode_raw

COLUMNS = (
    ("level", "级别 level"),
    ("hub_id", "乡镇 township"),
    ("hub_name", "乡镇名称 township name"),
    ("village_id", "村 village"),
    ("village_name", "村名 village name"),
    ("generated", "产生量 generated (g)"),
    ("recovered", "回收量 recovered (g)"),
    ("ratio", "当月回收比 regulated ratio, capped at generation in the month (fraction)"),
    ("requested", "申请清运 pickups requested"),
    ("completed", "完成清运 pickups completed"),
    ("overdue", "逾期清运 pickups overdue"),
    ("cancelled", "取消清运 pickups cancelled"),
    ("issued", "容器发出 container uses"),
    ("returned", "容器归还 container returns"),
)
LEVELS = {"county": "县 county", "township": "乡镇 township", "village": "村 village"}
#: the page's column names: kg and percent for people (the cells carry their unit)
HTML_TITLES = {"generated": "产生量 generated", "recovered": "回收量 recovered",
               "ratio": "当月回收比 regulated ratio, capped at generation in the month (%)"}
#: the JSON names of the row fields
JSON_KEYS = {"generated": "generated_grams", "recovered": "recovered_grams",
             "ratio": "recovery_fraction", "requested": "pickups_requested",
             "completed": "pickups_completed", "overdue": "pickups_overdue",
             "cancelled": "pickups_cancelled",
             "issued": "container_uses", "returned": "container_returns"}


def regulated_parts(generated: dict[str, int], recovered: dict[str, int]) -> tuple[int, int]:
    """One village's (counted recovered, generated) grams of the regulated ratio: each
    material's recovery capped at its generation. Summed over villages, never capped on
    the sums, so one village's surplus cannot fill another's shortfall."""
    gen = sum(g for g in generated.values() if g > 0)
    rec = sum(min(max(recovered.get(m, 0), 0), g) for m, g in generated.items() if g > 0)
    return rec, gen


def regulated_ratio(generated: dict[str, int], recovered: dict[str, int]) -> float | None:
    """One village's recovered ÷ generated, each material's recovery capped at its
    generation (None when nothing was generated)."""
    rec, gen = regulated_parts(generated, recovered)
    return rec / gen if gen > 0 else None


@dataclass
class Figures:
    generated: dict[str, int] = field(default_factory=dict)
    recovered: dict[str, int] = field(default_factory=dict)
    requested: int = 0
    completed: int = 0
    overdue: int = 0
    cancelled: int = 0
    issued: int = 0
    returned: int = 0
    #: the regulated ratio's parts, settled per village row as it is added
    regulated_counted: int = 0
    regulated_generated: int = 0

    def add(self, row: dict[str, Any]) -> None:
        """Add one village's row (the regulated ratio is capped on the row's own figures)."""
        counted, generated = regulated_parts(row.get("generated_grams", {}),
                                             row.get("recovered_grams", {}))
        self.regulated_counted += counted
        self.regulated_generated += generated
        for m, g in row.get("generated_grams", {}).items():
            self.generated[m] = self.generated.get(m, 0) + g
        for m, r in row.get("recovered_grams", {}).items():
            self.recovered[m] = self.recovered.get(m, 0) + r
        pk = row.get("pickups", {})
        self.requested += pk.get("requested", 0)
        self.completed += pk.get("completed", 0)
        self.overdue += pk.get("overdue", 0)
        self.cancelled += pk.get("cancelled", 0)
        for c in row.get("containers", {}).values():
            self.issued += c.get("issued", 0)
            self.returned += c.get("returned", 0)

    def values(self) -> dict[str, Any]:
        return {
            "generated": sum(self.generated.values()),
            "recovered": sum(self.recovered.values()),
            "ratio": (self.regulated_counted / self.regulated_generated
                      if self.regulated_generated > 0 else None),
            "requested": self.requested,
            "completed": self.completed,
            "overdue": self.overdue,
            "cancelled": self.cancelled,
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


def _worst_first(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Lowest recovery ratio first; rows without one (nothing to recover) last."""
    return sorted(rows, key=lambda r: (r["recovery_ratio"] is None,
                                       r["recovery_ratio"] or 0.0, r[key]))


#: months the trend covers, the report's own included
TREND_MONTHS = 12
#: the KPIs whose month-on-month change and 12-month trend the report gives
TREND_KPIS = ("parcels", "recovery_ratio", "no_second_packaging_rate", "tape_le_45mm_rate",
              "reusable_share", "grams_per_parcel", "nondegradable_plastic_grams")


def co2e_factors(network: Any, factors: Any = None) -> Any:
    """The CO2e and scrap factors of the officer's KPIs (streams.officer_kpis.Co2eFactors)
    from the facts file, by event material and container type. The single-use packaging a
    container use replaces is the planner's (optimizer.factors.single_use_lines), so the
    report's CO2e avoided and the planner's agree on what reuse saves."""
    from optimizer.factors import load_factors, single_use_lines
    from streams.officer_kpis import Co2eFactors

    f = factors if factors is not None else load_factors()
    v = f.value
    prod = {"cardboard": v("materials_kg_co2e_per_kg.board"),
            "paper_fill": v("materials_kg_co2e_per_kg.board"),
            "plastic_film": v("materials_kg_co2e_per_kg.plastic_film"),
            "tape": v("materials_kg_co2e_per_kg.plastic_film"),
            "eps_foam": v("materials_kg_co2e_per_kg.polystyrene_eps"),
            "ice_pack": v("materials_kg_co2e_per_kg.gel_ice_pack"),
            "pp_plastic": v("materials_kg_co2e_per_kg.polypropylene_moulded")}
    burn = {"plastic_film": v("incineration_kg_co2e_per_kg.plastic_film"),
            "tape": v("incineration_kg_co2e_per_kg.plastic_film"),
            "eps_foam": v("incineration_kg_co2e_per_kg.polystyrene_eps"),
            "pp_plastic": v("incineration_kg_co2e_per_kg.polypropylene_moulded")}
    scrap = {"cardboard": v("scrap_cny_per_kg.board"), "paper_fill": v("scrap_cny_per_kg.board"),
             "plastic_film": v("scrap_cny_per_kg.plastic_film"),
             "pp_plastic": v("scrap_cny_per_kg.polypropylene_moulded")}

    def made_and_burnt(grams: dict[str, float]) -> float:
        return sum(g / 1000 * (prod[m] + burn.get(m, 0.0)) for m, g in grams.items())

    lines = single_use_lines(f)
    mix = f.shares("packaging.parcel_mix")
    ordinary = sum(share * made_and_burnt(lines[kind]) for kind, share in mix.items())
    # an insulated box keeps its ice packs, so it replaces the EPS box and tape only
    eps = made_and_burnt(lines["eps_box"]) - made_and_burnt(lines["ice_packs"])
    substitute = {"insulated_box": eps, "reusable_crate": ordinary}
    wash = (v("containers.cleaning_kwh_per_container")
            * v("vehicles.china_grid_kg_co2_per_kwh"))
    life = {"insulated_box": v("containers.insulated_box_cycle_life"),
            "reusable_crate": v("containers.reusable_crate_cycle_life")}
    reuse = {}
    for ct, spec in getattr(network, "container_types", {}).items():
        key = str(getattr(ct, "value", ct))
        if key in life:
            reuse[key] = wash + spec.unit_grams / 1000 * prod[str(spec.material.value)] / life[key]
    carton = lines["carton"]
    return Co2eFactors(
        production_kg_per_kg=prod, incineration_kg_per_kg=burn, scrap_cny_per_kg=scrap,
        substitute_kg_per_use=substitute, reuse_kg_per_use=reuse,
        new_carton_kg=carton["cardboard"] / 1000 * prod["cardboard"])


def kpi_levels(data: dict[str, Any], network: Any, month: str, targets: dict[str, Any],
               history: dict[str, dict[str, Any]] | None = None, co2e: Any = None
               ) -> dict[str, Any]:
    """The officer's KPIs (streams.officer_kpis) of the county, each township and each
    village, townships and villages worst first, each with the targets it meets; with
    `history` (month -> that month's rows) also each level's `month_on_month` change and
    `trend_12m` (the TREND_KPIS of the 12 months ending with this one, oldest first). A
    month in which the level has no rows has every trend KPI None, so its change to the
    next is None too, for `parcels` as for the ratios."""
    from streams.officer_kpis import add_rows, kpis, meets

    history = history or {}
    # what a damaged or lost container weighs, left out of the single-use figures
    mass = {str(getattr(ct, "value", ct)): (str(spec.material.value), float(spec.unit_grams))
            for ct, spec in getattr(network, "container_types", {}).items()}
    months = [month_shift(month, -k) for k in range(TREND_MONTHS - 1, -1, -1)]
    past = {m: history.get(m, {}).get("villages", []) for m in months if m != month}

    def series(select: Any) -> list[dict[str, Any]]:
        out = []
        for m in months:
            rows = [r for r in (data.get("villages", []) if m == month else past[m])
                    if select(r)]
            if not rows:  # no figures: not a month of zeros, every KPI unknown
                out.append({"month": m, **dict.fromkeys(TREND_KPIS)})
                continue
            k = kpis(add_rows(rows), co2e, mass)
            out.append({"month": m, **{name: k[name] for name in TREND_KPIS}})
        return out

    def judged(figures: dict[str, Any], select: Any = None) -> dict[str, Any]:
        k = kpis(figures, co2e, mass)
        k["targets_met"] = {name: meets(k.get(name), t, month)
                            for name, t in targets["targets"].items()}
        if select is not None and history:
            trend = series(select)
            before, now = trend[-2], trend[-1]
            k["month_on_month"] = {
                name: None if before[name] is None or now[name] is None
                else now[name] - before[name] for name in TREND_KPIS}
            k["trend_12m"] = trend
        return k

    rows = data.get("villages", [])
    by_hub: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_hub.setdefault(row["hub_id"], []).append(row)
    villages = []
    for row in rows:
        village = network.villages.get(row["village_id"])
        villages.append({"village_id": row["village_id"],
                         "village_name": village.name if village is not None else "",
                         "hub_id": row["hub_id"],
                         **judged(row, lambda r, v=row["village_id"]: r["village_id"] == v)})
    townships = [{"hub_id": hub, "hub_name": _hub_name(network, hub),
                  "villages": len(members),
                  **judged(add_rows(members), lambda r, h=hub: r["hub_id"] == h)}
                 for hub, members in by_hub.items()]
    return {
        "county": {"name": getattr(network, "county", ""),
                   **judged(add_rows(rows), lambda r: True)},
        "townships": _worst_first(townships, "hub_id"),
        "villages": _worst_first(villages, "village_id"),
        "targets": targets,
        "co2e_baseline": CO2E_BASELINE if co2e is not None else None,
    }


#: the no-action baseline CO2e avoided is measured against (streams.officer_kpis)
CO2E_BASELINE = ("the same parcels with no reusable containers (each use replaced by the "
                 "single-use packaging it stands for: EPS box and tape for an insulated box, "
                 "the parcel mix's carton, bag or envelope for a crate), no reused cartons "
                 "and no collection (recovered plastic burnt with municipal waste); less a "
                 "wash per use and the container's production over its cycle life; "
                 "recycling credits not counted")


def _hub_name(network: Any, hub_id: str) -> str:
    hub = network.hubs.get(hub_id)
    return hub.name if hub is not None else ""


def month_shift(month: str, months: int) -> str:
    """``month`` ("YYYY-MM") moved by ``months`` calendar months."""
    year, mon = int(month[:4]), int(month[5:7])
    index = year * 12 + mon - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def empty_reason(month: str, has_figures: bool, current_month: str,
                 kept: int = MONTH_BUCKETS_KEPT) -> str | None:
    """Why ``month`` has no figures (None: it has some). ``current_month``: the month of
    the clock in the network's time zone; the workers keep the month of stream time and
    the ``kept - 1`` before it, and stream time follows the clock."""
    if has_figures:
        return None
    if month > current_month:
        return f"{month} is in the future (it is {current_month} now)"
    oldest = month_shift(current_month, -(kept - 1))
    if month < oldest:
        return (f"{month} is beyond the {kept} months the workers keep (from {oldest}): "
                "use the export archived for that month")
    return f"no events were counted in {month}"


def _local_month(value: Any, tz: tzinfo) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        return None
    if at.tzinfo is None:
        return None
    try:
        return at.astimezone(tz).strftime("%Y-%m")
    except OverflowError:  # year 9999 or 1 shifted out of range: refused for it, not ours
        return None


def dead_letter_month(record: dict[str, Any], tz: tzinfo) -> str | None:
    """The local month a dead-lettered record belongs to: its event's ``occurred_at`` when
    the original can be read, else when it was dead-lettered."""
    try:
        original = orjson.loads(decode_raw(record))
    except (orjson.JSONDecodeError, ValueError):
        original = None
    if isinstance(original, dict):
        month = _local_month(original.get("occurred_at"), tz)
        if month is not None:
            return month
    return _local_month(record.get("dead_lettered_at"), tz)


def dead_letters_by_reason(records: Iterable[dict[str, Any]], month: str,
                           tz: tzinfo) -> dict[str, int]:
    """How many records of ``month`` were dead-lettered, per reason (largest first)."""
    counts = Counter(str(r.get("reason", "unknown")) for r in records
                     if dead_letter_month(r, tz) == month)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True)
class MonthReport:
    """One month's report: the rows of :func:`build_rows` and what frames them.

    ``dead_letters`` is None when the dead-letter topic could not be read
    (``dead_letters_note`` says why); ``empty`` is why the month has no figures.
    """

    month: str
    county: str
    timezone: str
    rows: list[dict[str, Any]]
    generated_at: datetime
    dead_letters: dict[str, int] | None = None
    dead_letters_note: str = ""
    empty: str | None = None
    #: the KPIs at every level and the targets (`kpi_levels`); None: not computed
    levels: dict[str, Any] | None = None

    @property
    def title(self) -> str:
        title = f"{self.county} {self.month} 包装废弃物月报 packaging waste monthly report"
        if self.empty:
            title += f" — 无数据 no data: {self.empty}"
        return title

    @property
    def generated(self) -> str:
        """When the report was made, RFC 3339 in the network's time zone."""
        return self.generated_at.isoformat(timespec="seconds")

    def dead_letter_lines(self) -> list[tuple[str, str]]:
        if self.dead_letters is None:
            return [("not read", self.dead_letters_note)]
        lines = [(reason, str(n)) for reason, n in self.dead_letters.items()]
        lines.append(("合计 total", str(sum(self.dead_letters.values()))))
        if self.dead_letters_note:  # read, but perhaps not all of the month's
            lines.append(("注 note", self.dead_letters_note))
        return lines


def _cell(key: str, value: Any) -> str:
    if key == "ratio":
        return "" if value is None else f"{value:.4f}"
    return str(value)


def _html_cell(key: str, value: Any) -> str:
    if key in ("generated", "recovered"):
        return kg_text(value)
    if key == "ratio":
        return percent_text(value)
    return str(value)


#: the officer's KPIs as CSV columns after the figures (grams and fractions, like the rest)
CSV_KPI_COLUMNS = (
    ("parcels", "包裹 parcels"),
    ("recovery_ratio", "回收率 recovery ratio, 物料平衡 mass balance (fraction)"),
    ("unrecorded_recovered_grams", "未登记回收 recovered, never recorded (g)"),
    ("no_second_packaging_rate", "无二次包装 no second box (fraction)"),
    ("tape_le_45mm_rate", "胶带≤45毫米 tape <= 45 mm (fraction)"),
    ("reusable_share", "循环包装 reusable share (fraction)"),
    ("cartons_reused", "纸箱复用 cartons reused"),
    ("nondegradable_plastic_grams", "不可降解塑料 non-degradable plastic (g)"),
    ("grams_per_parcel", "克/件 g per parcel"),
    ("containers_damaged", "容器损坏 containers damaged"),
    ("containers_lost", "容器丢失 containers lost"),
    ("packaging_co2e_kg", "包装碳排放 packaging CO2e (kg)"),
    ("co2e_avoided_kg", "减排量 CO2e avoided (kg)"),
    ("recovered_scrap_value_cny", "回收物价值 recovered scrap value (CNY)"),
)


def _level_of(levels: dict[str, Any], row: dict[str, Any]) -> dict[str, Any]:
    """The KPIs of a table row's county, township or village."""
    if row["village_id"]:
        return next((v for v in levels["villages"] if v["village_id"] == row["village_id"]),
                    {})
    if row["hub_id"]:
        return next((t for t in levels["townships"] if t["hub_id"] == row["hub_id"]), {})
    return dict(levels["county"])


def _kpi_csv(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def to_csv(report: MonthReport) -> str:
    """The table (grams, fractions), then a blank line and the report's title, when it was
    generated and the month's dead letters by reason."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    kpi_cols = CSV_KPI_COLUMNS if report.levels else ()
    w.writerow([title for _k, title in COLUMNS] + [title for _k, title in kpi_cols])
    for r in report.rows:
        kpi = _level_of(report.levels, r) if report.levels else {}
        w.writerow([_cell(k, r[k]) for k, _t in COLUMNS]
                   + [_kpi_csv(kpi.get(k)) for k, _t in kpi_cols])
    w.writerow([])
    w.writerow(["报告 report", report.title])
    w.writerow(["生成时间 generated at", report.generated])
    w.writerow(["死信原因 dead-letter reason", "事件数 events"])
    for reason, count in report.dead_letter_lines():
        w.writerow([reason, count])
    return "\ufeff" + buf.getvalue()


def to_json(report: MonthReport) -> str:
    rows = []
    for r in report.rows:
        row = {"level": r["level"].split()[-1]}
        for key, _title in COLUMNS[1:]:
            row[JSON_KEYS.get(key, key)] = r[key]
        rows.append(row)
    levels = report.levels or {}
    return orjson.dumps({
        "title": report.title,
        "month": report.month,
        "county": levels.get("county", {"name": report.county}),
        "townships": levels.get("townships", []),
        "villages": levels.get("villages", []),
        "targets": levels.get("targets", {}),
        "co2e_baseline": levels.get("co2e_baseline"),
        "timezone": report.timezone,
        "generated_at": report.generated,
        "empty_reason": report.empty,
        "dead_letters": None if report.dead_letters is None else {
            "by_reason": report.dead_letters, "total": sum(report.dead_letters.values())},
        "dead_letters_note": report.dead_letters_note or None,
        "rows": rows,
    }, option=orjson.OPT_INDENT_2).decode() + "\n"


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


#: the officer's KPIs on the page: (key, Chinese and English title, how to show it)
KPI_COLUMNS = (
    ("parcels", "包裹 parcels", "int"),
    ("recovery_ratio", "回收率 recovery ratio, 物料平衡 mass balance", "pct"),
    ("unrecorded_recovered_grams", "未登记回收 recovered, never recorded", "kg"),
    ("no_second_packaging_rate", "无二次包装 no second box", "pct"),
    ("tape_le_45mm_rate", "胶带≤45毫米 tape <= 45 mm", "pct"),
    ("reusable_share", "循环包装 reusable share", "pct"),
    ("cartons_reused", "纸箱复用 cartons reused", "int"),
    ("nondegradable_plastic_grams", "不可降解塑料 non-degradable plastic", "kg"),
    ("grams_per_parcel", "克/件 g per parcel", "g"),
    ("containers_damaged", "容器损坏 containers damaged", "int"),
    ("containers_lost", "容器丢失 containers lost", "int"),
    ("pickups_overdue", "逾期清运 pickups overdue", "int"),
    ("packaging_co2e_kg", "包装碳排放 packaging CO2e (kg)", "kgco2"),
    ("co2e_avoided_kg", "减排量 CO2e avoided (kg)", "kgco2"),
    ("recovered_scrap_value_cny", "回收物价值 scrap value (CNY)", "cny"),
)


def _kpi_cell(value: Any, how: str) -> str:
    if value is None:
        return "–"
    if how == "pct":
        return percent_text(value)
    if how == "kg":
        return kg_text(value)
    if how == "g":
        return f"{value:,.0f} g"
    if how == "kgco2":
        return f"{value:,.1f} kg"
    if how == "cny":
        return f"¥{value:,.0f}"
    return f"{value:,}"


def _kpi_table(levels: dict[str, Any]) -> str:
    """County and townships (worst recovery first); a target missed shows as ✗, met as ✓."""
    e = html.escape
    targets = levels.get("targets", {}).get("targets", {})
    head = "".join(f"<th>{e(t)}</th>" for _k, t, _h in KPI_COLUMNS)
    rows = []
    for name, level in ([(levels["county"].get("name", ""), levels["county"])]
                        + [(f"{t['hub_name']} {t['hub_id']}", t) for t in levels["townships"]]):
        cells = []
        for key, _t, how in KPI_COLUMNS:
            met = level.get("targets_met", {}).get(key)
            mark = "" if key not in targets or met is None else (" ✓" if met else " ✗")
            cells.append(f'<td class="n">{e(_kpi_cell(level.get(key), how) + mark)}</td>')
        rows.append(f"<tr><td>{e(name)}</td>{''.join(cells)}</tr>")
    tlines = "".join(
        f"<li><code>{e(k)}</code> {'≥' if 'at_least' in t else '≤'} "
        f"{e(str(t.get('at_least', t.get('at_most'))))} (since {e(str(t.get('since', '')))}): "
        f"{e(str(t.get('source', '')))}</li>" for k, t in targets.items())
    return ("<h2>考核指标 officer KPIs</h2><p class=\"note\">县与各乡镇, 回收率最低者在前 "
            "(county, then townships, worst recovery first). Rates count the parcels that "
            "say; ✓/✗: target met or missed. Definitions: docs/operations.md.</p>"
            f"<table><thead><tr><th>级别 level</th>{head}</tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table><p class=\"note\">目标 targets "
            f"({e(str(levels.get('targets', {}).get('version', '')))}):</p><ul class=\"note\">"
            f"{tlines}</ul>")


def to_html(report: MonthReport) -> str:
    """A self-contained page (inline CSS, no scripts, no external resources)."""
    e = html.escape
    head = "".join(f"<th>{e(HTML_TITLES.get(k, t))}</th>" for k, t in COLUMNS)
    body = []
    numeric = {"generated", "recovered", "ratio", "requested", "completed", "overdue",
               "cancelled", "issued", "returned"}
    for r in report.rows:
        cls = "county" if r["level"] == LEVELS["county"] else (
            "township" if r["level"] == LEVELS["township"] else "village")
        cells = "".join(
            f'<td class="n">{e(_html_cell(k, r[k]))}</td>' if k in numeric
            else f"<td>{e(_html_cell(k, r[k]))}</td>"
            for k, _t in COLUMNS
        )
        body.append(f'<tr class="{cls}">{cells}</tr>')
    dead = "".join(f'<tr><td>{e(reason)}</td><td class="n">{e(count)}</td></tr>'
                   for reason, count in report.dead_letter_lines())
    return (
        "<!DOCTYPE html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
        f"<title>{e(report.title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{e(report.title)}</h1>"
        f"<p class=\"note\">生成时间 generated at {e(report.generated)}. 月份按 "
        f"{e(report.timezone)} 时区计算 (calendar month in the network's time zone). "
        "回收率 (物料平衡 mass balance) = 各材料回收量 (不超过月初存量 + 当月产生量) ÷ "
        "(月初存量 + 当月产生量) (recovery ratio: each material's recovered weight counts up "
        "to what was on hand at the month's start plus generated in it). 当月回收比 = 各材料回收量 "
        "(不超过当月产生量) ÷ 当月产生量 (regulated ratio: each material's recovered weight "
        "counts up to what was generated of it that month). Both are settled per village and "
        "material, then summed for townships and the county. Weights in kg. 容器发出 = "
        "reusable containers sent with shipments; 容器归还 = returned (good or damaged). "
        "The CSV and JSON exports hold the same figures in grams and fractions.</p>"
        f"{_kpi_table(report.levels) if report.levels else ''}"
        "<h2>月度数据 monthly figures</h2>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        "<h2>死信 dead-lettered events</h2>"
        "<p class=\"note\">Events of the month that packloop could not count, by reason "
        "(<code>packloop dead-letter list --reason R</code> shows them).</p>"
        "<table><thead><tr><th>原因 reason</th><th>事件数 events</th></tr></thead>"
        f"<tbody>{dead}</tbody></table>"
        "</body></html>\n"
    )
