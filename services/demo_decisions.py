"""The demo's decisions: what a waste target costs, one what-if and one hub's run sheet.

The county plan answers "what runs this week"; the people the demo is for also ask what
cutting single-use packaging would cost, what one more van or more boxes would change, and
what a van does tomorrow. These run on the busiest township alone, so that the frontier's
points and the what-if's two solves take seconds, not the county plan's minutes; the run
sheet comes from the county plan itself, as the planner service's daily dispatch does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console

#: frontier points on the single-use front (its two ends and what lies between)
FRONT_POINTS = 5
#: boxes the what-if adds to the township's insulated-box pool
EXTRA_BOXES = 50


@dataclass
class Decisions:
    hub_id: str
    frontier: dict[str, Any] = field(default_factory=dict)
    whatif: dict[str, Any] = field(default_factory=dict)
    run_sheet: dict[str, Any] = field(default_factory=dict)
    run_sheet_path: Path | None = None


def _hub_only(scenario_data: dict[str, Any], hub: str) -> dict[str, Any]:
    """The scenario cut to one township: its villages, their demand, waste and pools."""
    villages = {v["village_id"] for v in scenario_data["villages"] if v["hub_id"] == hub}
    out = dict(scenario_data)
    out["name"] = f"{scenario_data.get('name', 'plan')}: {hub} only"
    out["hubs"] = [h for h in scenario_data["hubs"] if h["hub_id"] == hub]
    out["villages"] = [v for v in scenario_data["villages"] if v["village_id"] in villages]
    for key in ("demand", "outstanding_waste", "initial_empties", "containers_out"):
        if key in scenario_data:
            out[key] = [r for r in scenario_data[key] if r.get("village_id") in villages]
    out["vehicle_types"] = [
        {**vt, "count_by_hub": {h: n for h, n in vt["count_by_hub"].items() if h == hub}}
        if vt.get("count_by_hub") else vt for vt in scenario_data["vehicle_types"]]
    if "container_pools" in scenario_data:
        out["container_pools"] = [p for p in scenario_data["container_pools"]
                                  if p.get("hub_id") == hub]
    return out


def decide(scenario_data: dict[str, Any], plan_json: dict[str, Any], hub: str, *,
           timezone: str, out_dir: Path, time_limit_s: float, console: Console,
           dispatch_date: date | None = None) -> Decisions:
    import optimizer
    from optimizer.frontier import solve_frontier
    from optimizer.whatif import what_if
    from services.planner.dispatch import run_sheets
    from services.reports.run_sheet import render_html

    out = Decisions(hub_id=hub)
    sub = optimizer.load_scenario(_hub_only(scenario_data, hub))
    console.print(f"      decisions for township {hub}: the single-use front "
                  f"({FRONT_POINTS} points, {time_limit_s:.0f} s each) …")
    front = solve_frontier(sub, points=FRONT_POINTS, fronts=("single_use",),
                           time_limit_s=time_limit_s, threads=2)
    out.frontier = front.to_json_dict(plans={k: None for k in range(len(front.points))})
    van = next((v.vehicle_type for v in sub.vehicle_types
                if v.base == "hub" and v.refrigerated), sub.vehicle_types[0].vehicle_type)
    changes = [(f"fleet.{van}.count.{hub}", "+1")]
    if any(p.container_type == "insulated_box" for p in sub.container_pools):
        changes.append((f"pools.{hub}.insulated_box", f"+{EXTRA_BOXES}"))
    console.print(f"      what-if: {', '.join(f'{k} {v}' for k, v in changes)} …")
    out.whatif = what_if(sub, changes, time_limit_s=time_limit_s, threads=2).to_json_dict()
    day = dispatch_date or date.today() + timedelta(days=1)
    sheets = run_sheets(scenario_data, plan_json, day, job_id="demo", timezone=timezone)
    # the township's own sheet, or the busiest one of tomorrow when it has no milk run then
    sheet = max(sheets, key=lambda s: (len(s.trips) > 0, s.hub_id == hub, len(s.trips)),
                default=None)
    if sheet is not None:
        out.run_sheet = sheet.model_dump(mode="json")
        out.run_sheet_path = out_dir / f"run-sheet-{sheet.hub_id}.html"
        out.run_sheet_path.write_text(render_html(out.run_sheet), "utf-8")
    return out
