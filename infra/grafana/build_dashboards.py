#!/usr/bin/env python3
"""Generate packloop's Grafana dashboards into infra/grafana/dashboards/*.json.

Three dashboards, provisioned by infra/grafana/provisioning/dashboards/packloop.yml:
  packloop-county      county overview: generated vs recovered, recovery ratio, pickups,
                       containers, the last plan's KPIs
  packloop-drilldown   township / village drill-down ($hub, $village, $window), with a
                       Geomap of villages coloured by outstanding waste and one of hubs
  packloop-pipeline    pipeline health: workers, events, dead letters, latency, lag,
                       gateway, planner, firing alerts

Every query aggregates with ``sum by (hub, ...)`` so the dashboards work with
PACKLOOP_METRICS_VILLAGE_LABEL=false too (the village panels are then empty). Village
coordinates come from the ``packloop_village_info{village, hub, lat, lon}`` series the
worker exports from the reference data, joined with ``* on (hub, village)
group_left (lat, lon)``; nothing is fetched at view time apart from the base map tiles.

Only the month's mass balance (``*_month_recovery_ratio``, the officer report's
``recovery_ratio``, the README's 回收率) is titled "Recovery ratio" and coloured by the
county's recovery target (streams/data/targets.yaml; a county's own file with ``--targets
FILE``, as infra/prometheus/build_rules.py takes it for the alerts). The 7-day, all-time
and window figures are recovered / generated over that span: no on-hand term and not
capped (pickups of waste generated before the span push them above 100 %), so they are
titled "Recovered / generated", drawn in a neutral colour with no target, and their bar
gauge is not capped at 100 %.

The workers' counters (waste, pickups, containers, events) are never rate()d or
increase()d here: each worker exports the sum over the Kafka partitions it owns, so a
partition moving between workers drops one worker's series (rate() reads a counter reset)
and raises another's, and a rebalance would read as waste, pickups or containers that
never happened. Their panels take ``delta()`` of the sums over workers that
infra/prometheus/rules/packloop-recording.yml records (``hub_container_type:…:sum``
and the like), per second over ``$__rate_interval`` with ``$__rate_interval_ms``
(Grafana 10.1+), or over a fixed span (7 or 30 days).

The maps are centred on the county seat and the dashboards use the time zone of the
network file (``--network FILE``, the county's file the deployment mounts as
PACKLOOP_NETWORK; default: the bundled sample county). Standard library only
(``--targets`` reads the file with packloop's loader, a YAML network file is read with
PyYAML). Run it after editing, commit its output; ``--check`` exits 1 when the committed
JSON differs (tests/infra checks this and every query).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
OUT_DIR = HERE / "dashboards"
NETWORK = REPO / "streams" / "data" / "sample_county.json"

DATASOURCE_UID = "packloop-prometheus"
DS = {"type": "prometheus", "uid": DATASOURCE_UID}
SCHEMA_VERSION = 39
TAGS = ["packloop"]

# Grafana selectors shared by the drill-down queries.
SEL_HUB = 'hub=~"$hub"'
SEL_VILLAGE = 'hub=~"$hub", village=~"$village"'

Panel = dict[str, Any]


# ---------------------------------------------------------------- building blocks


def target(expr: str, legend: str = "", *, instant: bool = False, table: bool = False,
           ref: str = "A") -> dict[str, Any]:
    t: dict[str, Any] = {
        "datasource": DS,
        "editorMode": "code",
        "expr": expr,
        "legendFormat": legend or "__auto",
        "refId": ref,
        "range": not instant,
        "instant": instant,
    }
    if table:
        t["format"] = "table"
    return t


def _thresholds(steps: list[tuple[str, float | None]]) -> dict[str, Any]:
    return {
        "mode": "absolute",
        "steps": [{"color": c, "value": v} for c, v in steps],
    }


def _defaults(unit: str = "", decimals: int | None = None, mn: float | None = None,
              mx: float | None = None, steps: list[tuple[str, float | None]] | None = None,
              color: str = "thresholds") -> dict[str, Any]:
    d: dict[str, Any] = {
        "color": {"mode": color},
        "thresholds": _thresholds(steps or [("green", None)]),
    }
    if unit:
        d["unit"] = unit
    if decimals is not None:
        d["decimals"] = decimals
    if mn is not None:
        d["min"] = mn
    if mx is not None:
        d["max"] = mx
    return d


def _yaml_number(path: Path, entry: str, field: str) -> float:
    """`field` of the top-level-indented mapping `entry` in one of packloop's data files
    (standard library only: a two-line pattern, checked by tests/infra)."""
    import re

    text = path.read_text(encoding="utf-8")
    m = re.search(rf"^  {re.escape(entry)}:\n(?:    .*\n)*?    {re.escape(field)}: ([0-9.]+)",
                  text, re.M)
    if m is None:
        raise SystemExit(f"{path}: no {entry}.{field}")
    return float(m.group(1))


TARGETS = REPO / "streams" / "data" / "targets.yaml"


def recovery_target(targets: Path | None = None) -> float:
    """The county's recovery target, as the recovery alerts have it: streams/data/targets.yaml,
    or a county's own file (``--targets``, as ``report officer --targets`` and
    infra/prometheus/build_rules.py read it: packloop's loader, so PyYAML, unlike the rest
    of this script)."""
    if targets is None:
        return _yaml_number(TARGETS, "recovery_ratio", "at_least")
    sys.path.insert(0, str(REPO))
    from streams.officer_kpis import load_targets

    return float(load_targets(targets)["targets"]["recovery_ratio"]["at_least"])


def ratio_steps(target: float) -> list[tuple[str, float | None]]:
    """Green from the recovery target, orange within 20 points below it, red further down.
    Only for the month's mass balance: the target is set on that figure."""
    return [("red", None), ("orange", round(max(0.0, target - 0.2), 4)), ("green", target)]


