"""Self-contained HTML report of a plan: tables and inline SVG plots (route map from
coordinates, cost / CO2e / waste bars against the baselines). No scripts, fonts or map tiles
are fetched, so the file opens offline and can be archived with the plan."""

from __future__ import annotations

import html
import io
import math
import re
from pathlib import Path
from typing import Any

import jinja2
import orjson

from optimizer.result import PlanResult
from optimizer.scenario import Scenario

_TEMPLATE = jinja2.Template(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>packloop plan: {{ name }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
.fig{margin:1em 0}.small{color:#666;font-size:90%}
</style></head><body>
<h1>Plan: {{ name }}</h1>
<p>Status <b>{{ status }}</b>; objective {{ fmt(objective) }} CNY; bound {{ fmt(bound) }} CNY;
gap {{ pct(gap) }}. Horizon {{ horizon }} days ({{ horizon_end }} ends).
{% if objective is not none %}The gap is measured over the candidate tours the model chose
from{% if bound_covers %} (the bound covers {{ bound_covers }}){% endif %}; {% if route_gap is
none %}no bound over all tours was computed, so tours outside that pool might still do
better.{% else %}route gap {{ pct(route_gap) }}: the LP over that pool lies this far above an
LP bound over all tours (the room left for tours outside the pool).{% endif %}{% endif %}
Factor set: <code>{{ factor_set or "scenario values" }}</code>.</p>
{% if diagnosis %}<h2>Diagnosis</h2><ul>{% for d in diagnosis %}<li>{{ d.what }}: {{ d.why }}</li>
{% endfor %}</ul>{% endif %}
{% if kpi_rows %}
<h2>Joint plan against the baselines</h2>
<table><tr><th>KPI</th><th>unit</th>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for label, unit, vals in kpi_rows %}<tr><td>{{ label }}</td><td>{{ unit }}</td>
{% for v in vals %}<td class="n">{{ v }}</td>{% endfor %}</tr>{% endfor %}</table>
<p class="small">Uncoordinated: separate trips per temperature class, single-use packaging,
recyclables on dedicated trips. Sequential: the cheaper of routing first (trips consolidated
with single-use packaging assumed, then packaging chosen for those fixed trips) and
packaging first (packaging chosen by unit cost per use, then the trips){% if sequential_method %};
here {{ sequential_method }}{% endif %}. Same model code, same horizon ends.
Rounding container purchases up to whole boxes adds {{ fmt(rounding) }} CNY (not in the
objective).</p>
{% if baseline_notes %}<ul class="small">{% for n in baseline_notes %}<li>{{ n }}</li>
{% endfor %}</ul>{% endif %}
<div class="fig">{{ bars|safe }}</div>
{% endif %}
{% if map_svg %}<h2>Route map</h2><div class="fig">{{ map_svg|safe }}</div>{% endif %}
<h2>Trips</h2>
<table><tr><th>day</th><th>hub</th><th>kind</th><th>vehicle</th><th>stops</th>
<th>distance, km</th><th>down, litres</th><th>back, litres</th><th>empties, boxes</th>
<th>recyclables, kg</th></tr>
{% for t in trips %}<tr><td>{{ t.day }}</td><td>{{ t.hub_id }}</td><td>{{ t.kind }}</td>
<td>{{ t.vehicle_type }}</td><td>{{ t.stops|join(" → ") }}</td><td class="n">{{ fmt(t.km) }}</td>
<td>{{ t.down }}</td><td>{{ t.back }}</td><td class="n">{{ t.empties }}</td>
<td class="n">{{ t.recyclables_kg }}</td></tr>{% endfor %}</table>
{% if more_trips %}<p class="small">… and {{ more_trips }} more trips in plan.json.</p>{% endif %}
{% if pools %}<h2>Container pools</h2>
<p class="small">Whole boxes over the horizon: purchases and pool expansions rounded up (as
costed above), the other counts to the nearest box; the fractions the model works with are in
plan.json.</p>
<table><tr><th>hub</th><th>type</th><th>start, boxes</th><th>expansion, boxes</th>
<th>issued, boxes</th><th>returned, boxes</th><th>bought, boxes</th><th>lowest stock, boxes</th>
</tr>
{% for p in pools %}<tr><td>{{ p.hub }}</td><td>{{ p.ct }}</td><td class="n">{{ p.start }}</td>
<td class="n">{{ p.expand }}</td><td class="n">{{ p.issued }}</td><td class="n">{{ p.back }}</td>
<td class="n">{{ p.bought }}</td><td class="n">{{ p.low }}</td></tr>{% endfor %}</table>
{% endif %}
{% if marginals %}<h2>What one more is worth</h2>
<p class="small">Cost change of the plan with one more unit (negative: it saves that much).
Boxes and cleaning capacity: duals of the plan's LP with its trips fixed; each unit is worth
that much for at least as many units as "holds for" says, more or fewer (the LP's basis
stays; beyond, the value per unit changes, and a new plan may also change the trips): price
a bigger change with <code>packloop plan whatif</code>. Vehicles: the hub's plan solved
again with one more.</p>
<table><tr><th>hub</th><th>one more</th><th>cost change, CNY</th><th>holds for</th></tr>
{% for r in marginals %}<tr><td>{{ r.hub }}</td><td>{{ r.what }}</td>
<td class="n">{{ r.value }}</td><td class="n">{{ r.range }}</td></tr>{% endfor %}</table>
{% endif %}
<p class="small">Generated by packloop's optimiser. Plan data: plan.json.</p>
</body></html>
""",
    autoescape=True,
)


#: `write_report`'s wall time: a fixed part (matplotlib, the bar charts, the page) and the
#: route map's, per village. County week (390 villages): 1.5-4 s as the machine's load
#: went from 1 to 13 on 2 cores.
REPORT_FIXED_S = 1.0
REPORT_S_PER_VILLAGE = 6e-3


def report_seconds(scenario: Scenario) -> float:
    """How long `write_report` is expected to take for `scenario`: what a caller bound by a
    time limit keeps back for it from the solve."""
    return REPORT_FIXED_S + REPORT_S_PER_VILLAGE * len(scenario.villages)


def _fmt(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:,.1f}" if isinstance(x, float) else str(x)


def _cny(x: float | None) -> str:
    return "–" if x is None else f"{x:+,.2f}"


def value_range(r: dict[str, float | None] | None, unit: str) -> str:
    """A marginal value's range (`marginal.marginal_values`' `valid_for_*`) in words: how
    many more and fewer it holds for at least."""
    if not r:
        return "not computed"

    def one(x: float | None) -> str:
        return "any number" if x is None else f"{x:,.1f}"

    return f"{one(r.get('more'))} more, {one(r.get('fewer'))} fewer ({unit})"


def _boxes(x: float, up: bool = False) -> str:
    """A count of containers as people count them: whole boxes (the model's are continuous,
    see `optimizer.plan.rounding_cost`); `up` for what must be bought in full."""
    return f"{math.ceil(x - 1e-6) if up else round(x):,d}"


def _pct(x: Any) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.3%}"


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg"):]


def baseline_bars_svg(kpis: dict[str, dict[str, Any]]) -> str:
    """Inline SVG: cost, CO2e and single-use packaging of the joint plan and the baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(kpis)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    series = [
        ("cost, CNY", [kpis[n]["cost_cny"]["total"] for n in names]),
        ("CO2e, kg", [kpis[n]["co2e_kg"]["total"] for n in names]),
        ("single-use packaging, kg", [kpis[n]["single_use_grams"] / 1000 for n in names]),
    ]
    colors = ["#2b8a3e", "#1971c2", "#c92a2a"]
    for ax, (title, vals) in zip(axes, series, strict=True):
        ax.bar(names, vals, color=colors[: len(names)])
        ax.set_title(title)
        ax.tick_params(axis="x", labelrotation=15)
    fig.tight_layout()
    out = _svg(fig)
    plt.close(fig)
    return out


def _site_label(kind: str, site_id: str, name: str) -> str:
    return f"{kind} {site_id}" + (f" ({name})" if name and name != site_id else "")


def route_map_svg(plan: dict[str, Any], scenario: Scenario) -> str:
    """Inline SVG route map drawn from coordinates (no map tiles); '' without coordinates.

    The legend names the marker of each kind of site and the colour of each vehicle type;
    every village, hub and the county seat carries its id and name in an SVG ``<title>``,
    which browsers show on hover (matplotlib writes none, so each marker is drawn as its own
    artist with an id and the titles are put in after)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    pos = {v.village_id: (v.lon, v.lat) for v in scenario.villages}
    pos.update({h.hub_id: (h.lon, h.lat) for h in scenario.hubs})
    if all(x == (0.0, 0.0) for x in pos.values()):
        return ""
    depot = (scenario.depot.lon, scenario.depot.lat)
    fig, ax = plt.subplots(figsize=(8, 7))
    titles: dict[str, str] = {}

    def site(gid: str, label: str, xy: tuple[float, float], **style: Any) -> None:
        (marker,) = ax.plot([xy[0]], [xy[1]], linestyle="none", **style)
        marker.set_gid(gid)
        titles[gid] = label

    for k, v in enumerate(scenario.villages):
        site(f"site-v{k}", _site_label("village", v.village_id, v.name), (v.lon, v.lat),
             marker="o", markersize=2.5, color="#999")
    for k, h in enumerate(scenario.hubs):
        site(f"site-h{k}", _site_label("hub", h.hub_id, h.name), (h.lon, h.lat),
             marker="s", markersize=6, color="#1971c2")
    site("site-depot", _site_label("county seat", scenario.depot.id, scenario.depot.name),
         depot, marker="*", markersize=10, color="#c92a2a")
    cmap = plt.get_cmap("tab10")
    colour = {vt: cmap(k % 10) for k, vt in enumerate(sorted(
        {t["vehicle_type"] for t in plan["trips"] if t["kind"] != "trunk"}))}
    drawn = set()
    for t in plan["trips"]:
        if t["kind"] == "trunk":
            hub_xy = pos[t["hub_id"]]
            ax.plot([depot[0], hub_xy[0]], [depot[1], hub_xy[1]], c="#c92a2a", lw=0.6,
                    alpha=0.4)
            continue
        key = (t["hub_id"], tuple(t["stops"]), t["vehicle_type"])
        if key in drawn:
            continue
        drawn.add(key)
        path = [pos[t["hub_id"]], *[pos[s] for s in t["stops"]], pos[t["hub_id"]]]
        ax.plot([p[0] for p in path], [p[1] for p in path], lw=0.8,
                c=colour[t["vehicle_type"]], alpha=0.7)
    legend = [
        Line2D([], [], linestyle="none", marker="o", markersize=4, color="#999",
               label="village"),
        Line2D([], [], linestyle="none", marker="s", markersize=6, color="#1971c2",
               label="township hub"),
        Line2D([], [], linestyle="none", marker="*", markersize=10, color="#c92a2a",
               label="county seat"),
        *[Line2D([], [], color=c, lw=1.5, label=f"milk run: {vt}") for vt, c in colour.items()],
    ]
    if any(t["kind"] == "trunk" for t in plan["trips"]):
        legend.append(Line2D([], [], color="#c92a2a", lw=1, alpha=0.6,
                             label="trunk leg county – hub"))
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_aspect(1 / math.cos(math.radians(scenario.depot.lat or 1e-9)))
    ax.legend(handles=legend, loc="best", fontsize=8)
    out = _svg(fig)
    plt.close(fig)
    return re.sub(r'<g id="(site-[a-z0-9-]+)">',
                  lambda m: f'{m.group(0)}<title>{html.escape(titles[m.group(1)])}</title>', out)


def baseline_notes(baselines: dict[str, dict[str, Any]]) -> list[str]:
    """A sentence for each headline baseline without a plan, or cut short at a gap: such
    a baseline has no column (it was dropped without a word), or figures above its best
    plan, and the joint plan's gain against it with them."""
    notes = []
    for n in ("sequential", "uncoordinated"):
        b = baselines.get(n)
        if not b:
            continue
        if not b.get("kpis"):
            why = next((f": {d['why']}" for d in b.get("diagnosis") or [] if d.get("why")), "")
            notes.append(f"{n.capitalize()}: no plan ({b.get('status')}{why}).")
        elif b.get("status") != "optimal" and b.get("gap") is not None:
            notes.append(
                f"{n.capitalize()}: {b.get('status')}, stopped at gap {_pct(b['gap'])}: its "
                "figures may lie above its best plan, and the joint plan's gain against it "
                "with them.")
    return notes


def write_report(result: PlanResult, scenario: Scenario, out_dir: str | Path) -> Path:
    """Write plan.json and report.html into `out_dir`; return the report's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = result.to_json_dict()
    (out / "plan.json").write_bytes(orjson.dumps(
        data, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    kpis = {}
    if result.kpis is not None and "co2e_kg" in result.kpis:
        kpis["joint"] = result.kpis
        for n in ("sequential", "uncoordinated"):
            b = result.baselines.get(n, {})
            if b.get("kpis"):
                kpis[n] = b["kpis"]
    notes = baseline_notes(result.baselines) if result.kpis is not None else []
    rows: list[tuple[str, str, list[str]]] = []
    if kpis:
        def row(label: str, unit: str, fn, fmt=_fmt) -> None:
            rows.append((label, unit, [fmt(fn(k)) for k in kpis.values()]))

        row("total cost", "CNY", lambda k: k["cost_cny"]["total"])
        for c, what in (("transport_fixed", "trips (fixed, per trip)"),
                        ("transport_km", "distance (per km)"),
                        ("single_use_packaging", "single-use packaging"),
                        ("disposal", "disposal"), ("cleaning", "cleaning"),
                        ("container_capital", "reusable containers"),
                        ("carbon", "CO2e at the carbon price")):
            row(f"  cost of {what}", "CNY", lambda k, c=c: k["cost_cny"][c])
        row("distance driven", "km", lambda k: k["km"])
        row("trips", "trips", lambda k: k["trips"], lambda x: f"{x:,d}")
        row("vehicle utilisation out / back", "% of capacity", lambda k: (
            f"{k['vehicle_utilisation']['outbound']:.0%} / "
            f"{k['vehicle_utilisation']['return']:.0%}"), str)
        row("single-use packaging", "kg", lambda k: k["single_use_grams"] / 1000)
        row("CO2e total", "kg CO2e", lambda k: k["co2e_kg"]["total"])
        for c in ("transport", "single_use_packaging", "container_production", "cleaning"):
            row(f"  CO2e of {c.replace('_', ' ')}", "kg CO2e", lambda k, c=c: k["co2e_kg"][c])
        row("recyclables collected", "kg", lambda k: k["recyclables_collected_grams"] / 1000)
    trips = []
    plan = result.plan or {"trips": [], "containers": []}
    for t in plan["trips"][:300]:
        loads = t["loads"]
        down = ", ".join(f"{c} {x:,.0f}" for c, x in loads["down_litres"].items())
        back = ", ".join(f"{c} {x:,.0f}" for c, x in loads["up_litres"].items())
        trips.append({**t, "down": down or "–", "back": back or "–",
                      "empties": _boxes(sum(loads["empties"].values())),
                      "recyclables_kg": f"{loads['recyclables_grams'] / 1000:,.1f}"})
    pools = []
    for c in plan.get("containers", []):
        days = c["days"]
        pools.append({
            "hub": c["hub_id"], "ct": c["container_type"], "start": _boxes(c["start_pool"]),
            "expand": _boxes(c["expansion"], up=True),
            "issued": _boxes(sum(d["issued"] for d in days)),
            "back": _boxes(sum(d["returned_to_pool"] for d in days)),
            "bought": _boxes(sum(d["bought"] for d in days), up=True),
            "low": _boxes(min(d["stock_end"] for d in days) if days else 0.0),
        })
    mv = result.marginal_values or {}
    marginals = [{"hub": r["hub_id"], "what": f"{r['container_type']} in the pool",
                  "value": _cny(r["delta_cost_cny_per_box"]),
                  "range": value_range(r.get("valid_for_boxes"), "boxes")}
                 for r in mv.get("pools", [])]
    marginals += [{"hub": r["hub_id"], "what": "box of cleaning capacity, every day",
                   "value": _cny(r["delta_cost_cny_per_unit_per_day"]),
                   "range": value_range(r.get("valid_for_units"), "boxes a day")}
                  for r in mv.get("cleaning", [])]
    marginals += [{"hub": r["hub_id"], "what": f"{r['vehicle_type']} vehicle",
                   "value": _cny(r["delta_cost_cny"]), "range": "one more"}
                  for r in mv.get("vehicles", [])]
    # said, not left out: a reader of a plan without the table took it for "nothing to buy"
    marginals += [{"hub": r.get("hub_id") or "all", "what": "not computed",
                   "value": r.get("why", ""), "range": ""} for r in mv.get("not_computed", [])]
    page = _TEMPLATE.render(
        name=scenario.name, status=result.status, objective=result.objective,
        bound=result.bound, gap=result.gap, horizon=scenario.horizon_days,
        route_gap=result.route_gap, bound_covers=result.stats.get("bound_covers"),
        horizon_end=scenario.horizon_end, factor_set=result.factor_set,
        diagnosis=result.diagnosis, columns=list(kpis), kpi_rows=rows,
        rounding=result.rounding.get("extra_cost_cny"),
        bars=baseline_bars_svg(kpis) if kpis else "",
        map_svg=route_map_svg(plan, scenario) if plan["trips"] else "",
        trips=trips, more_trips=max(0, len(plan["trips"]) - 300), pools=pools,
        fmt=_fmt, pct=_pct, marginals=marginals, baseline_notes=notes,
        sequential_method=str(result.baselines.get("sequential", {}).get("method") or "")
        .replace("_", " "),
    )
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
