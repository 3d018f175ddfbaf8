"""The demo's report: one self-contained HTML file, readable offline.

Figures come from the worker's state (what an officer sees) and from the plan's KPIs
(what a planner sees); charts are inline SVG from matplotlib, with no scripts, fonts
or map tiles fetched from anywhere.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from services.reports.charts import grouped_bars, hbars
from streams import Network

_TEMPLATE = jinja2.Template(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>packloop demo: {{ county }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1150px;color:#222;padding:0 1em}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3;text-align:left}
.cards{display:flex;flex-wrap:wrap;gap:1em}.card{border:1px solid #ddd;border-radius:6px;
padding:.6em 1em;min-width:11em}.card b{font-size:1.5em;display:block}
.small{color:#666;font-size:90%}svg{max-width:100%;height:auto}
</style></head><body>
<h1>packloop: {{ county }}</h1>
<p class="small">Simulated {{ sim.days }} days from {{ sim.start }} at scale {{ sim.scale }}
(seed {{ sim.seed }}; {{ "{:,}".format(sim.accepted) }} hub events). Factor set
<code>{{ sim.factor_set }}</code>. Generated {{ generated_at }}.</p>

<h2>For the environmental officer</h2>
<div class="cards">
<div class="card">waste generated<b>{{ kg(f.generated_grams) }} kg</b></div>
<div class="card">waste recovered<b>{{ kg(f.recovered_grams) }} kg</b></div>
<div class="card">recovery ratio<b>{{ "{:.1%}".format(f.recovery_ratio) }}</b></div>
<div class="card">pickups requested / closed<b>{{ f.pickups_requested }} / {{ f.pickups_served }}</b></div>
<div class="card">pickups overdue<b>{{ f.pickups_overdue }}</b></div>
<div class="card">containers in circulation<b>{{ "{:,}".format(f.containers.in_circulation) }}</b></div>
</div>
<p>Generated vs recovered packaging per township (all time, event time):</p>
<div>{{ waste_chart | safe }}</div>
<table><tr><th>township</th><th>villages active</th><th>generated kg</th><th>recovered kg</th>
<th>outstanding kg</th><th>recovery</th><th>open pickups</th></tr>
{% for r in townships %}<tr><td>{{ r.name }}</td><td class="n">{{ r.villages }}</td>
<td class="n">{{ kg(r.generated) }}</td><td class="n">{{ kg(r.recovered) }}</td>
<td class="n">{{ kg(r.outstanding) }}</td><td class="n">{{ "{:.1%}".format(r.ratio) }}</td>
<td class="n">{{ r.open_pickups }}</td></tr>{% endfor %}
</table>
<p>Waste by material (kg):</p>
<table><tr><th>material</th><th>generated</th><th>recovered</th><th>outstanding</th></tr>
{% for m in materials %}<tr><td>{{ m.material }}</td><td class="n">{{ kg(m.generated) }}</td>
<td class="n">{{ kg(m.recovered) }}</td><td class="n">{{ kg(m.outstanding) }}</td></tr>{% endfor %}
</table>

<h2>For the hub operators: pickups and the container pool</h2>
<div>{{ pickup_chart | safe }}</div>
<div>{{ container_chart | safe }}</div>
<table><tr><th>container type</th><th>issued</th><th>returned</th><th>in circulation</th>
<th>damaged</th><th>lost</th><th>overdue</th><th>return rate</th></tr>
{% for c in containers %}<tr><td>{{ c.type }}</td><td class="n">{{ c.issued }}</td>
<td class="n">{{ c.returned }}</td><td class="n">{{ c.in_circulation }}</td>
<td class="n">{{ c.damaged }}</td><td class="n">{{ c.lost }}</td><td class="n">{{ c.overdue }}</td>
<td class="n">{{ "{:.1%}".format(c.rate) }}</td></tr>{% endfor %}
</table>

<h2>For the planner: the week ahead</h2>
{% if plan %}
<p>Plan status <b>{{ plan.status }}</b>, objective {{ money(plan.objective) }} CNY, gap
{{ pct(plan.gap) }}; built from the live state: {{ inputs.demand_groups }} demand groups
({{ "{:,}".format(inputs.demand_parcels) }} parcels), outstanding waste of
{{ inputs.villages_with_waste }} villages, container pools of {{ inputs.hubs|length }} townships.</p>
<div>{{ map | safe }}</div>
<div>{{ bars | safe }}</div>
<table><tr><th></th>{% for n in plan_names %}<th>{{ n }}</th>{% endfor %}</tr>
{% for row in plan_rows %}<tr><td>{{ row[0] }}</td>{% for v in row[1:] %}<td class="n">{{ v }}</td>{% endfor %}</tr>{% endfor %}
</table>
<p class="small">joint = trips, temperature-class consolidation and packaging reuse planned together;
sequential = the cheaper of trips first (single-use assumed) then packaging, and packaging first
then trips; uncoordinated = separate trips per class, single-use only, dedicated recycling trips.</p>
{% if plan_notes %}<ul class="small">{% for n in plan_notes %}<li>{{ n }}</li>{% endfor %}</ul>{% endif %}
{% else %}<p>No plan was made.</p>{% endif %}

{% if d %}
<h2>Decisions for township {{ d.hub_id }}</h2>
<h3>What cutting single-use packaging costs</h3>
<p>The least-cost plan for each bound on single-use packaging ({{ d.points|length }} point{{ '' if d.points|length == 1 else 's' }},
each a complete plan of the township's week; the star is the cost-optimal plan). Between
neighbouring points: what each further kilogram avoided costs.{% if d.points|length == 1 %}
The front has one point: the least-cost plan already uses the least single-use packaging
this township's week allows, so cutting it further cannot be bought here.{% endif %}</p>
<div>{{ d.front_svg | safe }}</div>
<table><tr><th>point</th><th>cost CNY</th><th>single-use kg</th><th>CO2e kg</th><th>gap</th>
<th>CNY per kg single-use avoided</th></tr>
{% for p in d.points %}<tr><td>{{ p.role }}</td><td class="n">{{ money2(p.cost_cny) }}</td>
<td class="n">{{ kg(p.single_use_grams) }}</td><td class="n">{{ num1(p.co2e_kg) }}</td>
<td class="n">{{ pct(p.gap) }}</td><td class="n">{% if p.marginal_within_gaps and p.marginal_cny_per_kg_single_use is not none %}~{% endif %}{{ num2(p.marginal_cny_per_kg_single_use) }}</td></tr>{% endfor %}
</table>{% if d.points|selectattr("marginal_within_gaps")|list %}
<p class="small">~: the step's cost change is within the two points' gaps, so the step
between their optimal plans may be far from it.</p>{% endif %}
{% if d.whatif %}<h3>What if: {{ d.whatif_label }}</h3>
<table><tr><th></th><th>base</th><th>variant</th><th>change</th></tr>
{% for r in d.whatif_rows %}<tr><td>{{ r[0] }}</td><td class="n">{{ r[1] }}</td><td class="n">{{ r[2] }}</td><td class="n">{{ r[3] }}</td></tr>{% endfor %}
</table>
{% if d.whatif_range %}<p class="small">{{ d.whatif_range }}</p>{% endif %}
<p class="small">The base plan's marginal values say what one more unit is worth before
solving the variant: {% for m in d.marginals %}{{ m }}{% if not loop.last %}; {% endif %}{% endfor %}.</p>{% endif %}
{% if d.sheet %}<h3>Tomorrow's run sheet: township {{ d.sheet.hub_id }}, {{ d.sheet.date }}</h3>
<p>{{ d.sheet.trips|length }} trip(s) from the county plan's first day; the printable A4
sheet per van is <a href="{{ d.sheet_file }}">{{ d.sheet_file }}</a>
(<code>packloop dispatch show {{ d.sheet.hub_id }} --date {{ d.sheet.date }} --format html</code>
serves the same sheet from the gateway).</p>
<table><tr><th>trip</th><th>van</th><th>leaves</th><th>back</th><th>km</th><th>stops</th></tr>
{% for t in d.sheet.trips %}<tr><td>{{ t.trip_no }}</td><td>{{ t.van }}</td><td>{{ t.depart_at[11:16] }}</td>
<td>{{ t.return_at[11:16] }}</td><td class="n">{{ num1(t.km) }}</td>
<td>{{ t.stops|map(attribute="village_id")|join(" → ") }}</td></tr>{% endfor %}
</table>{% endif %}
{% endif %}
<p class="small">packloop demo report. Numbers above come from the stream worker's state and
the optimiser's KPIs; the facts behind them are in optimizer/data/factors.yaml.</p>
</body></html>
""",
    autoescape=True,
)


