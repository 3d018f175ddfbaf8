"""The trade-off frontier as one self-contained HTML page: for each front the curve of
plans (cost against single-use packaging, cost against CO2e), the current plan — the
cost-optimal one, what `plan solve` gives — marked on it, and between neighbouring plans
what the next step costs: CNY per kg of single-use packaging avoided, CNY per tonne CO2e
avoided. Works on the `plan frontier --json` document, so it can be redrawn from a file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

from services.reports.charts import COLORS, pyplot, svg

#: per front: the axis quantity, its unit, the factor from the stored unit, the marginal key
FRONT_AXES: dict[str, tuple[str, str, float, str, str]] = {
    "single_use": ("single-use packaging", "kg", 1e-3, "marginal_cny_per_kg_single_use",
                   "CNY per kg single-use avoided"),
    "co2e": ("CO2e", "kg", 1.0, "marginal_cny_per_t_co2e", "CNY per t CO2e avoided"),
}
MARGINAL_SPEC = {"single_use": ",.2f", "co2e": ",.0f"}
_FIELD = {"single_use": "single_use_grams", "co2e": "co2e_kg"}

_TEMPLATE = jinja2.Template(
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>packloop frontier: {{ name }}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
.small{color:#666;font-size:90%}svg{max-width:100%;height:auto}
</style></head><body>
<h1>What a target costs: {{ name }}</h1>
<p class="small">Each point is a complete plan that costs least for its bound on single-use
packaging or on CO2e (AUGMECON2: lexicographic payoff table, slack-augmented ε-constraint;
each point within its own MIP gap). The marked point is the current plan, the cheapest.
Between neighbours: what the step from the cheaper plan costs per unit avoided; marked ~
where that step's cost change is within the two points' gaps (the step between their optimal
plans may then be far from it).</p>
{% for f in fronts %}
<h2>Cost against {{ f.label }}</h2>
<div>{{ f.svg|safe }}</div>
<table><tr><th>plan</th><th>cost, CNY</th>
<th>single-use packaging, kg</th><th>CO2e, kg</th><th>gap</th><th>status</th>
<th>{{ f.marginal_label }}</th><th>files</th></tr>
{% for p in f.rows %}<tr><td>{{ p.role }}</td><td class="n">{{ p.cost }}</td>
<td class="n">{{ p.su }}</td><td class="n">{{ p.co2 }}</td>
<td class="n">{{ p.gap }}</td><td>{{ p.status }}</td><td class="n">{{ p.marginal }}</td>
<td>{% if p.link %}<a href="{{ p.link }}">report</a>{% endif %}</td></tr>{% endfor %}</table>
{% endfor %}
</body></html>
""",
    # the scenario's name is the client's text: escaped, as in the plan and demo reports
    autoescape=True,
)


def _num(x: Any, spec: str = ",.1f") -> str:
    return "–" if x is None else format(x, spec)


def front_chart(front: str, points: list[dict[str, Any]]) -> str:
    """The curve of one front, cost up the side, the bounded criterion along the bottom,
    the current plan marked, each segment labelled with its marginal cost."""
    label, unit, scale, mkey, mlabel = FRONT_AXES[front]
    pts = sorted(points, key=lambda p: p["cost_cny"])
    xs = [p[_FIELD[front]] * scale for p in pts]
    ys = [p["cost_cny"] for p in pts]
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    ax.plot(xs, ys, "-o", color=COLORS[2], label="least-cost plan for its bound")
    current = [k for k, p in enumerate(pts) if p.get("role") == "cost_optimal"]
    if current:
        k = current[0]
        ax.plot([xs[k]], [ys[k]], "*", markersize=16, color=COLORS[0],
                label="current plan (cost-optimal)")
    for k in range(1, len(pts)):
        m = pts[k].get(mkey)
        if m is not None:
            ax.annotate(format(m, MARGINAL_SPEC[front]),
                        ((xs[k] + xs[k - 1]) / 2, (ys[k] + ys[k - 1]) / 2),
                        textcoords="offset points", xytext=(6, 6), fontsize=8, color="#555")
    ax.set_xlabel(f"{label}, {unit}")
    ax.set_ylabel("cost, CNY")
    ax.set_title(f"Cost against {label} (labels: {mlabel})", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return svg(fig)


def frontier_html(doc: dict[str, Any], name: str) -> str:
    """The page for a `plan frontier --json` document; a point's `plan` that is a path
    (the plans written to files) becomes a link to the report beside it."""
    fronts = []
    for front, (label, unit, _scale, mkey, mlabel) in FRONT_AXES.items():
        pts = sorted((p for p in doc["points"] if p.get("front") == front),
                     key=lambda p: p["cost_cny"])
        if not pts:
            continue
        rows = []
        for p in pts:
            link = None
            if isinstance(p.get("plan"), str):
                link = str(Path(p["plan"]).with_name("report.html"))
            rows.append({
                "role": p.get("role", ""), "cost": _num(p["cost_cny"], ",.2f"),
                "su": _num(p["single_use_grams"] / 1000),
                "co2": _num(p["co2e_kg"]), "gap": _num(p.get("gap"), ".3%"),
                "status": p.get("status", ""),
                "marginal": ("~" if p.get(mkey) is not None and p.get("marginal_within_gaps")
                             else "") + _num(p.get(mkey), MARGINAL_SPEC[front]),
                "link": link,
            })
        fronts.append({"label": label, "unit": unit, "marginal_label": mlabel,
                       "svg": front_chart(front, pts), "rows": rows})
    return _TEMPLATE.render(name=name, fronts=fronts)


def write_frontier_html(doc: dict[str, Any], name: str, out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "frontier.html"
    path.write_text(frontier_html(doc, name), encoding="utf-8")
    return path
