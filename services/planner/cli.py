"""`packloop plan submit|status|fetch`: the command-line front of the planner job service.

The service is found at PACKLOOP_PLANNER_URL and reached with the planner token in
PACKLOOP_PLANNER_TOKEN (never a command-line argument: it would show in `ps`).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
import httpx
import orjson
import yaml

from services.plan_cli import plan


def _client(ctx: click.Context, url: str | None) -> httpx.Client:
    from services.settings import Settings, get_settings

    settings = ctx.obj if isinstance(ctx.obj, Settings) else get_settings()
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


def _print_status(job: dict[str, Any]) -> None:
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


@click.command("submit")
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
        _print_status(job)
    click.echo(job["job_id"])
    if wait and job["status"] != "done":
        sys.exit(2)


@click.command("status")
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
        _print_status(job)


@click.command("fetch")
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


for _command in (submit, status, fetch):
    plan.add_command(_command)
