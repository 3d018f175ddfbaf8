"""`packloop demo`: the whole loop on realistic data, on one machine, in a few minutes.

It starts the embedded broker, creates the topics, starts a stream worker (with its
state and ``/metrics`` endpoint), simulates the sample county faster than real time
(answering the worker's pickup requests with collections), waits until the worker
has applied every event, plans the week ahead from the live state exactly as the
planner service does, and writes ``demo-output/report.html``.

Everything it starts it stops again, also on Ctrl-C: the broker and the worker run
in their own process groups and are stopped in ``finally`` clauses.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from rich.console import Console

from optimizer.result import plan_caveats
from services.broker import DIE_WITH_PARENT, EmbeddedBroker, free_port
from services.settings import Settings
from streams import Network, create_topics, load_network


@dataclass
class DemoOptions:
    days: float = 7.0
    scale: float = 1.0
    seed: int = 1
    plan_horizon_days: int = 7
    #: 90 s: at 40 s 16 of the county's 20 hub groups had no time for their joint solve, so
    #: the demo's "joint plan" was mostly the sequential one (said since session 22)
    plan_time_limit_s: float = 90.0
    plan_hubs: int | None = None  # plan only the busiest N townships (None: all)
    out_dir: Path = Path("demo-output")
    keep_running: bool = False
    worker_timeout_s: float = 120.0
    #: the busiest township's single-use front, a what-if and its run sheet for tomorrow
    decisions: bool = True
    decision_time_limit_s: float = 8.0


@dataclass
class DemoResult:
    figures: dict[str, Any] = field(default_factory=dict)
    report: Path | None = None
    status: dict[str, Any] = field(default_factory=dict)
    plan: dict[str, Any] = field(default_factory=dict)
    simulation: dict[str, Any] = field(default_factory=dict)
    decisions: Any = None


class DemoError(RuntimeError):
    """The demo cannot go on; the message says why and where to look (one line)."""


class WorkerProcess:
    """`packloop worker` in its own process group, stopped on exit whatever happens."""

    def __init__(self, settings: Settings, web_port: int, log_path: Path) -> None:
        self.settings = settings
        self.web_port = web_port
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def __enter__(self) -> WorkerProcess:
        env = {
            **os.environ,
            "PACKLOOP_KAFKA_BOOTSTRAP": self.settings.kafka_bootstrap,
            "PACKLOOP_WEB_PORT": str(self.web_port),
            "PACKLOOP_WEB_HOST": "127.0.0.1",
            "PACKLOOP_TOPIC_PREFIX": self.settings.topic_prefix,
            "PACKLOOP_REPLICATION_FACTOR": str(self.settings.replication_factor),
        }
        if self.settings.network:
            env["PACKLOOP_NETWORK"] = str(self.settings.network)
        if self.settings.ledger_db_url:
            env["PACKLOOP_LEDGER_DB_URL"] = self.settings.ledger_db_url
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "worker", "--loglevel", "warning"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            preexec_fn=DIE_WITH_PARENT,  # noqa: PLW1509 - a preloaded libc call only
        )
        return self

    def wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                raise DemoError(f"the worker exited; see {self.log_path}")
            try:
                resp = httpx.get(f"{self.url}/status", timeout=2)
                if resp.status_code == 200 and "error" not in resp.json():
                    return
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.3)
        raise DemoError(f"the worker did not become ready in {timeout_s:.0f} s")

    def __exit__(self, *exc: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=5)


def wait_for_worker(url: str, expected_events: int, timeout_s: float) -> dict[str, Any]:
    """Poll the worker until every produced event is accounted for (applied, duplicate
    or dead-lettered); the broker's end offsets are not trusted for this."""
    deadline = time.monotonic() + timeout_s
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        try:
            status = httpx.get(f"{url}/status", timeout=10).json()
        except (httpx.HTTPError, ValueError):
            time.sleep(0.5)
            continue
        events = status.get("events", {})
        seen = events.get("applied", 0) + events.get("duplicates", 0) + events.get(
            "dead_lettered", 0
        )
        if seen >= expected_events:
            return status
        time.sleep(0.5)
    raise DemoError(
        f"the worker had not caught up after {timeout_s:.0f} s "
        f"({status.get('events')} of {expected_events} events)"
    )


