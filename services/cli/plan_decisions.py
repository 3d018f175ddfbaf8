"""`packloop plan frontier` and `packloop plan whatif`: the decisions a county officer and
a planner ask about — what a waste or carbon target costs, and what a change of fleet, pool
or cleaning line does. Commands of the `plan` group (registered there on import); the
planning is in `optimizer.frontier` and `optimizer.whatif`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from services.cli.context import console
from services.cli.plan import (
    FRONTIER_POINTS,
    GAP,
    OUT_DIR,
    THREADS,
    TIME_LIMIT,
    BadInput,
    _clean,
    plan,
)


def _load_scenario(path: str) -> Any:
    import optimizer

    try:
        return optimizer.load_scenario(path)
    except optimizer.ScenarioError as exc:
        raise BadInput(str(exc)) from None


def _print_json(data: Any) -> None:
    sys.stdout.buffer.write(orjson.dumps(_clean(data), option=orjson.OPT_INDENT_2) + b"\n")


@plan.command("frontier")
@click.argument("scenario", type=click.Path(exists=True, dir_okay=False))
@click.option("--points", type=FRONTIER_POINTS, default=7, show_default=True,
              help="Plans per front (both ends included).")
@click.option("--time-limit", "time_limit", type=TIME_LIMIT, default=None, metavar="S",
              help="Wall-clock limit per solve (each point, each end of the payoff table).")
@click.option("--gap", type=GAP, default=None, metavar="G",
              help="Relative MIP gap per solve, e.g. 0.02.")
@click.option("--threads", type=THREADS, default=None, metavar="T", help="HiGHS threads.")
@click.option("--front", "front", type=click.Choice(["both", "single_use", "co2e"]),
              default="both", show_default=True,
              help="Which front: cost against single-use packaging, against CO2e, or both.")
@click.option("--json", "as_json", is_flag=True, help="Print the frontier as JSON on stdout.")
@click.option("--out", "out_dir", type=OUT_DIR, default=None,
              help="Write frontier.html, frontier.json and each point's plan.json and "
                   "report.html (one directory per point) here.")
def frontier(scenario: str, points: int, time_limit: float | None, gap: float | None,
             threads: int | None, front: str, as_json: bool, out_dir: str | None) -> None:
    """Trade-off fronts of SCENARIO: cost against single-use packaging, and cost against
    CO2e (AUGMECON2), each point a complete plan."""
    import optimizer
    from optimizer.frontier import FRONTS, FrontierPoint, NoFrontier
    from optimizer.frontier import solve_frontier as run_frontier

    sc = _load_scenario(scenario)

    def show(p: FrontierPoint) -> None:
        console.print(f"[dim]{p.front:>10} {p.role:<20} cost {p.cost_cny:12,.2f} CNY  "
                      f"single-use {p.single_use_grams / 1000:10,.1f} kg  CO2e "
                      f"{p.co2e_kg:10,.1f} kg  gap {p.result.gap or 0:.3%}[/dim]",
                      highlight=False, soft_wrap=True)

    def hub_done(hub: str, done: int, hubs: int) -> None:
        console.print(f"[dim]hub {hub}: its fronts are solved ({done}/{hubs})[/dim]",
                      highlight=False)

    try:
        f = run_frontier(sc, points=points, time_limit_s=time_limit, mip_gap=gap,
                         threads=threads, on_point=show, on_hub=hub_done,
                         fronts=FRONTS if front == "both" else (front,))  # type: ignore[arg-type]
    except NoFrontier as exc:
        _no_frontier(str(exc), exc.status, exc.diagnosis, as_json)
    except optimizer.ScenarioError as exc:  # demand no trip can serve (as plan solve says)
        _no_frontier("no trip can serve some demand", "infeasible",
                     [{"what": what, "why": why} for what, why in exc.problems], as_json)
    dropped = int(f.stats.get("dropped_dominated", 0) or 0)
    if dropped:
        # the lines above are each point as it was found; these are not on the front
        console.print(f"[dim]{dropped} of the points found above equal or are dominated by "
                      "another and are left out of the front[/dim]", highlight=False,
                      soft_wrap=True)
    plans: dict[int, Any] | None = None
    if out_dir:
        from optimizer import write_report
        from services.reports.frontier import write_frontier_html

        out = Path(out_dir)
        plans = {}
        counter: dict[str, int] = {}
        for k, p in enumerate(f.points):
            n = counter[p.front] = counter.get(p.front, -1) + 1
            name = f"{p.front}-{n:02d}"
            write_report(p.result, sc, out / name)
            plans[k] = f"{name}/plan.json"
    doc = _clean(f.to_json_dict(plans))
    if out_dir:
        out.mkdir(parents=True, exist_ok=True)
        (out / "frontier.json").write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        console.print(f"frontier: {write_frontier_html(doc, sc.name, out)}")
    if as_json:
        _print_json(doc)
    else:
        _frontier_table(doc)


def _no_frontier(message: str, status: str, diagnosis: list[dict[str, Any]],
                 as_json: bool) -> None:
    """No frontier: an end of the payoff table has no plan. Say why as `plan solve` does
    (its diagnosis, one line each; with --json a document on stdout) and exit 2."""
    console.print(f"[red]no frontier:[/red] {message}", soft_wrap=True, highlight=False)
    for d in diagnosis:
        console.print(f"[red]{status}:[/red] {d['what']}: {d['why']}", soft_wrap=True,
                      highlight=False)
    if as_json:
        _print_json({"status": status, "error": message, "points": [], "extremes": {},
                     "diagnosis": diagnosis})
    sys.exit(2)


def _frontier_table(doc: dict[str, Any]) -> None:
    out = Console()
    for front, what, key, unit, spec in (
            ("single_use", "single-use packaging", "marginal_cny_per_kg_single_use",
             "CNY/kg\navoided", ",.2f"),
            ("co2e", "CO2e", "marginal_cny_per_t_co2e", "CNY/t CO2e\navoided", ",.0f")):
        if not any(p["front"] == front for p in doc["points"]):
            continue  # a front not asked for (--front), not an empty table
        # fits 80 columns with the county's figures (the plan column cut its own role
        # name to "single_use_o…"): headers on two lines, no outer edge, no cell wrapped
        table = Table(title=f"cost against {what}", show_edge=False, pad_edge=False)
        for col in ("plan", "cost\nCNY", "single-use\nkg", "CO2e\nkg", "gap", unit):
            table.add_column(col, justify="left" if col == "plan" else "right", no_wrap=True)
        noisy = False
        for p in doc["points"]:
            if p["front"] != front:
                continue
            m = p.get(key)
            mark = "~" if m is not None and p.get("marginal_within_gaps") else ""
            noisy = noisy or bool(mark)
            table.add_row(p["role"], f"{p['cost_cny']:,.2f}",
                          f"{p['single_use_grams'] / 1000:,.1f}", f"{p['co2e_kg']:,.1f}",
                          "-" if p["gap"] is None else f"{p['gap']:.3%}",
                          "-" if m is None else mark + format(m, spec))
        out.print(table)
        if noisy:
            out.print("~: the step's cost change is within the two points' gaps, so the "
                      "step between their optimal plans may be far from it (a longer "
                      "--time-limit or a smaller --gap narrows it)", highlight=False)
        pay = doc.get("extremes", {}).get("payoff", {}).get(front, {})
        least, floor = pay.get(f"{front}_min"), pay.get(f"{front}_min_bound")
        if least is not None and floor is not None and least > floor + 1e-6 * max(1.0, floor):
            # the end is the least found in its time, not a proven least: say how far
            scale = 1000.0 if front == "single_use" else 1.0
            out.print(f"least {what} found: {least / scale:,.1f} kg; no plan goes below "
                      f"{floor / scale:,.1f} kg (a bound: a longer --time-limit may find "
                      "plans nearer it)", highlight=False)


@plan.command("whatif")
@click.argument("base_scenario", metavar="BASE_SCENARIO",
                type=click.Path(exists=True, dir_okay=False))
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE", required=True,
              help="A change: fleet.<vehicle_type>.count[.<hub_id>], "
                   "pools.<hub_id>.<container_type>, hubs.<hub_id>.cleaning_capacity_per_day; "
                   "value +N, -N or N. Repeat for several.")
@click.option("--time-limit", "time_limit", type=TIME_LIMIT, default=None, metavar="S",
              help="Wall-clock limit per solve (base, variant); an infeasible variant's "
                   "diagnosis takes what the variant's limit has left (at least 2 s, at "
                   "most 30 s).")
@click.option("--gap", type=GAP, default=None, metavar="G", help="Relative MIP gap.")
@click.option("--threads", type=THREADS, default=None, metavar="T", help="HiGHS threads.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def whatif(base_scenario: str, settings: tuple[str, ...], time_limit: float | None,
           gap: float | None, threads: int | None, as_json: bool) -> None:
    """Plan BASE_SCENARIO and BASE_SCENARIO with the --set changes; print the deltas."""
    from optimizer.whatif import WhatIfError, apply_changes, what_if

    sc = _load_scenario(base_scenario)
    changes = []
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
        changes.append((key.strip(), value.strip()))
    try:
        apply_changes(sc, changes)  # a bad key fails before any solve
    except WhatIfError as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from None
    result = what_if(sc, changes, time_limit_s=time_limit, mip_gap=gap, threads=threads)
    doc = _clean(result.to_json_dict())
    if as_json:
        _print_json(doc)
    else:
        _whatif_table(doc)
    if result.base.plan is None or result.variant.plan is None:
        sys.exit(2)


def _amount(x: float | None, key: str = "") -> str:
    """A change's value as written: a whole number in full ("1 → 3", never "1e+09"), a
    fraction to its hundredths; no limit as "unlimited": no count (None), or a hub's
    cleaning capacity at its default, MAX_NUMBER (it read "1,000,000,000 → 100")."""
    from optimizer.scenario import MAX_NUMBER

    if x is None or (key.endswith("cleaning_capacity_per_day") and x >= MAX_NUMBER):
        return "unlimited"
    if float(x).is_integer():
        return f"{int(x):,}"
    return f"{x:,.2f}".rstrip("0").rstrip(".")


def _whatif_table(doc: dict[str, Any]) -> None:
    out = Console()
    for c in doc["changes"]:
        before = _amount(c["from"], c["key"])
        # a fleet change's hubs of their own count (count_by_hub), each as it changed
        hubs = ", ".join(f"hub {h}: {_amount(v['from'])}"
                         f" → {_amount(v['to'])}" for h, v in (c.get("by_hub") or {}).items())
        out.print(f"{c['key']}: {before} → {_amount(c['to'], c['key'])}"
                  + (f" ({hubs})" if hubs else ""),
                  highlight=False, soft_wrap=True)
    table = Table(title="what-if: variant against base")
    for col in ("", "base", "variant", "delta"):
        table.add_column(col, justify="left" if not col else "right")
    rows = (("cost, CNY", "cost_cny", 1.0, ",.2f"), ("distance, km", "km", 1.0, ",.1f"),
            ("CO2e, kg", "co2e_kg", 1.0, ",.1f"),
            ("single-use packaging, kg", "single_use_grams", 1e-3, ",.1f"),
            ("trips", "trips", 1.0, ",.0f"))
    delta = doc.get("delta") or {}
    for label, key, scale, spec in rows:
        cells = []
        for side in (doc["base"], doc["variant"]):
            v = side.get(key)
            cells.append("-" if v is None else format(v * scale, spec))
        d = delta.get(key)
        cells.append("-" if d is None else format(d * scale, "+" + spec))
        table.add_row(label, *cells)
    out.print(table)
    span = doc.get("optimal_cost_delta_range")
    if span is not None:
        from optimizer.whatif import cost_effect

        lo, hi = span
        effect = cost_effect(span)
        verdict = (": it holds 0, so no effect is shown" if effect == "none"
                   else f": the change {effect} the cost")
        out.print(f"cost change between the optimal plans: {lo:+,.2f} to {hi:+,.2f} CNY (the "
                  f"solves' gaps){verdict}", highlight=False, soft_wrap=True)
    for line in _marginal_notes(doc):
        out.print(line, highlight=False, soft_wrap=True)
    for name in ("base", "variant"):
        s = doc[name]
        gap = "-" if s.get("gap") is None else f"{s['gap']:.3%}"
        out.print(f"{name}: {s['status']}, gap {gap}")
        for d in s.get("diagnosis") or []:  # why a side has no plan, as plan solve says it
            out.print(f"  {d['what']}: {d['why']}", highlight=False, soft_wrap=True)


def _marginal_notes(doc: dict[str, Any]) -> list[str]:
    """The `marginal_readings` of the document, one line each: what the base plan's marginal
    value said of a pool or cleaning change and for how many units that holds. Why: "one
    more box saves 2.87 CNY" read as 500 boxes saving 1,435 CNY, where the value held for
    1.35 boxes (docs/optimizer.md, "Marginal values")."""
    out = []
    for r in doc.get("marginal_readings") or []:
        key, step = r["key"], r["change"]
        if r["marginal_value"] is None:
            why = r.get("why")
            out.append(f"{key}: the base plan has no marginal value for it"
                       + (f" ({why})" if why else "") + "; the re-solve above prices it")
            continue
        head = (f"{key}: the base plan's marginal value is {r['marginal_value']:+,.2f} CNY "
                f"{r['per']}, on its own trips")
        if r["within"] is None:  # HiGHS gave no ranging: say so rather than a range of 0
            out.append(f"{head} (for how many is not known); this change is {step:+,g}: "
                       "the re-solve above prices it")
            continue
        held, unit, way = r["holds_for"], r["unit"], "more" if step >= 0 else "fewer"
        reach = (f"any number of {unit} {way}" if held is None
                 else f"at least {held:,.1f} {unit} {way}")
        out.append(f"{head}, for {reach}; this change is {step:+,g}"
                   + (f", within it: about {r['predicted_cost_delta_cny']:+,.2f} CNY if the "
                      "trips stay" if r["within"]
                      else ", beyond it: only the re-solve above prices it"))
    if len(out) > 1:
        out.append("(each range holds for its change alone; several at once may change "
                   "each other's values)")
    return out