#: recovered / generated over a span: one neutral colour, no target (it is not the
#: recovery ratio the target is set on, and it can exceed 100 %)
NEUTRAL: list[tuple[str, float | None]] = [("blue", None)]

#: loss and damage per container issued that the planner's figures assume (the facts
#: file: 1 - containers.return_rate lost, simulation.damaged_share damaged): orange above
#: it (the plan's reuse costs are understated), red at twice it
_FACTS = REPO / "optimizer" / "data" / "factors.yaml"
EXPECTED_LOSS = round(1 - _yaml_number(_FACTS, "return_rate", "value")
                      + _yaml_number(_FACTS, "damaged_share", "value"), 6)
LOSS_STEPS: list[tuple[str, float | None]] = [
    ("green", None), ("orange", EXPECTED_LOSS), ("red", round(2 * EXPECTED_LOSS, 6))]


def stat(title: str, expr: str, unit: str = "", description: str = "", *,
         steps: list[tuple[str, float | None]] | None = None, decimals: int | None = None,
         w: int = 4, h: int = 4) -> Panel:
    return {
        "type": "stat",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [target(expr, instant=True)],
        "fieldConfig": {"defaults": _defaults(unit, decimals, steps=steps), "overrides": []},
        "options": {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "value",
            "graphMode": "none",
            "textMode": "auto",
            "justifyMode": "auto",
            "orientation": "auto",
        },
        "_size": (w, h),
    }


def timeseries(title: str, targets: list[dict[str, Any]], unit: str = "",
               description: str = "", *, stack: bool = False, w: int = 12, h: int = 8,
               mn: float | None = None) -> Panel:
    custom: dict[str, Any] = {
        "drawStyle": "line",
        "lineWidth": 1,
        "fillOpacity": 20 if stack else 0,
        "showPoints": "never",
        "spanNulls": True,
        "stacking": {"mode": "normal" if stack else "none", "group": "A"},
    }
    defaults = _defaults(unit, mn=mn, color="palette-classic")
    defaults["custom"] = custom
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        "_size": (w, h),
    }


def bargauge(title: str, expr: str, legend: str, unit: str = "", description: str = "", *,
             steps: list[tuple[str, float | None]] | None = None, mn: float | None = 0,
             mx: float | None = None, w: int = 12, h: int = 8) -> Panel:
    return {
        "type": "bargauge",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [target(expr, legend, instant=True)],
        "fieldConfig": {
            "defaults": _defaults(unit, mn=mn, mx=mx, steps=steps),
            "overrides": [],
        },
        "options": {
            "displayMode": "gradient",
            "orientation": "horizontal",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "showUnfilled": True,
            "valueMode": "color",
            "namePlacement": "left",
            "sizing": "auto",
        },
        "_size": (w, h),
    }


def table(title: str, columns: list[tuple[str, str, str]], join: list[str],
          description: str = "", *, w: int = 24, h: int = 10) -> Panel:
    """Instant queries, one per column (header, expr, unit), joined on label columns."""
    targets = []
    overrides = []
    rename: dict[str, str] = {}
    for i, (header, expr, unit) in enumerate(columns):
        ref = chr(ord("A") + i)
        targets.append(target(expr, instant=True, table=True, ref=ref))
        rename[f"Value #{ref}"] = header
        if unit:
            overrides.append({
                "matcher": {"id": "byName", "options": header},
                "properties": [{"id": "unit", "value": unit}],
            })
    return {
        "type": "table",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": targets,
        "transformations": [
            # Instant table queries share their label columns: merge makes one row per
            # label set with one value column per query.
            {"id": "merge", "options": {}},
            {
                "id": "organize",
                "options": {
                    "excludeByName": {"Time": True},
                    "indexByName": {name: i for i, name in enumerate(join)},
                    "renameByName": rename,
                },
            },
        ],
        "fieldConfig": {"defaults": _defaults(), "overrides": overrides},
        "options": {"showHeader": True, "cellHeight": "sm", "footer": {"show": False}},
        "_size": (w, h),
    }