def stream_figures(status: dict[str, Any]) -> dict[str, Any]:
    """The officer's headline numbers, straight from the worker's state."""
    generated = recovered = outstanding = 0
    villages_with_pickups = 0
    for village in status.get("villages", {}).values():
        generated += sum(village.get("generated_grams", {}).values())
        recovered += sum(village.get("recovered_grams", {}).values())
        outstanding += sum(village.get("outstanding_grams", {}).values())
        if village.get("pickups_requested") or village.get("open_pickup"):
            villages_with_pickups += 1
    containers = {"issued": 0, "returned": 0, "in_circulation": 0, "lost": 0, "damaged": 0}
    for hub in status.get("hubs", {}).values():
        for figures in hub.get("containers", {}).values():
            for key in containers:
                containers[key] += figures.get(key, 0)
    pickups = status.get("pickups", {})
    return {
        "generated_grams": generated,
        "recovered_grams": recovered,
        "outstanding_grams": outstanding,
        "recovery_ratio": recovered / generated if generated else 0.0,
        "pickups_requested": pickups.get("requested", 0),
        "pickups_open": pickups.get("open", 0),
        "pickups_served": pickups.get("completed", pickups.get("requested", 0)
                                      - pickups.get("open", 0)),
        "pickups_overdue": pickups.get("overdue", 0),
        "containers": containers,
        "events": status.get("events", {}),
    }


def _busiest_hubs(status: dict[str, Any], network: Network, n: int) -> list[str]:
    per_hub: dict[str, int] = {}
    for vid, village in status.get("villages", {}).items():
        hub = network.villages[vid].hub_id if vid in network.villages else None
        if hub:
            per_hub[hub] = per_hub.get(hub, 0) + sum(village.get("generated_grams", {}).values())
    return sorted(per_hub, key=lambda h: -per_hub[h])[:n]


def run_demo(options: DemoOptions, settings: Settings, console: Console | None = None
             ) -> DemoResult:
    from services.http.kafka_io import LiveKafkaIO
    from services.planner.from_state import FromState, build_scenario
    from services.simulation.run import run_simulate

    console = console or Console(stderr=True)
    network = load_network(settings.network)
    out_dir = options.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    # a ledger of the demo's own, new each run: its synthetic county must not land in the
    # officer's records (the data folder's ledger), and a second demo, whose simulation
    # has the same seed and so the same event ids, found them all applied already there
    # and counted nothing
    ledger = (out_dir / "demo-ledger.db").resolve()
    if settings.ledger_db_url and str(ledger) in settings.ledger_db_url:
        raise DemoError(f"--out {out_dir} holds PACKLOOP_LEDGER_DB_URL's ledger: the demo "
                        "writes a ledger of its own there; give another folder")
    for old in (ledger, ledger.with_name(ledger.name + "-wal"),
                ledger.with_name(ledger.name + "-shm")):
        old.unlink(missing_ok=True)
    settings = settings.model_copy(update={"ledger_db_url": f"sqlite:///{ledger}"})
    result = DemoResult()
    t0 = time.monotonic()
    with EmbeddedBroker(log_path=out_dir / "broker.log") as broker:
        # one broker: one copy, whatever PACKLOOP_REPLICATION_FACTOR a shell exported for a
        # cluster (3 failed to create the topics)
        settings = settings.model_copy(update={"kafka_bootstrap": broker.bootstrap,
                                               "replication_factor": 1})
        kafka, topics = settings.kafka(), settings.topics()
        create_topics(kafka, topics, settings.partitions, settings.replication_factor)
        console.print(f"[bold]1/4[/] embedded broker on {broker.bootstrap}; topics created")
        with WorkerProcess(settings, free_port(), out_dir / "worker.log") as worker:
            worker.wait_ready(options.worker_timeout_s)
            console.print(f"[bold]2/4[/] stream worker up: state and metrics on {worker.url}")
            start = date.today() - timedelta(days=int(round(options.days)))
            result.simulation = run_simulate(
                settings, days=options.days, scale=options.scale, seed=options.seed,
                start_date=start, console=console, network=network,
            )
            console.print(
                f"[bold]3/4[/] simulated {options.days:g} days of {network.county} at scale "
                f"{options.scale:g}: {result.simulation['accepted']:,} events "
                f"in {result.simulation['seconds']:.0f} s"
            )
            if result.simulation.get("failed"):
                console.print(f"[bold red]warning[/] {result.simulation['failed']:,} events "
                              "could not be written to the broker; the figures below miss them")
            status = wait_for_worker(worker.url, result.simulation["accepted"],
                                     options.worker_timeout_s)
            if not (status.get("events") or {}).get("applied"):
                raise DemoError(
                    f"the stream worker counted none of the {result.simulation['accepted']:,} "
                    f"simulated events (events {status.get('events')}; its log: "
                    f"{out_dir / 'worker.log'})")
            result.status = status
            result.figures = stream_figures(status)
            request = FromState(horizon_days=options.plan_horizon_days,
                                hubs=_busiest_hubs(status, network, options.plan_hubs)
                                if options.plan_hubs else None,
                                name="week ahead from the live state (demo)")
            scenario_data, inputs = build_scenario(request, network, LiveKafkaIO(kafka), topics,
                                                   worker.url)
            result.plan = _plan(scenario_data, options, console)
            if options.decisions and result.plan["json"].get("trips"):
                from services.demo_decisions import decide

                result.decisions = decide(
                    scenario_data, result.plan["json"], _busiest_hubs(status, network, 1)[0],
                    timezone=str(network.timezone), out_dir=out_dir,
                    time_limit_s=options.decision_time_limit_s, console=console)
            result.report = _report(result, scenario_data, inputs, network, options)
            console.print(f"[bold]4/4[/] planned the week ahead; report: {result.report}")
            _print_figures(result, console, time.monotonic() - t0)
            if options.keep_running:
                _keep_running(broker.bootstrap, worker.url, settings.ledger_db_url or "",
                              console)
    return result


