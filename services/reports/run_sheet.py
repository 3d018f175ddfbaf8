"""A hub's dispatch as people read it: a text summary, and a printable A4 run sheet per van
(Chinese first, English beside it: the drivers read Chinese, the plan's vocabulary is
English). Both show the containers the hub holds and warn when the stops drop more of a
type than that (`box_shortfalls`); a sheet with no trips says there is nothing to do."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from html import escape
from typing import Any

from services.reports.units import mass_text

#: Chinese names of the plan's vocabulary; an unknown id is shown as it is
ZH = {
    "ambient": "常温", "chilled": "冷藏", "frozen": "冷冻",
    "insulated_box": "保温箱", "reusable_crate": "周转筐",
    "ambient_van": "常温厢式车", "multi_temp_van": "多温区冷藏车",
    "trunk_reefer_truck": "干线冷藏车",
}


def _n(x: float) -> str:
    """Parcels and boxes: whole numbers as such, else one decimal (the plan's counts are
    continuous; the sheet does not hide a share)."""
    return f"{x:.0f}" if abs(x - round(x)) < 0.05 else f"{x:.1f}"


def _hm(stamp: str, day: str = "") -> str:
    """HH:MM of an RFC 3339 stamp, marked +N when it falls N days after the sheet's
    `day` (a shift from 20:00 showed a trip 22:10-00:19 and a stop at 23:59 with no mark)."""
    hm = stamp[11:16]
    if day and stamp[:10] != day:
        try:
            n = (date.fromisoformat(stamp[:10]) - date.fromisoformat(day)).days
        except ValueError:
            return hm
        return f"{hm}{n:+d}d" if n else hm
    return hm


def _items(counts: dict[str, float], zh: bool) -> list[str]:
    return [f"{ZH.get(k, k)} {k} {_n(v)}" if zh else f"{k} {_n(v)}"
            for k, v in counts.items() if v > 0.005]


def _mass(grams: float) -> str:
    # 15 g of recyclables read "0.0 kg" on a stop that had nothing else
    return mass_text(grams)


#: boxes dropped beyond those held by at most this are rounding (a sheet shows one decimal)
BOX_SLACK = 0.05


def box_shortfalls(dispatch: dict[str, Any]) -> list[tuple[str, float, float]]:
    """(container type, boxes the sheet's stops drop, boxes the hub holds) for each type the
    stops drop more of than its ``containers_at_hub``."""
    drops: dict[str, float] = defaultdict(float)
    for trip in dispatch.get("trips") or []:
        for stop in trip["stops"]:
            for ct, n in (stop.get("boxes_to_drop") or {}).items():
                drops[ct] += n
    held = dispatch.get("containers_at_hub") or {}
    return [(ct, n, float(held.get(ct, 0.0))) for ct, n in sorted(drops.items())
            if n > float(held.get(ct, 0.0)) + BOX_SLACK]


def _shortfall_en(ct: str, drops: float, held: float) -> str:
    return (f"{ct}: the stops drop {_n(drops)} boxes but the hub holds {_n(held)} "
            f"({_n(drops - held)} short): check the stock before loading")


def _shortfall_zh(ct: str, drops: float, held: float) -> str:
    return (f"{ZH.get(ct, ct)} {ct}：各站共需放下 {_n(drops)} 个，但枢纽只有 {_n(held)} 个"
            f"（缺 {_n(drops - held)} 个），装车前请核对库存")


#: a plan this far from its bound (or further) is said to be so on the sheet
SHEET_GAP_WARN = 0.05


def _plan_quality(dispatch: dict[str, Any]) -> list[tuple[str, str]]:
    """(Chinese, English) of a warning that the plan behind the sheet stopped far from its
    bound. Why: a dispatch plan 63 % from its bound printed like a proven one; only the
    JSON's `gap` told (an outside audit)."""
    gap = dispatch.get("gap")
    if dispatch.get("trips") and isinstance(gap, int | float) and gap >= SHEET_GAP_WARN:
        return [(f"计划在时间限制内停止，距下界 {gap:.0%}：车次可能多于所需，可向规划员确认",
                 f"the plan stopped {gap:.0%} from its bound (status "
                 f"{dispatch.get('plan_status')}): these trips may cost more than needed; "
                 "ask the planner before loading")]
    return []


def box_warnings(dispatch: dict[str, Any]) -> list[str]:
    """The sheet's ``warnings``: one line per container type its stops drop more of than
    the hub holds, and one when the plan stopped far from its bound."""
    return [en for _zh, en in _warnings(dispatch)]


def _no_plan(dispatch: dict[str, Any]) -> list[tuple[str, str]]:
    """(Chinese, English) of the warning of a hub left without a plan: its empty sheet
    must not read as a day with nothing to do."""
    why = dispatch.get("no_plan")
    if not why:
        return []
    return [(f"本枢纽本日没有可行的配送计划（{why}）：本日车次请人工安排，并修正数据"
             "（车辆、周转箱、需求）以便下次计划",
             f"no plan for this hub on this date ({why}): plan this date's trips by hand "
             "(this sheet stays the date's), and fix the data (fleet, pools, demand) for "
             "the next dispatch")]


def _warnings(dispatch: dict[str, Any]) -> list[tuple[str, str]]:
    """(Chinese, English) of each warning, worked out from the sheet itself (so a sheet
    from before ``warnings`` is checked too): its ``warnings`` are these, in English."""
    return _no_plan(dispatch) + [(_shortfall_zh(*s), _shortfall_en(*s))
                                 for s in box_shortfalls(dispatch)] + _plan_quality(dispatch)


def _held(dispatch: dict[str, Any], zh: bool) -> str:
    """The containers at the hub, every type, none held included."""
    counts = dispatch.get("containers_at_hub") or {}
    if not counts:
        return "无 none" if zh else "none"
    return ", ".join(f"{ZH.get(k, k)} {k} {_n(v)}" if zh else f"{k} {_n(v)}"
                     for k, v in counts.items())


#: what a sheet with no trips says (Chinese, English)
NOTHING_TO_DO = ("本日无任务：本枢纽没有配送车次",
                 "Nothing to do: no milk runs planned for this hub on this date")


def vans(dispatch: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The trips per van, in the van's order of departure."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for trip in sorted(dispatch["trips"], key=lambda t: (_van_order(t["van"]), t["depart_at"])):
        out[trip["van"]].append(trip)
    return dict(out)


def _van_order(van: str) -> tuple[str, int, str]:
    """A van's place by type, then number as a number: as text, "van 10" came before
    "van 2" at a hub with ten or more vans (an audit)."""
    kind, _, number = van.rpartition(" ")
    return (kind, int(number), "") if number.isdigit() else (van, -1, number)


def render_text(dispatch: dict[str, Any]) -> str:
    d = dispatch

    def hm(stamp: str) -> str:
        return _hm(stamp, d["date"])

    lines = [f"Dispatch of hub {d['hub_id']} {d.get('hub_name') or ''} for {d['date']} "
             f"({d['timezone']}): {len(d['trips'])} trip(s), plan {d['job_id']}",
             f"  containers at hub: {_held(d, zh=False)}"]
    lines += [f"  WARNING: {en}" for _, en in _warnings(d)]
    if not d["trips"] and not d.get("no_plan"):
        lines.append(f"  {NOTHING_TO_DO[1][0].lower()}{NOTHING_TO_DO[1][1:]}")
    for van, trips in vans(d).items():
        lines.append(f"\n{van}")
        for t in trips:
            lines.append(f"  trip {t['trip_no']}: {hm(t['depart_at'])}-{hm(t['return_at'])}"
                         f"  {t['km']:.1f} km  {len(t['stops'])} stop(s)")
            for s in t["stops"]:
                lines.append(f"    {s['seq']}. {hm(s['arrive_at'])}-{hm(s['depart_at'])} "
                             f"{s['village_id']} {s.get('village_name') or ''}".rstrip())
                parts = [("deliver", s["deliver_parcels"]), ("drop boxes", s["boxes_to_drop"]),
                         ("take back", s["collect_parcels"]),
                         ("empties", s["empties_to_collect"])]
                for label, counts in parts:
                    shown = _items(counts, zh=False)
                    if shown:
                        lines.append(f"       {label}: {', '.join(shown)}")
                if s["recyclables_grams"] > 0.5:
                    lines.append(f"       recyclables: {_mass(s['recyclables_grams'])}")
    return "\n".join(lines) + "\n"


CSS = """
@page { size: A4; margin: 12mm; }
body { font-family: "Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", sans-serif;
       font-size: 10.5pt; color: #000; margin: 0; }
section.van { break-after: page; page-break-after: always; }
section.van:last-of-type { break-after: auto; page-break-after: auto; }
h1 { font-size: 15pt; margin: 0 0 2mm; }
h2 { font-size: 12pt; margin: 5mm 0 1mm; }
.en { color: #444; font-weight: normal; font-size: 0.85em; }
table { border-collapse: collapse; width: 100%; margin-bottom: 3mm; }
th, td { border: 0.3mm solid #333; padding: 1mm 1.5mm; vertical-align: top; text-align: left; }
th { background: #eee; }
td.tick { width: 12mm; }
.meta { margin-bottom: 3mm; }
.warn { border: 0.6mm solid #000; padding: 1.5mm; margin-bottom: 3mm; font-weight: bold; }
.idle { font-size: 13pt; font-weight: bold; }
.sign { margin-top: 8mm; }
thead { display: table-header-group; }
tr { break-inside: avoid; page-break-inside: avoid; }
th.rep { background: #fff; font-weight: normal; }
"""


def _both(zh: str, en: str) -> str:
    return f'{escape(zh)} <span class="en">{escape(en)}</span>'


def _cell(counts: dict[str, float]) -> str:
    return "<br>".join(escape(x) for x in _items(counts, zh=True)) or "–"


def render_html(dispatch: dict[str, Any]) -> str:
    d = dispatch

    def hm(stamp: str) -> str:
        return _hm(stamp, d["date"])

    hub = f"{d['hub_id']} {d.get('hub_name') or ''}".strip()
    head = (f'<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
            f"<title>配送单 Run sheet {escape(hub)} {escape(d['date'])}</title>"
            f"<style>{CSS}</style></head><body>\n")
    held = (f'<div class="meta">{_both("枢纽现有周转箱", "Containers at hub")}: '
            f"{escape(_held(d, zh=True))}</div>")
    warns = "".join(
        f'<div class="warn">{escape(f"警告：{zh}")} '
        f'<span class="en">{escape(f"WARNING: {en}")}</span></div>'
        for zh, en in _warnings(d))
    sections = []
    groups = vans(d) or {"": []}
    for van, trips in groups.items():
        vt, _, number = van.rpartition(" ")
        van_zh = f"{ZH.get(vt, vt)} {number}号车" if van else "无车次"
        rows = []
        for t in trips:
            no = t["trip_no"]
            title = _both(f"第{no}车次", f"trip {no}")
            rows.append(f"<h2>{title}: {hm(t['depart_at'])}–{hm(t['return_at'])}, "
                        f"{t['km']:.1f} km</h2>")
            rows.append(
                # the first head row names hub, date, van and trip: a table that runs onto a
                # second printed page repeats its head there, and the page said whose it was
                # only on the first (an audit)
                f'<table><thead><tr><th colspan="9" class="rep">{escape(hub)} · '
                f"{escape(d['date'])} · {escape(van_zh)} · {title}</th></tr><tr>"
                f"<th>{_both('序号', 'No.')}</th><th>{_both('村', 'Village')}</th>"
                f"<th>{_both('到达/离开', 'Arrive/leave')}</th>"
                f"<th>{_both('配送包裹', 'Deliver parcels')}</th>"
                f"<th>{_both('放下周转箱', 'Boxes to drop')}</th>"
                f"<th>{_both('揽收包裹', 'Take back parcels')}</th>"
                f"<th>{_both('回收空箱', 'Empties to collect')}</th>"
                f"<th>{_both('回收可回收物', 'Recyclables')}</th>"
                f"<th>{_both('签收', 'Sign')}</th></tr></thead><tbody>")
            for s in t["stops"]:
                grams = s["recyclables_grams"]
                rows.append(
                    f"<tr><td>{s['seq']}</td>"
                    f"<td>{escape(s.get('village_name') or '')}<br>"
                    f"<span class=\"en\">{escape(s['village_id'])}</span></td>"
                    f"<td>{hm(s['arrive_at'])}–{hm(s['depart_at'])}</td>"
                    f"<td>{_cell(s['deliver_parcels'])}</td>"
                    f"<td>{_cell(s['boxes_to_drop'])}</td>"
                    f"<td>{_cell(s['collect_parcels'])}</td>"
                    f"<td>{_cell(s['empties_to_collect'])}</td>"
                    f"<td>{_mass(grams) if grams > 0.5 else '–'}</td>"
                    f"<td class=\"tick\"></td></tr>")
            rows.append("</tbody></table>")
        if not trips and not d.get("no_plan"):  # no plan: the warning above says so
            rows.append(f'<p class="idle">{_both(*NOTHING_TO_DO)}</p>')
        sections.append(
            f'<section class="van"><h1>{_both("配送单", "Run sheet")} · '
            f"{escape(hub)} · {escape(d['date'])}</h1>"
            f'<div class="meta">{_both("车辆", "Van")}: {escape(van_zh)} '
            f'<span class="en">{escape(van or "none")}</span> · '
            f"{_both('计划', 'Plan')}: {escape(d['job_id'])}</div>"
            + held + warns + "".join(rows)
            + f'<div class="sign">{_both("司机签字", "Driver")}: ________ &nbsp; '
            f'{_both("枢纽签字", "Hub")}: ________</div></section>\n')
    return head + "".join(sections) + "</body></html>\n"
