"""`packloop plan …`: plan locally (`solve`), or through the planner job service
(`submit`, `status`, `fetch`).

Only argument handling and printing live here; all planning is in the `optimizer` library.
The service is found at PACKLOOP_PLANNER_URL and reached with the planner token in
PACKLOOP_PLANNER_TOKEN (never a command-line argument: it would show in `ps`).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import click
import httpx
import orjson
import yaml
from rich.console import Console

from services.cli.context import console, settings_from


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


# -- the planner job service ------------------------------------------------------------


def _client(ctx: click.Context, url: str | None) -> httpx.Client:
    settings = settings_from(ctx)
    if settings.planner_token is None:
        raise click.ClickException(
            "no planner token: set PACKLOOP_PLANNER_TOKEN (create one with "
            "`packloop planners add-token NAME`)"
        )
    return httpx.Client(
        base_url=(url or settings.planner_url).rstrip("/"),
        headers={"Authorization": f"Bearer {settings.planner_token.get_secret_value()}"},
        timeout=httpx.Timeout(30.0, connect=5.0),
    )


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        resp = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"cannot reach the planner service at {client.base_url} ({type(exc).__name__}: "
            f"{exc}); start it with `packloop planner` or set PACKLOOP_PLANNER_URL"
        ) from None
    if resp.status_code >= 400:
        try:
            body = resp.json()
            message = body.get("message") or body
        except ValueError:
            message = resp.text[:500]
        raise click.ClickException(f"{method} {path}: HTTP {resp.status_code}: {message}")
    return resp


def _load(path: str) -> Any:
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    try:
        return yaml.safe_load(text) if p.suffix.lower() in (".yaml", ".yml") else json.loads(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise click.ClickException(f"{path}: not valid JSON/YAML: {exc}") from None


def _fmt(x: Any, spec: str = ",.2f") -> str:
    return "-" if x is None else format(x, spec)


def _print_job(job: dict[str, Any]) -> None:
    line = f"{job['job_id']}  {job['status']}"
    if job.get("elapsed_s") is not None:
        line += f"  {job['elapsed_s']:.1f} s"
    if job.get("attempts", 0) > 1:
        line += f"  (attempt {job['attempts']})"
    click.echo(line)
    p = job.get("progress")
    if job["status"] == "running" and p:
        gap = p.get("gap")
        click.echo(f"  incumbent {_fmt(p.get('incumbent'))}  bound {_fmt(p.get('bound'))}  "
                   f"gap {'-' if gap is None else f'{gap:.2%}'}  {p.get('label') or ''}")
    if job.get("error"):
        click.echo(f"  reason: {job['error']}")
    s = job.get("summary")
    if s:
        click.echo(f"  plan {s.get('plan_status')}  objective {_fmt(s.get('objective'))}  "
                   f"gap {'-' if s.get('gap') is None else format(s['gap'], '.4%')}  "
                   f"trips {s.get('trips')}")
        for name, k in (s.get("kpis") or {}).items():
            click.echo(f"  {name:<14} cost {_fmt(k.get('cost_cny'))} CNY  "
                       f"CO2e {_fmt(k.get('co2e_kg'))} kg  km {_fmt(k.get('km'), ',.1f')}  "
                       f"single-use {_fmt((k.get('single_use_grams') or 0) / 1000, ',.1f')} kg")


def _wait(client: httpx.Client, job_id: str, quiet: bool) -> dict[str, Any]:
    last = None
    while True:
        job = _call(client, "GET", f"/v1/plans/{job_id}").json()
        if not quiet and job["status"] != last:
            click.echo(f"{job_id}: {job['status']}", err=True)
            last = job["status"]
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(1.0)


@plan.command("submit")
@click.argument("scenario", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--from-state", is_flag=True, help="Plan from the live stream state.")
@click.option("--state-settings", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON/YAML with from_state settings (fleet, prices, container_stock…).")
@click.option("--horizon-days", type=int, default=None, help="from_state: days to plan.")
@click.option("--hubs", default=None, help="from_state: comma-separated hub ids.")
@click.option("--time-limit", type=float, default=None, metavar="S", help="Solver time limit.")
@click.option("--gap", type=float, default=None, metavar="G", help="Relative MIP gap.")
@click.option("--name", default=None, help="A name for the job.")
@click.option("--wait", is_flag=True, help="Wait until the job is finished.")
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
@click.option("--url", default=None, help="Planner service URL (default PACKLOOP_PLANNER_URL).")
@click.pass_context
def submit(ctx: click.Context, scenario: str | None, from_state: bool,
           state_settings: str | None, horizon_days: int | None, hubs: str | None,
           time_limit: float | None, gap: float | None, name: str | None, wait: bool,
           as_json: bool, url: str | None) -> None:
    """Submit SCENARIO (JSON/YAML) or --from-state; prints the job id on the last line."""
    if bool(scenario) == from_state:
        raise click.UsageError("give either SCENARIO or --from-state")
    options = {k: v for k, v in (("time_limit_s", time_limit), ("mip_gap", gap),
                                 ("name", name)) if v is not None}
    if from_state:
        fs: dict[str, Any] = dict(_load(state_settings) or {}) if state_settings else {}
        if horizon_days is not None:
            fs["horizon_days"] = horizon_days
        if hubs:
            fs["hubs"] = [h.strip() for h in hubs.split(",") if h.strip()]
        body: dict[str, Any] = {"from_state": fs, "options": options}
    else:
        if state_settings or horizon_days or hubs:
            raise click.UsageError("--state-settings/--horizon-days/--hubs go with --from-state")
        body = {"scenario": _load(scenario), "options": options}  # type: ignore[arg-type]
    with _client(ctx, url) as client:
        job = _call(client, "POST", "/v1/plans", content=orjson.dumps(body),
                    headers={"Content-Type": "application/json"}).json()
        if wait:
            job = _wait(client, job["job_id"], as_json)
    if as_json:
        click.echo(orjson.dumps(job).decode())
        return
    if wait:
        _print_job(job)
    click.echo(job["job_id"])
    if wait and job["status"] != "done":
        sys.exit(2)


@plan.command("status")
@click.argument("job_id", metavar="ID")
@click.option("--wait", is_flag=True, help="Wait until the job is finished.")
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
@click.option("--url", default=None, help="Planner service URL.")
@click.pass_context
def status(ctx: click.Context, job_id: str, wait: bool, as_json: bool, url: str | None) -> None:
    """Show a job: queued, running (incumbent, bound, gap), done (KPIs), failed (why)."""
    with _client(ctx, url) as client:
        job = _wait(client, job_id, as_json) if wait else \
            _call(client, "GET", f"/v1/plans/{job_id}").json()
    if as_json:
        click.echo(orjson.dumps(job).decode())
    else:
        _print_job(job)


@plan.command("fetch")
@click.argument("job_id", metavar="ID")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False),
              help="Directory for plan.json, report.html and scenario.json.")
@click.option("--url", default=None, help="Planner service URL.")
@click.pass_context
def fetch(ctx: click.Context, job_id: str, out_dir: str, url: str | None) -> None:
    """Download a finished job's plan, report and scenario into DIR."""
    out = Path(out_dir)
    with _client(ctx, url) as client:
        job = _call(client, "GET", f"/v1/plans/{job_id}").json()
        if job["status"] not in ("done", "failed"):
            raise click.ClickException(f"job {job_id} is {job['status']}: nothing to fetch yet")
        out.mkdir(parents=True, exist_ok=True)
        written = []
        scenario = _call(client, "GET", f"/v1/plans/{job_id}/scenario").json()
        (out / "scenario.json").write_bytes(orjson.dumps(scenario, option=orjson.OPT_INDENT_2))
        written.append("scenario.json")
        if "result" in job["links"]:
            result = _call(client, "GET", f"/v1/plans/{job_id}/result").json()
            (out / "plan.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
            written.append("plan.json")
        if "report" in job["links"]:
            html = _call(client, "GET", f"/v1/plans/{job_id}/report").text
            (out / "report.html").write_text(html, encoding="utf-8")
            written.append("report.html")
    for name in written:
        click.echo(str(out / name))
    if job["status"] == "failed":
        raise click.ClickException(f"job {job_id} failed: {job.get('error')}")