def geomap(title: str, expr: str, center: tuple[float, float], zoom: float,
           description: str, *, label: str, unit: str,
           steps: list[tuple[str, float | None]], text_field: str = "", w: int = 12,
           h: int = 14) -> Panel:
    """Markers at (lat, lon) label columns, coloured and sized by the value."""
    return {
        "type": "geomap",
        "title": title,
        "description": description,
        "datasource": DS,
        "targets": [target(expr, instant=True, table=True)],
        "transformations": [
            {
                "id": "convertFieldType",
                "options": {
                    "conversions": [
                        {"targetField": "lat", "destinationType": "number"},
                        {"targetField": "lon", "destinationType": "number"},
                    ],
                    "fields": {},
                },
            },
            {"id": "organize", "options": {"excludeByName": {"Time": True}}},
        ],
        "fieldConfig": {"defaults": _defaults(unit, mn=0, steps=steps), "overrides": []},
        "options": {
            "view": {"id": "coords", "lat": center[0], "lon": center[1], "zoom": zoom,
                     "allLayers": True},
            "controls": {"showZoom": True, "mouseWheelZoom": True, "showAttribution": True,
                         "showScale": True},
            "basemap": {"type": "default", "name": "Base map", "config": {}},
            "layers": [
                {
                    "type": "markers",
                    "name": label,
                    "tooltip": True,
                    "location": {"mode": "coords", "latitude": "lat", "longitude": "lon"},
                    "config": {
                        "showLegend": True,
                        "style": {
                            "color": {"field": "Value", "fixed": "green"},
                            "size": {"field": "Value", "fixed": 5, "min": 4, "max": 14},
                            "opacity": 0.8,
                            "symbol": {"fixed": "img/icons/marker/circle.svg",
                                       "mode": "fixed"},
                            **({"text": {"field": text_field, "mode": "field"},
                                "textConfig": {"fontSize": 10, "offsetY": -12,
                                               "textAlign": "center",
                                               "textBaseline": "bottom"}}
                               if text_field else {}),
                        },
                    },
                }
            ],
            "tooltip": {"mode": "details"},
        },
        "_size": (w, h),
    }


def row(title: str) -> Panel:
    return {"type": "row", "title": title, "collapsed": False, "panels": [], "_size": (24, 1)}


def layout(panels: list[Panel]) -> list[Panel]:
    """Flow panels left to right, top to bottom on Grafana's 24-column grid."""
    x = y = row_h = 0
    out = []
    for pid, p in enumerate(panels, start=1):
        w, h = p.pop("_size")
        if p["type"] == "row" or x + w > 24:
            y += row_h
            x = row_h = 0
        p["id"] = pid
        p["gridPos"] = {"h": h, "w": w, "x": x, "y": y}
        if not p.get("description"):
            p.pop("description", None)
        out.append(p)
        x += w
        row_h = max(row_h, h)
        if p["type"] == "row":
            y += h
            x = row_h = 0
    return out


def dashboard(uid: str, title: str, description: str, panels: list[Panel],
              variables: list[dict[str, Any]] | None = None,
              time_from: str = "now-7d", timezone: str = "Asia/Shanghai") -> dict[str, Any]:
    return {
        "uid": uid,
        "title": title,
        "description": description,
        "tags": TAGS,
        "timezone": timezone,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "1m",
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "time": {"from": time_from, "to": "now"},
        "timepicker": {},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "weekStart": "",
        "annotations": {"list": []},
        "links": [
            {"type": "dashboards", "tags": TAGS, "asDropdown": True, "title": "packloop",
             "includeVars": False, "keepTime": True}
        ],
        "templating": {"list": variables or []},
        "panels": layout(panels),
    }


def query_var(name: str, label: str, query: str, *, include_all: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "query": {"qryType": 1, "query": query, "refId": f"PrometheusVariableQueryEditor-{name}"},
        "definition": query,
        "refresh": 2,
        "sort": 1,
        "multi": True,
        "includeAll": include_all,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "options": [],
        "regex": "",
        "hide": 0,
    }


def custom_var(name: str, label: str, values: list[str], default: str) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "custom",
        "query": ",".join(values),
        "multi": False,
        "includeAll": False,
        "current": {"selected": True, "text": default, "value": default},
        "options": [
            {"selected": v == default, "text": v, "value": v} for v in values
        ],
        "hide": 0,
    }


# ---------------------------------------------------------------- the dashboards

KG = "masskg"
#: the recorded sums over workers the container and event panels take delta() of
CONTAINERS = "hub_container_type:packloop_containers_{}_total:sum"
EVENTS = "outcome_reason:packloop_events_total:sum"
UNCAPPED = ("no waste on hand at the start counted, and not capped: pickups of waste "
            "generated before the span count in full, so it can exceed 100 %. The target "
            "applies to the month's mass balance (Recovery ratio, this month).")
#: the counter panels: delta() of the recorded sums over workers, not rate()
OVER_WORKERS = ("From the sum over workers: a partition moving between workers changes no "
                "figure (while one is being restored on its new worker, a point or two can "
                "read low or high).")
