"""`packloop plan …`: run the planner's optimiser locally.

Only argument handling and printing live here; all planning is in the `optimizer` library.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

import click
import orjson
from rich.console import Console

console = Console(stderr=True)


def _clean(obj: Any) -> Any:
    """JSON has no inf/NaN: print them as null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    return obj


@click.group()
def plan() -> None:
    """Plan trips, temperature-class consolidation and packaging reuse (Pyomo/HiGHS)."""


@plan.command()
@click.argument("scenario", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--vrplib", "vrplib_file", type=click.Path(exists=True, dir_okay=False),
              default=None, help="Import a CVRPLIB/TSPLIB CVRP instance instead of a scenario.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Write plan.json and report.html here.")
@click.option("--time-limit", "time_limit", type=float, default=None, metavar="S",
              help="Wall-clock limit in seconds for the whole plan (baselines included).")
@click.option("--gap", "gap", type=float, default=None, metavar="G",
              help="Relative MIP gap at which to stop, e.g. 0.01.")
@click.option("--threads", "threads", type=int, default=None, metavar="N",
              help="Worker processes / HiGHS threads.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--no-baselines", is_flag=True, help="Skip the uncoordinated baseline.")
def solve(scenario: str | None, vrplib_file: str | None, out_dir: str | None,
          time_limit: float | None, gap: float | None, threads: int | None, as_json: bool,
          no_baselines: bool) -> None:
    """Solve SCENARIO (JSON or YAML) or a --vrplib instance and print the plan's summary."""
    import optimizer
    from optimizer import Progress

    if (scenario is None) == (vrplib_file is None):
        raise click.UsageError("give either SCENARIO or --vrplib FILE")
    try:
        if vrplib_file:
            from optimizer import parse_vrp, scenario_from_vrp

            sc = scenario_from_vrp(parse_vrp(vrplib_file))
        else:
            assert scenario is not None  # the usage check above: one of the two is given
            sc = optimizer.load_scenario(scenario)
    except optimizer.ScenarioError as exc:
        raise click.ClickException(str(exc)) from None

    def show(p: Progress) -> None:
        gap_txt = f"{p.gap:.2%}" if math.isfinite(p.gap) else "-"
        console.print(f"[dim]{p.elapsed_s:7.1f}s {p.label:>18} incumbent {p.incumbent:14.2f} "
                      f"bound {p.bound:14.2f} gap {gap_txt}[/dim]")

    if sc.routing.single_visit:
        result = optimizer.solve_cvrp(sc, time_limit_s=time_limit, mip_gap=gap, threads=threads,
                                      progress=show)
    else:
        result = optimizer.solve(sc, time_limit_s=time_limit, mip_gap=gap, threads=threads,
                                 progress=show, baselines=not no_baselines)
    data = _clean(result.to_json_dict())
    if out_dir:
        from optimizer import write_report

        path = write_report(result, sc, Path(out_dir))
        console.print(f"report: {path}")
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        _summary(data)
    if result.status == "infeasible":
        for d in result.diagnosis:
            console.print(f"[red]infeasible:[/red] {d['what']}: {d['why']}")
        sys.exit(2)


def _summary(data: dict[str, Any]) -> None:
    from rich.table import Table

    out = Console()
    obj = data["objective"]
    gap = data["gap"]
    obj_txt = "-" if obj is None else f"{obj:,.2f}"
    out.print(f"status [bold]{data['status']}[/bold]  objective {obj_txt}"
              f"  gap {'-' if gap is None else f'{gap:.4%}'}  trips {len(data['trips'])}")
    if data.get("routes") is not None:
        for k, r in enumerate(data["routes"], 1):
            out.print(f"Route #{k}: {' '.join(map(str, r))}")
        return
    if not data.get("kpis"):
        return
    table = Table(title="plan vs baselines")
    table.add_column("")
    names = ["joint"] + [b for b in ("sequential", "uncoordinated") if b in data["baselines"]]
    for n in names:
        table.add_column(n, justify="right")
    rows = {"joint": data["kpis"]}
    for n in names[1:]:
        rows[n] = data["baselines"][n].get("kpis")

    def cell(k: dict | None, path: tuple[str, ...]) -> str:
        if k is None:
            return "n/a"
        for p in path:
            k = k[p]
        return f"{k:,.1f}"

    for label, path in (("cost CNY", ("cost_cny", "total")), ("km", ("km",)),
                        ("trips", ("trips",)), ("CO2e kg", ("co2e_kg", "total")),
                        ("single-use g", ("single_use_grams",))):
        table.add_row(label, *(cell(rows[n], path) for n in names))
    out.print(table)
