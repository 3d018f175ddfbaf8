"""Flags out of their range are usage errors naming the option (exit 2) before anything
starts: ports, the simulation's days, scale and speed, the planner's workers; a job that
ended without a plan exits 2 whether printed as JSON or not; an unknown hub is a usage
error. Nothing here starts a service: what would start one is replaced by a stand-in that
fails the test."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from typing import Any

import click
import httpx
import orjson
import pytest
from click.testing import CliRunner

from services.cli import cli
from tests.services.helpers import REPO, answer_the_cli_with


@pytest.fixture(autouse=True)
def signal_handlers() -> Iterator[None]:
    """`broker` and `demo` set SIGINT and SIGTERM handlers when they run: put them back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _never(what: str) -> Any:
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError(f"{what} was started")

    return fail


@pytest.fixture
def nothing_starts(monkeypatch) -> None:
    """Whatever a command would start or connect to fails the test instead."""
    monkeypatch.setattr("services.cli.serve.check_kafka", _never("Kafka (the check)"))
    monkeypatch.setattr("services.cli.worker.build_worker", _never("the stream worker"))
    monkeypatch.setattr("streams.create_topics", _never("Kafka (topics)"))
    monkeypatch.setattr("services.broker.EmbeddedBroker.start", _never("the embedded broker"))
    monkeypatch.setattr("services.simulation.run.run_simulate", _never("the simulation"))
    monkeypatch.setattr("services.demo.run_demo", _never("the demo"))


def _usage_error(args: list[str], option: str, env: dict[str, str] | None = None) -> None:
    r = CliRunner().invoke(cli, args, env=env)
    assert r.exit_code == 2, (r.output, r.exception)
    assert f"Invalid value for '{option}'" in r.output or \
        f"Invalid value for {option}" in r.output, r.output
    assert "Traceback" not in r.output


# -- 1. ports -------------------------------------------------------------------------------


@pytest.mark.parametrize("args, option", [
    (["gateway", "--port", "99999"], "--port"),
    (["gateway", "--port", "0"], "--port"),
    (["planner", "--port", "-5"], "--port"),
    (["planner", "--port", "65536"], "--port"),
    (["worker", "--web-port", "99999"], "--web-port"),
    (["worker", "--web-port", "-1"], "--web-port"),
    (["broker", "--port", "99999"], "--port"),
    (["broker", "--port", "-1"], "--port"),
])
def test_a_port_out_of_range_is_a_usage_error(nothing_starts, args, option) -> None:
    """Before: OverflowError "bind(): port must be 0-65535" with a traceback, exit 1 (the
    broker: after waiting 15 s for a broker that could not start)."""
    _usage_error(args, option)


@pytest.mark.parametrize("args, variable, choose", [
    (["gateway"], "PACKLOOP_GATEWAY_PORT", "--port or PACKLOOP_GATEWAY_PORT"),
    (["planner"], "PACKLOOP_PLANNER_PORT", "--port or PACKLOOP_PLANNER_PORT"),
    (["worker"], "PACKLOOP_WEB_PORT", "--web-port or PACKLOOP_WEB_PORT"),
])
def test_a_port_variable_out_of_range_is_one_line(nothing_starts, args, variable,
                                                  choose) -> None:
    """The variable is not checked by click: check_listen_port says it in one line (before:
    the same OverflowError traceback)."""
    r = CliRunner().invoke(cli, args, env={variable: "99999"})
    assert r.exit_code == 1, r.output
    assert isinstance(r.exception, SystemExit), r.exception
    assert "port 99999 on" in r.output and "is not a TCP port (1-65535)" in r.output
    assert choose in r.output


@pytest.mark.parametrize("args, port", [(["gateway", "--port", "65535"], 65535),
                                        (["planner", "--port", "1"], 1),
                                        (["worker", "--web-port", "65535"], 65535)])
def test_ports_in_range_are_still_taken(monkeypatch, args, port) -> None:
    """The range refuses nothing usable: the port given is the one checked."""
    checked: list[int] = []

    def check(host: str, given: int, *_args: Any) -> None:
        checked.append(given)
        raise click.ClickException("stopped at the port check (test)")

    monkeypatch.setattr("services.cli.serve.check_listen_port", check)
    monkeypatch.setattr("services.cli.worker.check_listen_port", check)
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1 and "stopped at the port check (test)" in r.output, r.output
    assert checked == [port]


# -- 2. simulate and demo ---------------------------------------------------------------------