WALL_CLOCK = ("Rates and counts are wall-clock (Prometheus); the 7-day and window figures "
              f"elsewhere are event-time gauges computed by the workers. {OVER_WORKERS}")


def per_second(recorded: str, by: str = "") -> str:
    """Per second over Grafana's rate window of a recorded sum over workers (a
    ``…:sum`` rule of infra/prometheus/rules/packloop-recording.yml): ``delta()`` of that
    sum over ``$__rate_interval``, divided by the window's seconds. Never ``rate()`` of a
    worker counter: a partition moving between workers reads as a counter reset there."""
    agg = f"sum by ({by}) " if by else "sum"
    return f"{agg}(delta({recorded}[$__rate_interval])) / ($__rate_interval_ms / 1000)"


def over(recorded: str, span: str) -> str:
    """How much a recorded sum over workers grew over ``span`` (wall-clock)."""
    return f"delta({recorded}[{span}])"


def county_overview(goal: float, source: str, timezone: str = "Asia/Shanghai") -> dict[str, Any]:
    steps = ratio_steps(goal)
    panels: list[Panel] = [
        row("Packaging waste"),
        stat("Recovery ratio, this month", "county:packloop_waste_month_recovery_ratio:ratio",
             "percentunit", "The officer report's recovery_ratio: recovered this month, "
             "counted up to what was on hand at its start plus generated since, over the "
             f"sum of those. Target {goal:.0%} ({source}).",
             steps=steps, decimals=1),
        stat("Recovered / generated, 7 days", "county:packloop_waste_recovery_ratio_7d:ratio",
             "percentunit", "Recovered / generated over the last 7 event-time days, county. "
             f"Not the recovery ratio: {UNCAPPED}", steps=NEUTRAL, decimals=1),
        stat("Recovered / generated, all time", "county:packloop_waste_recovery_ratio:ratio",
             "percentunit", "Recovered / generated since packloop started counting. Not the "
             f"recovery ratio: {UNCAPPED}", steps=NEUTRAL, decimals=1),
        stat("Generated, 7 days", "sum(hub:packloop_waste_generated_grams_7d:sum) / 1000", KG),
        stat("Recovered, 7 days", "sum(hub:packloop_waste_recovered_grams_7d:sum) / 1000", KG),
        stat("Outstanding in villages", "sum(packloop_waste_outstanding_grams) / 1000", KG,
             "Packaging waste still in villages now (all materials)."),
        stat("Villages over a threshold",
             "count(village:packloop_waste_outstanding_threshold:ratio >= 1) or vector(0)", "",
             "Villages at or above a pickup threshold now (township mode: townships).",
             steps=[("green", None), ("orange", 1), ("red", 10)]),
        timeseries(
            "Generated vs recovered (kg per day)",
            [
                target(per_second("hub_material:packloop_waste_generated_grams_total:sum")
                       + " * 86400 / 1000", "generated"),
                target(per_second("hub_material:packloop_waste_recovered_grams_total:sum")
                       + " * 86400 / 1000", "recovered", ref="B"),
            ],
            KG, WALL_CLOCK, mn=0,
        ),
        bargauge("Recovery ratio by township, this month",
                 "hub:packloop_waste_month_recovery_ratio:ratio", "{{hub}}", "percentunit",
                 f"Mass balance, as the officer report. Target {goal:.0%} "
                 "(alert HubRecoveryRatioBelowTarget).", steps=steps, mx=1),
        bargauge("Recovered / generated by township, 7 days",
                 "hub:packloop_waste_recovery_ratio_7d:ratio", "{{hub}}", "percentunit",
                 "Recovered / generated over the last 7 event-time days. Not the recovery "
                 f"ratio: {UNCAPPED}", steps=NEUTRAL),
        bargauge("Generated by material, 7 days",
                 'sum by (material) (packloop_waste_window_generated_grams{window="7d"}) / 1000',
                 "{{material}}", KG),
        bargauge("Recovered by material, 7 days",
                 'sum by (material) (packloop_waste_window_recovered_grams{window="7d"}) / 1000',
                 "{{material}}", KG),
        row("Recycling pickups"),
        stat("Open pickups", "sum(packloop_pickups_open) or vector(0)"),
        stat("Overdue now", "sum(packloop_pickups_open_overdue) or vector(0)", "",
             "Open pickups past the pickup SLA (pickup_sla_hours in the network file, "
             "72 h by default).", steps=[("green", None), ("red", 1)]),
        stat("Requested, 7 days",
             f"sum({over('hub_reason:packloop_pickups_requested_total:sum', '7d')})", "",
             WALL_CLOCK, decimals=0),
        stat("Completed, 7 days",
             f"sum({over('hub:packloop_pickups_completed_total:sum', '7d')})", "",
             WALL_CLOCK, decimals=0),
        stat("Went overdue, 7 days",
             f"sum({over('hub:packloop_pickups_overdue_notices_total:sum', '7d')})", "",
             WALL_CLOCK, decimals=0, steps=[("green", None), ("orange", 1)]),
        stat("Open pickups, townships", "count(sum by (hub) (packloop_pickups_open) > 0) "
             "or vector(0)", "", "Townships with at least one open pickup."),
        timeseries(
            "Pickups per day",
            [
                target(per_second("hub_reason:packloop_pickups_requested_total:sum", "reason")
                       + " * 86400", "requested: {{reason}}"),
                target(per_second("hub:packloop_pickups_completed_total:sum") + " * 86400",
                       "completed", ref="B"),
                target(per_second("hub:packloop_pickups_overdue_notices_total:sum")
                       + " * 86400", "went overdue", ref="C"),
            ],
            "", WALL_CLOCK, mn=0,
        ),
        bargauge("Open pickups by township", "sum by (hub) (packloop_pickups_open) > 0",
                 "{{hub}}", "", steps=[("green", None), ("orange", 3), ("red", 10)]),
        row("Reusable containers"),
        timeseries(
            "In circulation and overdue",
            [
                target("sum by (container_type) (packloop_containers_in_circulation)",
                       "in circulation: {{container_type}}"),
                target("sum by (container_type) (packloop_containers_overdue)",
                       "overdue: {{container_type}}", ref="B"),
            ],
            "", "Containers out in villages now, and those out longer than the overdue limit.",
            mn=0,
        ),
        timeseries(
            "Issued, returned, damaged, lost (per day)",
            [
                target(per_second(CONTAINERS.format(k))
                       + " * 86400", k, ref=chr(ord("A") + i))
                for i, k in enumerate(("issued", "returned", "damaged", "lost"))
            ],
            "", WALL_CLOCK, mn=0,
        ),
        bargauge("Overdue containers by township",
                 "sum by (hub) (packloop_containers_overdue) > 0", "{{hub}}", "",
                 steps=[("green", None), ("orange", 10), ("red", 50)]),
        bargauge("Loss and damage share, 30 days",
                 f"sum by (hub) ({over(CONTAINERS.format('lost'), '30d')} "
                 f"+ {over(CONTAINERS.format('damaged'), '30d')}) "
                 f"/ (sum by (hub) ({over(CONTAINERS.format('issued'), '30d')}) > 0)",
                 "{{hub}}", "percentunit",
                 "Containers lost or damaged per container issued, wall-clock 30 days. "
                 f"{OVER_WORKERS} "
                 f"Orange above the {EXPECTED_LOSS:.1%} the planner assumes "
                 "(optimizer/data/factors.yaml), red at twice that.",
                 steps=LOSS_STEPS),
        row("Consolidation plan (last successful plan)"),
        bargauge("Cost (CNY)", "max by (plan) (packloop_plan_cost_cny)", "{{plan}}",
                 "currencyCNY", "Joint plan against the sequential and uncoordinated baselines.",
                 w=8, h=6),
        bargauge("CO2e (kg)", "max by (plan) (packloop_plan_co2e_kg)", "{{plan}}", KG,
                 w=8, h=6),
        bargauge("Single-use packaging", "max by (plan) (packloop_plan_single_use_grams) / 1000",
                 "{{plan}}", KG, w=8, h=6),
        stat("Last successful plan", "time() - max(packloop_plan_last_success_timestamp_seconds)",
             "s", "Age of the plan whose KPIs are shown.",
             steps=[("green", None), ("orange", 86400), ("red", 129600)], w=6),
    ]
    return dashboard("packloop-county", "packloop: county overview",
                     "Packaging waste, recovery, pickups and reusable containers across the "
                     "county.", panels, timezone=timezone)