def township_rows(status: dict[str, Any], network: Network) -> list[dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {
        hub_id: {"hub": hub_id, "name": hub.name, "villages": 0, "generated": 0,
                 "recovered": 0, "outstanding": 0, "open_pickups": 0}
        for hub_id, hub in network.hubs.items()
    }
    for vid, village in status.get("villages", {}).items():
        if vid not in network.villages:
            continue
        row = rows[network.villages[vid].hub_id]
        row["villages"] += 1
        row["generated"] += sum(village.get("generated_grams", {}).values())
        row["recovered"] += sum(village.get("recovered_grams", {}).values())
        row["outstanding"] += sum(village.get("outstanding_grams", {}).values())
        row["open_pickups"] += 1 if village.get("open_pickup") else 0
    for row in rows.values():
        row["ratio"] = row["recovered"] / row["generated"] if row["generated"] else 0.0
    return sorted(rows.values(), key=lambda r: r["hub"])


def material_rows(status: dict[str, Any]) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for village in status.get("villages", {}).values():
        for key, field in (("generated_grams", "generated"), ("recovered_grams", "recovered"),
                           ("outstanding_grams", "outstanding")):
            for material, grams in village.get(key, {}).items():
                totals[material][field] += grams
    return [{"material": m, **{k: totals[m].get(k, 0) for k in
                               ("generated", "recovered", "outstanding")}}
            for m in sorted(totals, key=lambda m: -totals[m]["generated"])]


def container_rows(status: dict[str, Any]) -> list[dict[str, Any]]:
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for hub in status.get("hubs", {}).values():
        for ctype, figures in hub.get("containers", {}).items():
            for key, value in figures.items():
                totals[ctype][key] += value
    rows = []
    for ctype, t in sorted(totals.items()):
        rows.append({"type": ctype, **{k: t.get(k, 0) for k in
                     ("issued", "returned", "in_circulation", "damaged", "lost", "overdue")},
                     "rate": t.get("returned", 0) / t["issued"] if t.get("issued") else 0.0})
    return rows


def _plan_table(plan_json: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    kpis = {"joint": plan_json.get("kpis", {})}
    for name, baseline in plan_json.get("baselines", {}).items():
        if baseline.get("kpis"):
            kpis[name] = baseline["kpis"]
    names = list(kpis)

    def get(k: dict[str, Any], *path: str) -> Any:
        for p in path:
            k = k.get(p, {}) if isinstance(k, dict) else {}
        return k if isinstance(k, int | float) else None

    rows_spec = [
        ("cost, CNY", ("cost_cny", "total"), "{:,.0f}"),
        ("transport, CNY", ("cost_cny", "transport_km"), "{:,.0f}"),
        ("km", ("km",), "{:,.0f}"),
        ("trips", ("trips",), "{:,.0f}"),
        ("CO2e, kg", ("co2e_kg", "total"), "{:,.0f}"),
        ("single-use packaging, kg", ("single_use_grams",), None),
        ("recyclables collected, kg", ("recyclables_collected_grams",), None),
    ]
    rows = []
    for label, path, fmt in rows_spec:
        row = [label]
        for n in names:
            v = get(kpis[n], *path)
            if v is None:
                row.append("–")
            elif fmt is None:
                row.append(f"{v / 1000:,.1f}")
            else:
                row.append(fmt.format(v))
        rows.append(row)
    return names, rows


def chart_kpis(plan_json: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The KPIs of the joint plan and each baseline that has a plan: a plan cut short by its
    time limit may lack the joint plan or some baselines, and the chart shows what there
    is (a demo on a loaded machine crashed here on a baseline without KPIs)."""
    kpis = {"joint": plan_json.get("kpis")}
    kpis.update({n: (b or {}).get("kpis") for n, b in (plan_json.get("baselines") or {}).items()})
    return {n: k for n, k in kpis.items() if k and k.get("cost_cny")}


def decision_view(d: Any) -> dict[str, Any]:
    """What the report shows of services.demo_decisions.Decisions."""
    from services.reports.frontier import front_chart

    points = sorted((p for p in d.frontier.get("points", []) if p.get("front") == "single_use"),
                    key=lambda p: p["cost_cny"])
    view: dict[str, Any] = {"hub_id": d.hub_id, "points": points,
                            "front_svg": front_chart("single_use", points) if points else ""}
    w = d.whatif
    if w:
        view["whatif"] = True
        view["whatif_label"] = ", ".join(
            f"{c['key']} {c['from']:g} → {c['to']:g}" for c in w["changes"])
        names = (("cost_cny", "cost CNY", ",.2f"), ("km", "km", ",.1f"),
                 ("co2e_kg", "CO2e kg", ",.1f"), ("single_use_grams", "single-use g", ",.0f"),
                 ("trips", "trips", ",.0f"))
        rows = []
        for key, label, spec in names:
            a, b, delta = w["base"].get(key), w["variant"].get(key), (w["delta"] or {}).get(key)
            rows.append([label] + ["–" if x is None else format(x, spec) for x in (a, b)]
                        + ["–" if delta is None else format(delta, "+" + spec)])
        view["whatif_rows"] = rows
        span = w.get("optimal_cost_delta_range")
        if span is not None:
            from optimizer.whatif import cost_effect

            lo, hi = span
            view["whatif_range"] = (
                f"Between the optimal plans the cost changes by {lo:+,.2f} to {hi:+,.2f} CNY "
                "(the two solves' gaps)" + (": the range holds 0, so this what-if shows no "
                                             "effect at these time limits."
                                             if cost_effect(span) == "none" else "."))
        mv = w["base"].get("marginal_values") or {}
        view["marginals"] = _marginal_lines(mv) or ["none reported"]
    if d.run_sheet:
        view["sheet"] = d.run_sheet
        view["sheet_file"] = d.run_sheet_path.name if d.run_sheet_path else ""
    return view


def _marginal_lines(mv: dict[str, Any]) -> list[str]:
    from optimizer.report import value_range  # the plan report's words for a range

    out = []
    for key, entries in mv.items():
        if isinstance(entries, list):
            for e in entries[:4]:
                value = next((e[k] for k in ("delta_cost_cny_per_box",
                                              "delta_cost_cny_per_unit_per_day",
                                              "delta_cost_cny") if e.get(k) is not None), None)
                what = " ".join(str(e[k]) for k in ("hub_id", "container_type", "vehicle_type")
                                if k in e)
                if value is not None:
                    rng = ("valid_for_boxes", "boxes") if e.get("valid_for_boxes") else (
                        ("valid_for_units", "boxes a day") if e.get("valid_for_units")
                        else None)
                    held = "" if rng is None else (
                        f", holding for {value_range(e[rng[0]], rng[1])}")
                    out.append(f"one more in {key} ({what}): {value:+,.2f} CNY on the plan"
                               f"{held}")
    return out


def write_demo_report(
    path: Path,
    *,
    network: Network,
    status: dict[str, Any],
    figures: dict[str, Any],
    simulation: dict[str, Any],
    plan: dict[str, Any],
    plan_inputs: dict[str, Any],
    decisions: Any = None,
) -> Path:
    from optimizer import baseline_bars_svg, route_map_svg
    from optimizer.report import baseline_notes
    from optimizer.result import plan_caveats

    townships = township_rows(status, network)
    labels = [r["hub"] for r in townships]
    waste_chart = grouped_bars(
        "packaging waste per township", labels,
        {"generated": [r["generated"] / 1000 for r in townships],
         "recovered": [r["recovered"] / 1000 for r in townships]}, "kg")
    pickup_chart = hbars(
        "recycling pickups in the county",
        {"requested": figures["pickups_requested"], "closed by a collection":
         figures["pickups_served"], "open now": figures["pickups_open"],
         "went overdue": figures["pickups_overdue"]},
        "pickups")
    hub_containers: dict[str, dict[str, int]] = {}
    for hub_id, hub in status.get("hubs", {}).items():
        agg: dict[str, int] = defaultdict(int)
        for figs in hub.get("containers", {}).values():
            for k, v in figs.items():
                agg[k] += v
        hub_containers[hub_id] = agg
    hubs_sorted = sorted(hub_containers)
    container_chart = grouped_bars(
        "reusable container pool per township", hubs_sorted,
        {k: [hub_containers[h].get(k, 0) for h in hubs_sorted]
         for k in ("issued", "returned", "in_circulation", "lost")}, "containers")
    plan_json = plan.get("json", {}) if plan else {}
    plan_names, plan_rows = _plan_table(plan_json) if plan_json else ([], [])
    map_svg = bars_svg = ""
    if plan_json:
        map_svg = route_map_svg(plan_json, plan["scenario"])
        kpis = chart_kpis(plan_json)
        bars_svg = baseline_bars_svg(kpis) if kpis else ""
    inputs = dict(plan_inputs)
    inputs["villages_with_waste"] = len(plan_inputs.get("outstanding_grams", {}))
    inputs.setdefault("hubs", [])
    page = _TEMPLATE.render(
        county=network.county,
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        sim=simulation,
        f=figures,
        kg=lambda g: f"{g / 1000:,.1f}",
        money=lambda x: "–" if x is None else f"{x:,.0f}",
        pct=lambda x: "–" if x is None else f"{x:.2%}",
        townships=townships,
        materials=material_rows(status),
        containers=container_rows(status),
        waste_chart=waste_chart,
        pickup_chart=pickup_chart,
        container_chart=container_chart,
        plan=plan_json,
        plan_names=plan_names,
        plan_rows=plan_rows,
        plan_notes=(baseline_notes(plan_json.get("baselines") or {}) + plan_caveats(plan_json)
                    if plan_json else []),
        inputs=inputs,
        map=map_svg,
        bars=bars_svg,
        d=decision_view(decisions) if decisions is not None else None,
        money2=lambda x: "–" if x is None else f"{x:,.2f}",
        num1=lambda x: "–" if x is None else f"{x:,.1f}",
        num2=lambda x: "–" if x is None else f"{x:,.2f}",
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


