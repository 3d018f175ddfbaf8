"""`packloop plan …`: plan locally (`solve`), or through the planner job service
(`submit`, `status`, `fetch`).

Only argument handling and printing live here; all planning is in the `optimizer` library.
The service is found at PACKLOOP_PLANNER_URL (or `--url`) and reached with the planner token
in PACKLOOP_PLANNER_TOKEN (or `--token`, for a one-off call: a flag shows in `ps` and in the
shell's history, the variable does not).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import click
import httpx
import orjson
from rich.console import Console

from services.cli.context import FiniteRange, bearer, console, settings_from

#: --time-limit: seconds, above 0
TIME_LIMIT = FiniteRange(min=0, min_open=True)
#: --gap: a relative MIP gap, 0 to 1 (0.01 is 1 %)
GAP = FiniteRange(min=0, max=1)
#: --threads: at least one
THREADS = click.IntRange(min=1)
#: --points of a frontier: 2 (its two ends) up to the planner API's limit (FrontierOptions
#: in services/planner/app.py; a test keeps the two equal), which bounds a job's solves
FRONTIER_POINTS = click.IntRange(2, 25)


class OutDir(click.Path):
    """A directory the command writes into: created and tried with a file before any
    work, so a path it cannot write is a usage error naming the option (exit 2), not a
    traceback after a solve of minutes. The folders created for it are removed again at
    the end when the command wrote nothing into them (a solve that failed)."""

    def __init__(self) -> None:
        super().__init__(file_okay=False)

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        path = Path(os.fsdecode(rv))
        created = [d for d in (path, *path.parents) if not d.exists()]
        if ctx is not None and created:
            ctx.call_on_close(lambda: _remove_if_empty(created))
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".packloop-write-test-"):
                pass
        except OSError as exc:
            self.fail(f"cannot write into {str(rv)!r}: {exc.strerror or exc}", param, ctx)
        return rv


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (innermost first) that are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return  # not empty (the command wrote into it), or gone: keep the rest


#: --out: a directory to write plans and reports into
OUT_DIR = OutDir()


class BadInput(click.ClickException):
    """A file the command cannot use: one line, exit status 2 (as for a usage error)."""

    exit_code = 2


#: a process older than this when a command starts was not started for that command (a
#: test runner, a program that runs commands in-process): its age does not count
STARTUP_MAX_S = 10.0


def _seconds_since_process_start() -> float:
    """How long this process has run before the command (Linux; 0 elsewhere): the
    interpreter's start and the imports count against its --time-limit too."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime_s = float(Path("/proc/uptime").read_text().split()[0])
        age = max(0.0, uptime_s - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0
    return age if age < STARTUP_MAX_S else 0.0


def _number(x: float | None, spec: str) -> str:
    return "-" if x is None or not math.isfinite(x) else format(x, spec)


def progress_line(objective: float | None, bound: float | None, gap: float | None) -> str:
    """The county's objective, bound and gap as they stand; '-' for what is not known yet
    (no plan for every hub group, no bound for every group), never nan or inf."""
    return (f"objective {_number(objective, ',.2f'):>12}  bound {_number(bound, ',.2f'):>12}  "
            f"gap {_number(gap, '.2%'):>7}")


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
@click.option("--fleet", type=click.Choice(["exact", "free"]), default="exact",
              show_default=True,
              help="With --vrplib: exact gives an instance named -kN exactly N routes; free "
                   "lets the number of routes float.")
@click.option("--out", "out_dir", type=OUT_DIR, default=None,
              help="Write plan.json and report.html here.")
@click.option("--time-limit", "time_limit", type=TIME_LIMIT, default=None, metavar="S",
              help="Wall-clock limit in seconds for the whole command (model building, "
                   "baselines and report included); the best plan found by then is returned.")
@click.option("--gap", "gap", type=GAP, default=None, metavar="G",
              help="Relative MIP gap at which to stop, e.g. 0.01.")
@click.option("--threads", "threads", type=THREADS, default=None, metavar="N",
              help="Worker processes / HiGHS threads.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
@click.option("--no-baselines", is_flag=True, help="Skip the uncoordinated baseline.")
@click.option("--marginal-vehicles", is_flag=True,
              help="Also price one more vehicle of each type per hub (a short re-solve each, "
                   "within --time-limit).")
def solve(scenario: str | None, vrplib_file: str | None, fleet: str, out_dir: str | None,
          time_limit: float | None, gap: float | None, threads: int | None, as_json: bool,
          no_baselines: bool, marginal_vehicles: bool) -> None:
    """Solve SCENARIO (JSON or YAML) or a --vrplib instance and print the plan's summary."""
    started = time.perf_counter() - _seconds_since_process_start()
    import optimizer
    from optimizer import Progress

    if (scenario is None) == (vrplib_file is None):
        raise click.UsageError("give either SCENARIO or --vrplib FILE")
    ctx = click.get_current_context()
    if vrplib_file is None and ctx.get_parameter_source("fleet") not in (
            None, click.core.ParameterSource.DEFAULT):
        # a scenario's fleet is its vehicle types' counts: --fleet was silently ignored
        raise click.UsageError("--fleet goes with --vrplib (a CVRPLIB instance's number of "
                               "routes); a scenario's fleet is its vehicle types' count")
    try:
        if vrplib_file:
            from optimizer import parse_vrp, scenario_from_vrp

            sc = scenario_from_vrp(parse_vrp(vrplib_file), "free" if fleet == "free" else "exact")
        else:
            assert scenario is not None  # the usage check above: one of the two is given
            sc = optimizer.load_scenario(scenario)
    except optimizer.ScenarioError as exc:
        raise BadInput(str(exc)) from None

    def show(p: Progress) -> None:
        console.print(f"[dim]{p.elapsed_s:7.1f}s  {progress_line(p.incumbent, p.bound, p.gap)}"
                      f"  {p.label}[/dim]", highlight=False, soft_wrap=True)

    # --time-limit is the command's: what reading the scenario took and what the report
    # will take come out of the solve's share
    limit = None if time_limit is None else max(0.0, time_limit - (
        time.perf_counter() - started) - (optimizer.report_seconds(sc) if out_dir else 0.0))
    if sc.routing.single_visit:
        result = optimizer.solve_cvrp(sc, time_limit_s=limit, mip_gap=gap, threads=threads,
                                      progress=show)
    else:
        result = optimizer.solve(sc, time_limit_s=limit, mip_gap=gap, threads=threads,
                                 progress=show, baselines=not no_baselines,
                                 marginal_vehicles=marginal_vehicles)
    data = _clean(result.to_json_dict())
    if out_dir:
        from optimizer import write_report

        path = write_report(result, sc, Path(out_dir))
        console.print(f"report: {path}")
        if vrplib_file and result.routes is not None:
            from optimizer.vrplib import write_sol

            write_sol(Path(out_dir) / f"{sc.name}.sol", result.routes, result.objective)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        _summary(data)
    if result.plan is None:
        # infeasible, or no plan within the time limit: nothing to act on
        what = {"infeasible": "infeasible", "error": "solver error"}.get(result.status, "no plan")
        if result.status == "error":
            console.print("[red]solver error:[/red] HiGHS stopped without a plan and without "
                          "proving there is none (numerical trouble); the scenario's "
                          "magnitudes (parcels, litres, costs) may be far apart", soft_wrap=True)
        for d in result.diagnosis or [{"what": "solver", "why": "no plan found"}]:
            console.print(f"[red]{what}:[/red] {d['what']}: {d['why']}", soft_wrap=True)
        sys.exit(2)


#: the KPIs `plan solve` prints, in the units `plan status` prints them: (label with its
#: unit, where in the KPIs, factor from the stored unit)
KPI_ROWS: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("cost, CNY", ("cost_cny", "total"), 1.0),
    ("CO2e, kg", ("co2e_kg", "total"), 1.0),
    ("distance, km", ("km",), 1.0),
    ("trips", ("trips",), 1.0),
    ("single-use packaging, kg", ("single_use_grams",), 1e-3),
)


def _summary(data: dict[str, Any]) -> None:
    from rich.table import Table

    out = Console()
    obj = data["objective"]
    gap = data["gap"]
    obj_txt = "-" if obj is None else f"{obj:,.2f}"
    out.print(f"status [bold]{data['status']}[/bold]  objective {obj_txt}"
              f"  gap {'-' if gap is None else f'{gap:.4%}'}  trips {len(data['trips'])}")
    early = {k[len("bound_from_"):]: int(v) for k, v in
             (data.get("stats", {}).get("joint") or {}).items() if k.startswith("bound_from_")}
    trunk = early.pop("trunk_rounding", 0)
    if trunk:
        out.print(f"the bound of {trunk} hub group(s) is their joint model with whole trunk "
                  "trips (trunk rounding), higher than their joint solve's", soft_wrap=True)
    if early:
        which = ", ".join(f"{n} from {'the LP relaxation' if k == 'relaxation' else k}"
                          for k, n in sorted(early.items()))
        out.print(f"the bound of {sum(early.values())} hub group(s) is from before their joint "
                  f"solve ({which}): a longer --time-limit tightens it", soft_wrap=True)
    from optimizer.result import plan_caveats

    for caveat in plan_caveats(data):
        out.print(f"[yellow]{caveat}[/yellow]", soft_wrap=True)
    if data.get("routes") is not None:
        covers = data.get("stats", {}).get("bound_covers")
        if covers:
            rg = data.get("route_gap")
            out.print(f"the bound covers {covers}; route gap "
                      f"{'-' if rg is None else f'{rg:.4%}'}", soft_wrap=True)
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

    def cell(k: dict | None, path: tuple[str, ...], scale: float) -> str:
        if k is None:
            return "n/a"
        value: Any = k
        for p in path:
            value = value[p]
        return f"{value:,d}" if isinstance(value, int) else f"{value * scale:,.1f}"

    for label, path, scale in KPI_ROWS:
        table.add_row(label, *(cell(rows[n], path, scale) for n in names))
    out.print(table)


# -- the planner job service ------------------------------------------------------------


F = TypeVar("F", bound=Callable[..., Any])


def service_options(command: F) -> F:
    """Where the job service is and the token it takes, the same on every command."""
    command = click.option(
        "--token", default=None, metavar="TOKEN",
        help="Planner token (default PACKLOOP_PLANNER_TOKEN; prefer the variable: a flag "
             "shows in `ps` and the shell history).")(command)
    return click.option(
        "--url", default=None, metavar="URL",
        help="Planner service URL (default PACKLOOP_PLANNER_URL).")(command)


def _client(ctx: click.Context, url: str | None, token: str | None) -> httpx.Client:
    settings = settings_from(ctx)
    secret = token or (settings.planner_token.get_secret_value()
                       if settings.planner_token is not None else None)
    if not secret:
        raise click.ClickException(
            "no planner token: set PACKLOOP_PLANNER_TOKEN or pass --token (create one with "
            "`packloop planners add-token NAME`)"
        )
    from services.http.client import check_service_url, httpx_client
    from services.http.tls import TlsError

    try:
        base = check_service_url(url or settings.planner_url,
                                 "--url" if url else "PACKLOOP_PLANNER_URL")
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        return httpx_client(
            settings,
            base_url=base.rstrip("/"),
            headers={"Authorization": bearer(secret, "--token" if token
                                             else "PACKLOOP_PLANNER_TOKEN")},
            timeout=httpx.Timeout(30.0, connect=5.0),
        )
    except TlsError as exc:
        raise click.ClickException(str(exc)) from None


def _job_path(job_id: str) -> str:
    """A job's URL path, its id one path segment whatever it holds."""
    return f"/v1/plans/{quote(job_id, safe='')}"


def _unreachable(client: httpx.Client, exc: httpx.HTTPError) -> click.ClickException:
    from services.http.tls import handshake_problem

    ctx = click.get_current_context(silent=True)
    ca_file = settings_from(ctx).ca_file if ctx is not None else None
    problem = handshake_problem(exc, str(client.base_url), ca_file)
    if problem is not None:
        return click.ClickException(problem)
    return click.ClickException(
        f"cannot reach the planner service at {client.base_url} ({type(exc).__name__}: "
        f"{exc}); start it with `packloop planner` or set PACKLOOP_PLANNER_URL")


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        resp = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise _unreachable(client, exc) from None
    return _checked(resp, method, path)


#: tries of `plan submit`'s POST (each after the one before timed out, lost its connection
#: or got a 503): safe because every try sends the same Idempotency-Key
SUBMIT_TRIES = 3


def _submit(client: httpx.Client, body: dict[str, Any], key: str) -> httpx.Response:
    """POST /v1/plans, sent again with the same key when the answer is lost (a read timeout,
    a dropped connection) or is a 503: the service hands back the job an earlier try made,
    so a retry never queues the solve twice. A refused connection is not retried (nothing
    was sent; the planner is not running)."""
    content = orjson.dumps(body)
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    for attempt in range(1, SUBMIT_TRIES + 1):
        try:
            resp = client.post("/v1/plans", content=content, headers=headers)
        except (httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout, httpx.ReadError,
                httpx.WriteError, httpx.RemoteProtocolError) as exc:
            if attempt == SUBMIT_TRIES:
                raise _unreachable(client, exc) from None
            wait, why = float(attempt), f"{type(exc).__name__}"
        except httpx.HTTPError as exc:
            raise _unreachable(client, exc) from None
        else:
            if resp.status_code != 503 or attempt == SUBMIT_TRIES:
                return _checked(resp, "POST", "/v1/plans")
            try:
                wait = min(10.0, max(0.5, float(resp.headers.get("Retry-After", "2"))))
            except ValueError:
                wait = 2.0
            why = "HTTP 503"
        click.echo(f"POST /v1/plans: {why}; trying again in {wait:g} s with the same "
                   f"Idempotency-Key ({attempt + 1} of {SUBMIT_TRIES})", err=True)
        time.sleep(wait)
    raise AssertionError("unreachable")  # pragma: no cover


def _checked(resp: httpx.Response, method: str, path: str) -> httpx.Response:
    """``resp``, or the service's error message as a one-line ClickException."""
    if resp.status_code >= 400:
        try:
            body = resp.json()
            message = body.get("message") or body
        except ValueError:
            message = resp.text[:500]
        text = f"{method} {path}: HTTP {resp.status_code}: {message}"
        # the service refused what was sent (a scenario, an option): exit 2 as `plan solve`
        # does for the same file, so a script tells bad input from a service that failed
        raise BadInput(text) if resp.status_code == 422 else click.ClickException(text)
    return resp


def _load(path: str) -> Any:
    """A JSON/YAML file to send as it is (the service validates it), read by the same rules
    as `plan solve` reads it (a key given twice, bytes that are not UTF-8 and syntax errors
    are one line with their place)."""
    from optimizer.scenario import ScenarioError, parse_document

    try:
        return parse_document(Path(path))
    except ScenarioError as exc:
        raise BadInput(str(exc)) from None


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
        click.echo(f"  {progress_line(p.get('incumbent'), p.get('bound'), p.get('gap'))}  "
                   f"{p.get('label') or ''}")
    if job.get("error"):
        click.echo(f"  reason: {job['error']}")
    s = job.get("summary")
    if s and s.get("plan_status") == "frontier":
        click.echo(f"  frontier of {len(s.get('kpis') or {})} points; cheapest "
                   f"{_fmt(s.get('objective'))} CNY")
        for name, k in (s.get("kpis") or {}).items():
            grams = k.get("single_use_grams")
            click.echo(f"  {name:<9} cost {_fmt(k.get('cost_cny'))} CNY  "
                       f"CO2e {_fmt(k.get('co2e_kg'))} kg  single-use "
                       f"{_fmt(None if grams is None else grams / 1000, ',.1f')} kg")
    elif s:
        click.echo(f"  plan {s.get('plan_status')}  objective {_fmt(s.get('objective'))}  "
                   f"gap {'-' if s.get('gap') is None else format(s['gap'], '.4%')}  "
                   f"trips {s.get('trips')}")
        for name, k in (s.get("kpis") or {}).items():
            grams = k.get("single_use_grams")
            click.echo(f"  {name:<14} cost {_fmt(k.get('cost_cny'))} CNY  "
                       f"CO2e {_fmt(k.get('co2e_kg'))} kg  distance {_fmt(k.get('km'), ',.1f')} km"
                       f"  single-use packaging "
                       f"{_fmt(None if grams is None else grams / 1000, ',.1f')} kg")


def _wait(client: httpx.Client, job_id: str, quiet: bool) -> dict[str, Any]:
    last = None
    while True:
        job = _call(client, "GET", _job_path(job_id)).json()
        if not quiet and job["status"] != last:
            click.echo(f"{job_id}: {job['status']}", err=True)
            last = job["status"]
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(1.0)


#: the exit status of `plan submit --wait` and `plan status --wait` for a job that ended
#: failed or cancelled: no plan came of it (2, as `plan solve` exits without a plan)
NO_PLAN_EXIT = 2


def _exit_unless_done(job: dict[str, Any]) -> None:
    """Exit NO_PLAN_EXIT unless the finished ``job`` is done (it failed or was cancelled),
    after it was printed: a script waiting on it learns from the status alone, with --json
    as without."""
    if job["status"] != "done":
        sys.exit(NO_PLAN_EXIT)


@plan.command("submit")
@click.argument("scenario", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--from-state", is_flag=True, help="Plan from the live stream state.")
@click.option("--state-settings", type=click.Path(exists=True, dir_okay=False), default=None,
              help="JSON/YAML with from_state settings (fleet, prices, container_stock…).")
@click.option("--horizon-days", type=int, default=None, help="from_state: days to plan.")
@click.option("--hubs", default=None, help="from_state: comma-separated hub ids.")
@click.option("--time-limit", type=TIME_LIMIT, default=None, metavar="S",
              help="Solver time limit.")
@click.option("--gap", type=GAP, default=None, metavar="G", help="Relative MIP gap.")
@click.option("--name", default=None, help="A name for the job.")
@click.option("--frontier", is_flag=True,
              help="Plan the trade-off frontier (as `plan frontier`) instead of one plan; "
                   "--time-limit and --gap then apply to each point.")
@click.option("--points", type=FRONTIER_POINTS, default=None,
              help="With --frontier: points on each front (default 7).")
@click.option("--front", type=click.Choice(["single_use", "co2e", "both"]), default=None,
              help="With --frontier: which front (default both).")
@click.option("--idempotency-key", "idem_key", default=None, metavar="KEY",
              help="Sent as the Idempotency-Key header (default: a new UUID each run). "
                   "Give your own to make a scheduled submission safe to repeat: the same "
                   "KEY with the same request within 24 h returns the job already made.")
@click.option("--wait", is_flag=True,
              help="Wait until the job is finished; exit 2 if it failed or was cancelled.")
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
@service_options
@click.pass_context
def submit(ctx: click.Context, scenario: str | None, from_state: bool,
           state_settings: str | None, horizon_days: int | None, hubs: str | None,
           time_limit: float | None, gap: float | None, name: str | None, frontier: bool,
           points: int | None, front: str | None, idem_key: str | None, wait: bool,
           as_json: bool, url: str | None, token: str | None) -> None:
    """Submit SCENARIO (JSON/YAML) or --from-state; prints the job id on the last line.

    With --wait, exits 2 when the job ended failed or cancelled (after printing it, with
    --json too).
    """
    if bool(scenario) == from_state:
        raise click.UsageError("give either SCENARIO or --from-state")
    options: dict[str, Any] = {k: v for k, v in (("time_limit_s", time_limit), ("mip_gap", gap),
                                                 ("name", name)) if v is not None}
    if frontier:
        f: dict[str, Any] = {} if points is None else {"points": points}
        if front is not None:
            f["fronts"] = ["single_use", "co2e"] if front == "both" else [front]
        options["frontier"] = f
    elif points is not None or front is not None:
        raise click.UsageError("--points and --front go with --frontier")
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
    with _client(ctx, url, token) as client:
        job = _submit(client, body, idem_key or str(uuid.uuid4())).json()
        if wait:
            job = _wait(client, job["job_id"], as_json)
    if as_json:
        click.echo(orjson.dumps(job).decode())
    else:
        if wait:
            _print_job(job)
        click.echo(job["job_id"])
    if wait:
        _exit_unless_done(job)


@plan.command("status")
@click.argument("job_id", metavar="ID")
@click.option("--wait", is_flag=True,
              help="Wait until the job is finished; exit 2 if it failed or was cancelled.")
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
@service_options
@click.pass_context
def status(ctx: click.Context, job_id: str, wait: bool, as_json: bool, url: str | None,
           token: str | None) -> None:
    """Show a job: queued, running (objective, bound, gap), done (KPIs), failed (why).

    With --wait, exits 2 when the job ended failed or cancelled (as `plan submit --wait`);
    without it, the job is shown whatever its status, exit 0.
    """
    with _client(ctx, url, token) as client:
        job = _wait(client, job_id, as_json) if wait else \
            _call(client, "GET", _job_path(job_id)).json()
    if as_json:
        click.echo(orjson.dumps(job).decode())
    else:
        _print_job(job)
    if wait:
        _exit_unless_done(job)


@plan.command("list")
@click.option("--status", "job_status", default=None,
              type=click.Choice(["queued", "running", "done", "failed", "cancelled"]),
              help="Only jobs in this status.")
@click.option("--limit", type=click.IntRange(1, 500), default=20, show_default=True,
              help="Newest jobs first, at most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print the jobs as JSON.")
@service_options
@click.pass_context
def list_jobs(ctx: click.Context, job_status: str | None, limit: int, as_json: bool,
              url: str | None, token: str | None) -> None:
    """List your jobs and the dispatch jobs, newest first."""
    from services.cli.tokens import aligned

    params: dict[str, Any] = {"limit": limit}
    if job_status:
        params["status"] = job_status
    with _client(ctx, url, token) as client:
        jobs = _call(client, "GET", "/v1/plans", params=params).json()["jobs"]
    if as_json:
        click.echo(orjson.dumps(jobs).decode())
        return
    if not jobs:
        click.echo("no jobs")
        return
    rows = [("ID", "STATUS", "SOURCE", "CREATED", "FINISHED", "NAME")]
    rows += [(j["job_id"], j["status"], j["source"], j["created_at"] or "-",
              j["finished_at"] or "-", j.get("name") or "") for j in jobs]
    for line in aligned(rows):
        click.echo(line)


@plan.command("cancel")
@click.argument("job_id", metavar="ID")
@service_options
@click.pass_context
def cancel(ctx: click.Context, job_id: str, url: str | None, token: str | None) -> None:
    """Cancel a queued or running job (its solve is stopped within a few seconds)."""
    with _client(ctx, url, token) as client:
        job = _call(client, "DELETE", _job_path(job_id)).json()
    click.echo(f"job {job_id} {job.get('status', 'cancelled')}")


@plan.command("fetch")
@click.argument("job_id", metavar="ID")
@click.option("--out", "out_dir", required=True, type=OUT_DIR,
              help="Directory for plan.json, report.html, scenario.json and inputs.json.")
@service_options
@click.pass_context
def fetch(ctx: click.Context, job_id: str, out_dir: str, url: str | None,
          token: str | None) -> None:
    """Download a finished job's plan, report and scenario into DIR.

    scenario.json is the scenario the job planned (for a from_state or dispatch job, the
    one built from the live state), as `plan solve` and `plan submit` read it;
    inputs.json holds the job's options and, for those jobs, the from_state settings and
    the state the scenario was built from.
    """
    out = Path(out_dir)
    with _client(ctx, url, token) as client:
        job = _call(client, "GET", _job_path(job_id)).json()
        if job["status"] == "cancelled":
            raise click.ClickException(f"job {job_id} was cancelled: it has no plan to fetch")
        if job["status"] not in ("done", "failed"):
            raise click.ClickException(f"job {job_id} is {job['status']}: nothing to fetch yet")
        out.mkdir(parents=True, exist_ok=True)
        written = []
        envelope = _call(client, "GET", _job_path(job_id) + "/scenario").json()
        (out / "scenario.json").write_bytes(
            orjson.dumps(envelope.pop("scenario"), option=orjson.OPT_INDENT_2))
        written.append("scenario.json")
        inputs = {"job_id": job_id, **envelope}  # options, source, inputs (the state)
        (out / "inputs.json").write_bytes(orjson.dumps(inputs, option=orjson.OPT_INDENT_2))
        written.append("inputs.json")
        is_frontier = (job.get("summary") or {}).get("plan_status") == "frontier"
        if "result" in job["links"]:
            result = _call(client, "GET", _job_path(job_id) + "/result").json()
            name = "frontier.json" if is_frontier else "plan.json"
            (out / name).write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
            written.append(name)
        if "report" in job["links"]:
            html = _call(client, "GET", _job_path(job_id) + "/report").text
            name = "frontier.html" if is_frontier else "report.html"
            (out / name).write_text(html, encoding="utf-8")
            written.append(name)
    for name in written:
        click.echo(str(out / name))
    if job["status"] == "failed":
        raise click.ClickException(f"job {job_id} failed: {job.get('error')}")