def drilldown(center: tuple[float, float], goal: float, source: str = "streams/data/targets.yaml",
              timezone: str = "Asia/Shanghai") -> dict[str, Any]:
    steps = ratio_steps(goal)
    w = 'window="$window"'
    month = "village_material:packloop_waste_month_{}_grams:sum{{" + SEL_HUB + "}}"
    panels: list[Panel] = [
        row("Townships $hub"),
        # the officer report's recovery_ratio of the chosen townships: the month's mass
        # balance summed over their villages and materials, then divided (as the
        # hub:/county: recording rules do for one township / the county)
        stat("Recovery ratio, this month",
             f"sum({month.format('recovered_counted')}) "
             f"/ (sum({month.format('available')}) > 0)",
             "percentunit", "The officer report's recovery_ratio of the chosen townships: "
             "recovered this month, counted up to what was on hand at its start plus "
             f"generated since, over the sum of those. Target {goal:.0%} ({source}).",
             steps=steps, decimals=1),
        stat("Recovered / generated ($window)",
             f"sum(packloop_waste_window_recovered_grams{{{SEL_HUB}, {w}}}) "
             f"/ (sum(packloop_waste_window_generated_grams{{{SEL_HUB}, {w}}}) > 0)",
             "percentunit", "Event-time window: calendar day / rolling 7 days / calendar "
             f"month. Not the recovery ratio: {UNCAPPED}", steps=NEUTRAL, decimals=1, w=5),
        stat("Generated ($window)",
             f"sum(packloop_waste_window_generated_grams{{{SEL_HUB}, {w}}}) / 1000", KG, w=3),
        stat("Recovered ($window)",
             f"sum(packloop_waste_window_recovered_grams{{{SEL_HUB}, {w}}}) / 1000", KG, w=3),
        stat("Outstanding now", f"sum(packloop_waste_outstanding_grams{{{SEL_VILLAGE}}}) / 1000",
             KG, w=3),
        stat("Open pickups", f"sum(packloop_pickups_open{{{SEL_VILLAGE}}}) or vector(0)", w=3),
        stat("Overdue pickups", f"sum(packloop_pickups_open_overdue{{{SEL_VILLAGE}}}) "
             "or vector(0)", steps=[("green", None), ("red", 1)], w=3),
        geomap(
            "Villages by outstanding waste",
            f"sum by (hub, village) (packloop_waste_outstanding_grams{{{SEL_VILLAGE}}}) / 1000"
            " * on (hub, village) group_left (lat, lon)"
            f" max by (hub, village, lat, lon) (packloop_village_info{{{SEL_VILLAGE}}})",
            center, 10.0,
            "Outstanding packaging waste per village (kg); coordinates from the reference "
            "data (packloop_village_info). Empty when the village label is off.",
            label="Village", unit=KG,
            steps=[("green", None), ("yellow", 25), ("orange", 40), ("red", 50)],
        ),
        geomap(
            "Townships by outstanding waste",
            f"sum by (hub) (packloop_waste_outstanding_grams{{{SEL_HUB}}}) / 1000"
            " * on (hub) group_left (name, lat, lon)"
            f" max by (hub, name, lat, lon) (packloop_hub_info{{{SEL_HUB}}})",
            center, 9.0,
            "Outstanding packaging waste per township hub (kg); works in both label modes.",
            label="Hub", unit=KG, text_field="name",
            steps=[("green", None), ("yellow", 500), ("orange", 1000), ("red", 2000)],
        ),
        table(
            "Villages",
            [
                ("Outstanding (kg)",
                 f"sum by (hub, village) (packloop_waste_outstanding_grams{{{SEL_VILLAGE}}})"
                 " / 1000", KG),
                ("Of threshold",
                 f"village:packloop_waste_outstanding_threshold:ratio{{{SEL_VILLAGE}}}",
                 "percentunit"),
                ("Generated 7d (kg)",
                 f"village:packloop_waste_generated_grams_7d:sum{{{SEL_VILLAGE}}} / 1000", KG),
                ("Recovered 7d (kg)",
                 f"village:packloop_waste_recovered_grams_7d:sum{{{SEL_VILLAGE}}} / 1000", KG),
                ("Open pickups", f"sum by (hub, village) (packloop_pickups_open{{{SEL_VILLAGE}}})",
                 ""),
                ("Overdue", f"sum by (hub, village) "
                 f"(packloop_pickups_open_overdue{{{SEL_VILLAGE}}})", ""),
            ],
            ["village", "hub"],
            "One row per village (per township when the village label is off).",
        ),
        timeseries(
            "Outstanding by material",
            [target(f"sum by (material) (packloop_waste_outstanding_grams{{{SEL_VILLAGE}}})"
                    " / 1000", "{{material}}")],
            KG, stack=True, mn=0,
        ),
        timeseries(
            "Outstanding against threshold",
            [target(f"village:packloop_waste_outstanding_threshold:ratio{{{SEL_VILLAGE}}}",
                    "{{village}} {{hub}}")],
            "percentunit",
            "Largest of outstanding / threshold over the total and per-material limits; "
            "100 % triggers a pickup.", mn=0,
        ),
        bargauge("Generated by material ($window)",
                 f"sum by (material) (packloop_waste_window_generated_grams"
                 f"{{{SEL_VILLAGE}, {w}}}) / 1000", "{{material}}", KG),
        bargauge("Recovered by material ($window)",
                 f"sum by (material) (packloop_waste_window_recovered_grams"
                 f"{{{SEL_VILLAGE}, {w}}}) / 1000", "{{material}}", KG),
        row("Pickups and containers"),
        timeseries(
            "Pickups per day",
            [
                target(per_second("village_reason:packloop_pickups_requested_total:sum"
                                  f"{{{SEL_VILLAGE}}}", "reason") + " * 86400",
                       "requested: {{reason}}"),
                target(per_second(f"village:packloop_pickups_completed_total:sum{{{SEL_VILLAGE}}}")
                       + " * 86400", "completed", ref="B"),
            ],
            "", WALL_CLOCK, mn=0,
        ),
        timeseries(
            "Containers by type",
            [
                target(f"sum by (container_type) (packloop_containers_in_circulation{{{SEL_HUB}}})",
                       "in circulation: {{container_type}}"),
                target(f"sum by (container_type) (packloop_containers_overdue{{{SEL_HUB}}})",
                       "overdue: {{container_type}}", ref="B"),
            ],
            "", mn=0,
        ),
    ]
    variables = [
        query_var("hub", "Township", "label_values(packloop_hub_info, hub)"),
        query_var("village", "Village",
                  'label_values(packloop_village_info{hub=~"$hub"}, village)'),
        custom_var("window", "Window", ["day", "7d", "month"], "7d"),
    ]
    return dashboard("packloop-drilldown", "packloop: township and village drill-down",
                     "Waste, thresholds, pickups and containers for chosen townships and "
                     "villages, with maps.", panels, variables, timezone=timezone)