@pytest.mark.parametrize("args, option", [
    (["--days", "nan", "--out", "x.jsonl"], "--days"),
    (["--days", "inf"], "--days"),
    (["--days", "1e9"], "--days"),
    (["--days", "-1"], "--days"),
    (["--days", "0"], "--days"),
    (["--days", "3661"], "--days"),
    (["--days", "0.01", "--speed", "-1"], "--speed"),
    (["--speed", "nan"], "--speed"),
    (["--speed", "inf"], "--speed"),
    (["--scale", "nan"], "--scale"),
    (["--scale", "1e308"], "--scale"),
    (["--scale", "-1"], "--scale"),
    (["--scale", "0"], "--scale"),
    (["--start", "9999-12-30", "--days", "3"], "--start"),
    (["--start", "0001-01-01", "--days", "1"], "--start"),
])
def test_simulate_refuses_what_it_cannot_simulate(nothing_starts, tmp_path, monkeypatch,
                                                  args, option) -> None:
    """Before: ValueError or OverflowError tracebacks, hangs (negative speed, nan or huge
    scale), or exit 0 with nonsense (negative days or scale)."""
    monkeypatch.chdir(tmp_path)
    _usage_error(["simulate", *args], option)
    assert not (tmp_path / "x.jsonl").exists()


def test_simulate_takes_its_defaults_and_the_ends_of_its_ranges(monkeypatch) -> None:
    calls: list[dict[str, Any]] = []

    def run(settings: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs)
        return {"events": 0}

    monkeypatch.setattr("services.simulation.run.run_simulate", run)
    for args in ([], ["--days", "3660", "--scale", "100", "--speed", "0"],
                 ["--days", "0.01", "--scale", "0.001", "--speed", "3600"]):
        r = CliRunner().invoke(cli, ["simulate", "--no-progress", *args])
        assert r.exit_code == 0, r.output
    assert [(c["days"], c["scale"], c["speed"]) for c in calls] == [
        (7.0, 1.0, 0.0), (3660.0, 100.0, 0.0), (0.01, 0.001, 3600.0)]


@pytest.mark.parametrize("args, option", [
    (["--days", "nan"], "--days"),
    (["--days", "-1"], "--days"),
    (["--days", "0"], "--days"),
    (["--days", "1e9"], "--days"),
    (["--scale", "0"], "--scale"),
    (["--scale", "nan"], "--scale"),
    (["--scale", "1e308"], "--scale"),
    (["--plan-time-limit", "nan"], "--plan-time-limit"),
    (["--plan-time-limit", "0"], "--plan-time-limit"),
    (["--decision-time-limit", "nan"], "--decision-time-limit"),
    (["--decision-time-limit", "-1"], "--decision-time-limit"),
    (["--decision-time-limit", "inf"], "--decision-time-limit"),
    (["--plan-hubs", "0"], "--plan-hubs"),
    (["--plan-hubs", "-1"], "--plan-hubs"),
])
def test_demo_refuses_what_it_cannot_run_before_starting_anything(nothing_starts, tmp_path,
                                                                  args, option) -> None:
    """Before: a ValueError traceback (nan), or the broker and the worker started and the
    demo failed late (days 0 or below, scale 0)."""
    _usage_error(["demo", "--out", str(tmp_path / "out"), *args], option)


def test_demo_takes_its_defaults(monkeypatch, tmp_path) -> None:
    options: list[Any] = []
    monkeypatch.setattr("services.demo.run_demo",
                        lambda o, settings, console=None: options.append(o))
    r = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert (options[0].days, options[0].scale) == (7.0, 1.0)


# -- 3. planner --workers -------------------------------------------------------------------


def test_planner_workers_below_zero_is_a_usage_error(nothing_starts) -> None:
    """Before: `--workers -3` was taken and the planner served with no worker."""
    _usage_error(["planner", "--workers", "-3"], "--workers")


def test_planner_api_without_workers_warns_that_jobs_wait(monkeypatch) -> None:
    """0 workers with the API is a front for workers elsewhere (same group): allowed, but
    said on stderr (before: silence, and jobs queued that nobody solved)."""
    monkeypatch.setattr("services.cli.serve.check_listen_port", lambda *a, **k: None)

    def stop(settings: Any) -> None:
        raise click.ClickException("stopped before Kafka (test)")

    monkeypatch.setattr("services.cli.serve.check_kafka", stop)
    r = CliRunner().invoke(cli, ["planner", "--workers", "0"])
    assert r.exit_code == 1 and "stopped before Kafka (test)" in r.stderr, r.output
    assert "--workers 0" in r.stderr and "packloop planner --no-api" in r.stderr
    assert "queued" in r.stderr and r.stdout == ""
    one = CliRunner().invoke(cli, ["planner", "--workers", "1"])
    assert "--workers 0" not in one.stderr


# -- 4. exit status of a job that ended without a plan ---------------------------------------