def _plan(scenario_data: dict[str, Any], options: DemoOptions, console: Console
          ) -> dict[str, Any]:
    import optimizer

    scenario = optimizer.load_scenario(scenario_data)
    console.print(f"      solving the plan (time limit {options.plan_time_limit_s:.0f} s) …")
    plan = optimizer.solve(scenario, time_limit_s=options.plan_time_limit_s)
    return {"result": plan, "scenario": scenario, "json": plan.to_json_dict()}


def _report(result: DemoResult, scenario_data: dict[str, Any], inputs: dict[str, Any],
            network: Network, options: DemoOptions) -> Path:
    from services.reports.demo import write_demo_report

    return write_demo_report(
        options.out_dir / "report.html",
        network=network,
        status=result.status,
        figures=result.figures,
        simulation=result.simulation,
        plan=result.plan,
        plan_inputs=inputs,
        decisions=result.decisions,
    )


def _print_figures(result: DemoResult, console: Console, elapsed_s: float) -> None:
    f = result.figures
    plan = result.plan.get("json", {})
    savings = {name: b.get("reduction_by_joint") for name, b in plan.get("baselines", {}).items()}
    lines = {
        "waste generated": f"{f['generated_grams'] / 1000:,.1f} kg",
        "waste recovered": f"{f['recovered_grams'] / 1000:,.1f} kg",
        "recovery ratio": f"{f['recovery_ratio']:.1%}",
        "pickups requested / closed": f"{f['pickups_requested']} / {f['pickups_served']}",
        "containers in circulation": f"{f['containers']['in_circulation']:,}",
    }
    for name, value in _plan_savings(plan).items():
        lines[name] = value
    for name, value in lines.items():
        console.print(f"  {name:<32} {value}", soft_wrap=True)  # one line each, even in a log
    caveats = plan_caveats(plan) if plan else []
    for caveat in caveats:  # a 0.0 % gain of a plan that never ran its joint solve, unsaid
        console.print(f"  [yellow]plan: {caveat}[/yellow] (--plan-time-limit)", soft_wrap=True)
    console.print(f"done in {elapsed_s:.0f} s")
    summary = {"figures": f, "plan": {k: plan.get(k) for k in ("status", "objective", "gap")},
               "savings": savings, "caveats": caveats, "report": str(result.report)}
    print(orjson.dumps(summary).decode())


def _change(cut: float | None) -> str:
    """A reduction by the joint plan as the change it makes: + 0.0, no "-0.0 %"; None (a
    baseline figure of 0), "from none"."""
    return "from none" if cut is None else f"{-cut + 0.0:+.1%}"


def _plan_savings(plan: dict[str, Any]) -> dict[str, str]:
    if not plan:
        return {}
    out: dict[str, str] = {}
    for name in ("sequential", "uncoordinated"):
        cut = plan.get("baselines", {}).get(name, {}).get("reduction_by_joint")
        if cut:
            out[f"joint plan vs {name}"] = (
                f"cost {_change(cut['cost'])}, km {_change(cut['km'])}, "
                f"CO2e {_change(cut['co2e'])}, single-use {_change(cut['single_use_grams'])}"
            )
    return out


def _keep_running(bootstrap: str, worker_url: str, ledger_url: str, console: Console
                  ) -> None:
    console.print("[bold]running[/] until Ctrl-C:")
    console.print(f"  Kafka bootstrap   {bootstrap}")
    console.print(f"  worker state      {worker_url}/status  {worker_url}/villages?hub=H01")
    console.print(f"  Prometheus        {worker_url}/metrics")
    console.print(f"  officer's month   PACKLOOP_LEDGER_DB_URL={ledger_url} "
                  f"PACKLOOP_WORKER_URL={worker_url} packloop report officer --month "
                  f"{date.today():%Y-%m}  (the demo's own ledger)", soft_wrap=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopping …")