def pipeline_health(timezone: str = "Asia/Shanghai") -> dict[str, Any]:
    ri = "[$__rate_interval]"
    q = [0.5, 0.95, 0.99]
    panels: list[Panel] = [
        row("Workers"),
        stat("Workers up", 'sum(up{job="packloop-worker"}) or vector(0)', "",
             steps=[("red", None), ("green", 1)]),
        stat("Gateway up", 'sum(up{job="packloop-gateway"}) or vector(0)', "",
             steps=[("red", None), ("green", 1)]),
        stat("Planner up", 'sum(up{job="packloop-planner"}) or vector(0)', "",
             steps=[("red", None), ("green", 1)]),
        stat("Events applied / s", 'sum(outcome:packloop_events:rate5m{outcome="applied"})',
             "", decimals=1),
        stat("Dead-letter share", "packloop:events_dead_letter:ratio_rate5m", "percentunit",
             "Alert DeadLetterSpike above 5 %.",
             steps=[("green", None), ("orange", 0.01), ("red", 0.05)], decimals=2),
        stat("Consumer lag (all topics)", "sum(topic:packloop_consumer_lag_records:sum)", "",
             steps=[("green", None), ("orange", 1000), ("red", 10000)]),
        timeseries("Events by outcome",
                   [target(per_second(EVENTS, "outcome"), "{{outcome}}")],
                   "ops", OVER_WORKERS, stack=True, mn=0),
        timeseries("Dead letters by reason",
                   [target(per_second(EVENTS + '{outcome="dead_lettered"}', "reason"),
                           "{{reason}}")],
                   "ops", OVER_WORKERS, stack=True, mn=0),
        timeseries("Event processing latency",
                   [target(f"histogram_quantile({x}, sum by (le) "
                           f"(rate(packloop_event_processing_seconds_bucket{ri})))",
                           f"p{int(x*100)}", ref=chr(ord("A") + i)) for i, x in enumerate(q)],
                   "s", mn=0),
        timeseries("Consumer lag by partition",
                   [target("sum by (topic, partition) (packloop_consumer_lag_records)",
                           "{{topic}}/{{partition}}")],
                   "", "Alert ConsumerLagGrowing: above 1,000 and growing for 15 min.", mn=0),
        timeseries("Partitions per worker",
                   [target("sum by (instance, topic) (packloop_worker_partitions_assigned)",
                           "{{instance}} {{topic}}")],
                   "", "Rebalances show as steps.", mn=0),
        timeseries("Scrape targets up",
                   [target('up{job=~"packloop-.*"}', "{{job}} {{instance}}")], "", mn=0),
        row("Gateway"),
        stat("Gateway Kafka ready", "min(packloop_gateway_kafka_ready) or vector(0)", "",
             "0: the gateway's last Kafka probe failed (hubs get 503 and retry).",
             steps=[("red", None), ("green", 1)]),
        stat("Events accepted / s",
             f'sum(rate(packloop_gateway_events_total{{outcome="accepted"}}{ri}))', "",
             decimals=1),
        stat("Events refused share",
             f'sum(rate(packloop_gateway_events_total{{outcome!="accepted"}}{ri})) '
             f"/ (sum(rate(packloop_gateway_events_total{ri})) > 0)", "percentunit",
             "Rejected, forbidden or unavailable, over all events posted.",
             steps=[("green", None), ("orange", 0.01), ("red", 0.1)], decimals=2),
        stat("Webhook deliveries failed, 1 day",
             'sum(increase(packloop_gateway_webhook_deliveries_total{outcome="failed"}[1d]))',
             "", "Pickup notices the gateway gave up delivering to hub webhooks.",
             steps=[("green", None), ("orange", 1)], decimals=0),
        timeseries("Events by hub and outcome",
                   [target(f"sum by (hub, outcome) (rate(packloop_gateway_events_total{ri}))",
                           "{{hub}} {{outcome}}")], "ops", stack=True, mn=0),
        timeseries("Events refused by reason",
                   [target('sum by (outcome, reason) (rate(packloop_gateway_events_total'
                           f'{{outcome!="accepted"}}{ri}))', "{{outcome}} {{reason}}")],
                   "ops", stack=True, mn=0),
        timeseries("Requests by status",
                   [target(f"sum by (status) (rate(packloop_gateway_requests_total{ri}))",
                           "{{status}}")], "reqps", stack=True, mn=0),
        timeseries("Request latency p95 by route",
                   [target("histogram_quantile(0.95, sum by (route, le) "
                           f"(rate(packloop_gateway_request_duration_seconds_bucket{ri})))",
                           "{{route}}")], "s", mn=0),
        timeseries("Produce latency",
                   [target(f"histogram_quantile({x}, sum by (le) "
                           f"(rate(packloop_gateway_produce_duration_seconds_bucket{ri})))",
                           f"p{int(x*100)}", ref=chr(ord("A") + i)) for i, x in enumerate(q)],
                   "s", "Time to produce an accepted request's events to Kafka (acks=all).",
                   mn=0),
        timeseries("Webhook attempts by hub",
                   [target(f"sum by (hub, result) "
                           f"(rate(packloop_gateway_webhook_attempts_total{ri}))",
                           "{{hub}} {{result}}")], "ops", mn=0),
        row("Planner"),
        timeseries("Plan jobs queued and running",
                   [target('sum by (status) (packloop_plan_jobs{status=~"queued|running"})',
                           "{{status}}")], "", mn=0),
        bargauge("Plan jobs finished, 7 days",
                 "sum by (status) (increase(packloop_plan_jobs_total[7d]))", "{{status}}", ""),
        timeseries("Plan duration",
                   [target(f"histogram_quantile({x}, sum by (le) "
                           f"(rate(packloop_plan_duration_seconds_bucket[1h])))",
                           f"p{int(x*100)}", ref=chr(ord("A") + i)) for i, x in enumerate(q)],
                   "s", mn=0),
        row("Alerts"),
        table("Firing alerts",
              [("Firing", 'sum by (alertname, severity, scope, hub) (ALERTS{alertstate="firing"})',
                "")],
              ["alertname"], "Alerts Prometheus is firing now (routing: docs/operations.md)."),
    ]
    return dashboard("packloop-pipeline", "packloop: pipeline health",
                     "Workers, events, dead letters, latency, consumer lag, gateway and planner.",
                     panels, time_from="now-6h", timezone=timezone)