@pytest.fixture
def job_ends(monkeypatch) -> dict[str, str]:
    """The planner service, answering: POST a queued job, GET the job in ``["status"]``."""
    ends = {"status": "failed"}

    def answer(request: httpx.Request) -> httpx.Response:
        job = {"job_id": "plan-1", "status": "queued", "attempts": 1, "links": {}}
        if request.method == "GET":
            job["status"] = ends["status"]
            if ends["status"] == "failed":
                job["error"] = "the solver ran out of memory"
        return httpx.Response(200, json=job)

    answer_the_cli_with(monkeypatch, answer)
    monkeypatch.setenv("PACKLOOP_PLANNER_TOKEN", "t")
    return ends


WAITING = [["plan", "submit", "--from-state", "--wait"],
           ["plan", "submit", "--from-state", "--wait", "--json"],
           ["plan", "status", "plan-1", "--wait"],
           ["plan", "status", "plan-1", "--wait", "--json"]]


@pytest.mark.parametrize("ended", ["failed", "cancelled"])
@pytest.mark.parametrize("args", WAITING, ids=" ".join)
def test_a_job_that_ended_without_a_plan_exits_2(job_ends, args, ended) -> None:
    """Before: `submit --wait --json` and `status --wait` (with or without --json) exited 0
    for a failed job; only `submit --wait` exited 2."""
    job_ends["status"] = ended
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2, r.output
    if "--json" in args:
        assert orjson.loads(r.stdout)["status"] == ended  # printed before exiting
    else:
        assert f"plan-1  {ended}" in r.stdout


@pytest.mark.parametrize("args", WAITING, ids=" ".join)
def test_a_done_job_exits_0(job_ends, args) -> None:
    job_ends["status"] = "done"
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output


def test_status_without_wait_shows_a_failed_job_with_exit_0(job_ends) -> None:
    """Without --wait, `status` shows the job as it stands, whatever that is (its --help)."""
    r = CliRunner().invoke(cli, ["plan", "status", "plan-1"])
    assert r.exit_code == 0 and "plan-1  failed" in r.output
    text = CliRunner().invoke(cli, ["plan", "status", "--help"]).output
    assert "exits 2 when the job ended failed or cancelled" in " ".join(text.split())


# -- 5. an unknown hub ------------------------------------------------------------------------


def test_add_token_for_an_unknown_hub_is_a_usage_error() -> None:
    """Before: exit 1, while an empty HUB was exit 2."""
    r = CliRunner().invoke(cli, ["hubs", "add-token", "NOSUCH"])
    assert r.exit_code == 2, r.output
    assert "Invalid value for HUB: unknown hub 'NOSUCH'" in r.output
    empty = CliRunner().invoke(cli, ["hubs", "add-token", ""])
    assert empty.exit_code == 2


def test_list_tokens_of_an_unknown_hub_is_a_usage_error() -> None:
    """Before: "no hub tokens", exit 0, for a mistyped hub. A known hub without tokens is
    still "no hub tokens"."""
    r = CliRunner().invoke(cli, ["hubs", "list-tokens", "--owner", "NOSUCH"])
    assert r.exit_code == 2, r.output
    assert "Invalid value for --owner: unknown hub 'NOSUCH'" in r.output
    known = CliRunner().invoke(cli, ["hubs", "list-tokens", "--owner", "H01"])
    assert known.exit_code == 0 and known.output.strip() == "no hub tokens"
    planners = CliRunner().invoke(cli, ["planners", "list-tokens", "--owner", "anyone"])
    assert planners.exit_code == 0 and planners.output.strip() == "no planner tokens"


# -- 6. frontier points ----------------------------------------------------------------------


def test_the_clis_frontier_points_are_the_apis() -> None:
    """One limit: the CLI's range is the planner API's (FrontierOptions.points)."""
    from annotated_types import Ge, Le

    from services.cli.plan import FRONTIER_POINTS
    from services.planner.app import FrontierOptions

    meta = FrontierOptions.model_fields["points"].metadata
    api = (next(m.ge for m in meta if isinstance(m, Ge)), next(m.le for m in meta
                                                               if isinstance(m, Le)))
    assert (FRONTIER_POINTS.min, FRONTIER_POINTS.max) == api


def test_submit_frontier_points_above_the_limit_is_a_usage_error(job_ends) -> None:
    _usage_error(["plan", "submit", "--from-state", "--frontier", "--points", "26"],
                 "--points")


def test_plan_frontier_points_above_the_apis_limit_is_a_usage_error(monkeypatch) -> None:
    """Before: `plan frontier --points 1000` solved 1000 points per front locally, while the
    API and `plan submit --frontier` refuse more than 25."""
    monkeypatch.setattr("optimizer.frontier.solve_frontier", _never("the frontier's solve"))
    _usage_error(["plan", "frontier", str(REPO / "examples/scenarios/tiny.yaml"),
                  "--points", "26"], "--points")