def load_network(path: Path) -> dict[str, Any]:
    """The network file as data: JSON, or YAML (PACKLOOP_NETWORK may be either; PyYAML,
    which packloop installs, only for a YAML file)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        data: dict[str, Any] = yaml.safe_load(text)
        return data
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def build(targets: Path | None = None, network: Path = NETWORK) -> dict[str, str]:
    """The dashboards' JSON by file name; ``targets``: a county's own targets file;
    ``network``: the county's network file (map centre: its county seat, else the mean of
    its hubs; time zone: its ``timezone``)."""
    data = load_network(network)
    seat = data.get("county_seat") or {}
    hubs = data.get("hubs") or []
    if "lat" in seat and "lon" in seat:
        center = (float(seat["lat"]), float(seat["lon"]))
    elif hubs:
        center = (round(sum(float(h["lat"]) for h in hubs) / len(hubs), 4),
                  round(sum(float(h["lon"]) for h in hubs) / len(hubs), 4))
    else:
        center = (28.59, 119.27)
    timezone = str(data.get("timezone") or "Asia/Shanghai")
    goal = recovery_target(targets)
    source = targets.name if targets is not None else "streams/data/targets.yaml"
    boards = {
        "county-overview.json": county_overview(goal, source, timezone),
        "township-village.json": drilldown(center, goal, source, timezone),
        "pipeline-health.json": pipeline_health(timezone),
    }
    return {name: json.dumps(b, indent=2, ensure_ascii=False) + "\n" for name, b in boards.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Generate packloop's Grafana dashboards.")
    p.add_argument("--check", action="store_true", help="exit 1 if the committed JSON differs")
    p.add_argument("--out", type=Path, default=OUT_DIR)
    p.add_argument("--targets", type=Path, metavar="FILE",
                   help="a county's targets file (as report officer --targets and "
                   "infra/prometheus/build_rules.py --targets): its recovery_ratio colours "
                   "the month recovery ratio panels")
    p.add_argument("--network", type=Path, default=NETWORK, metavar="FILE",
                   help="the county's network file (JSON or YAML, as PACKLOOP_NETWORK): the "
                   "maps' centre and the dashboards' time zone; default: the sample county")
    args = p.parse_args(argv)
    files = build(args.targets, args.network)
    if args.check:
        stale = [n for n, text in files.items()
                 if not (args.out / n).exists() or (args.out / n).read_text("utf-8") != text]
        extra = sorted(f.name for f in args.out.glob("*.json") if f.name not in files)
        if stale or extra:
            print(f"dashboards out of date: {stale + extra}; run {Path(__file__).name}",
                  file=sys.stderr)
            return 1
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text, encoding="utf-8")
        print(f"wrote {args.out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
