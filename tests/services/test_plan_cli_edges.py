"""`packloop plan submit|status|fetch` at the edges: the token on the command line or in
the environment, a broken file, and how a job's progress and KPIs read."""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from services.cli import cli
from services.planner import PlannerWorker
from streams.topics import Topics
from tests.services.helpers import TINY, answer_the_cli_with

TOPICS = Topics("t-")
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")

JOB = {"job_id": "plan-0123", "status": "queued", "attempts": 0, "links": {}}


@pytest.fixture
def sent(monkeypatch) -> list[httpx.Request]:
    """The requests the CLI sends, answered with a queued job."""
    requests: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(200, json=JOB)

    answer_the_cli_with(monkeypatch, answer)
    monkeypatch.delenv("PACKLOOP_PLANNER_TOKEN", raising=False)
    return requests


@pytest.mark.parametrize("command", [["status", "plan-0123"],
                                     ["fetch", "plan-0123", "--out", "x"],
                                     ["submit", "--from-state"]])
def test_token_flag_is_sent_and_wins_over_the_variable(sent, monkeypatch, command) -> None:
    """`--token` works on every job command without PACKLOOP_PLANNER_TOKEN, and a token
    given on the command line is the one sent when the variable is set too."""
    r = CliRunner().invoke(cli, ["plan", *command, "--token", "from-flag"])
    assert sent and sent[-1].headers["authorization"] == "Bearer from-flag", r.output
    monkeypatch.setenv("PACKLOOP_PLANNER_TOKEN", "from-env")
    CliRunner().invoke(cli, ["plan", *command, "--token", "from-flag-2"])
    assert sent[-1].headers["authorization"] == "Bearer from-flag-2"
    CliRunner().invoke(cli, ["plan", *command])
    assert sent[-1].headers["authorization"] == "Bearer from-env"


def test_a_token_with_a_trailing_newline_or_cr_is_sent_trimmed(sent, monkeypatch) -> None:
    """`export PACKLOOP_PLANNER_TOKEN="$(cat f)"` or a Windows .env leaves a CR or newline:
    httpx refused the header and the error quoted it, the whole token on the terminal (an
    outside audit). Trimmed, it works; one with a space or a control character inside is
    refused naming the variable, the token not shown."""
    for tail in ("\r", "\n", " "):
        monkeypatch.setenv("PACKLOOP_PLANNER_TOKEN", "plk_abc_s3cret" + tail)
        r = CliRunner().invoke(cli, ["plan", "status", "plan-0123"])
        assert r.exit_code == 0, r.output
        assert sent[-1].headers["authorization"] == "Bearer plk_abc_s3cret"
    sent.clear()
    for inside in ("plk_abc_s3\rcret", "plk_abc s3cret", "plk_abc_s3crét"):
        monkeypatch.setenv("PACKLOOP_PLANNER_TOKEN", inside)
        r = CliRunner().invoke(cli, ["plan", "status", "plan-0123"])
        assert r.exit_code == 1 and not sent
        assert "PACKLOOP_PLANNER_TOKEN holds characters a token cannot have" in r.output
        assert "s3" not in r.output
    r = CliRunner().invoke(cli, ["plan", "status", "plan-0123", "--token", "a b"])
    assert r.exit_code == 1 and "--token holds characters" in r.output


def test_an_error_never_quotes_the_token() -> None:
    from services.http.client import connection_problem
    from services.settings import Settings

    exc = httpx.LocalProtocolError("Illegal header value b'Bearer plk_b23f_6qrkReNX7nc\\r'")
    said = connection_problem(exc, "http://127.0.0.1:1", Settings())
    assert "6qrk" not in said and "Bearer ***" in said
    said = connection_problem(httpx.ConnectError("refused"), "https://ops:Pw9x@planner:8443",
                              Settings())
    assert "Pw9x" not in said and "planner:8443" in said


def test_no_token_names_both_ways_to_give_one(sent) -> None:
    r = CliRunner().invoke(cli, ["plan", "status", "plan-0123"])
    assert r.exit_code == 1 and not sent
    assert "PACKLOOP_PLANNER_TOKEN" in r.output and "--token" in r.output


@pytest.mark.parametrize("command", ["submit", "status", "fetch"])
def test_help_names_the_token_variable_and_flag(command) -> None:
    """A user who only reads `--help` learns where the token comes from."""
    text = CliRunner().invoke(cli, ["plan", command, "--help"]).output
    assert "--token" in text and "PACKLOOP_PLANNER_TOKEN" in text
    assert "PACKLOOP_PLANNER_URL" in text


def test_status_shows_single_use_in_kg_like_plan_solve(monkeypatch) -> None:
    """A finished job's KPIs read with the same units as `plan solve` prints them."""
    done = {**JOB, "status": "done", "elapsed_s": 3.0, "summary": {
        "plan_status": "optimal", "objective": 744.6, "gap": 0.0, "trips": 4,
        "kpis": {"uncoordinated": {"cost_cny": 1767.8, "co2e_kg": 169.2, "km": 201.9,
                                   "trips": 10, "single_use_grams": 32440.0}}}}

    def make(*args: Any, **kwargs: Any) -> httpx.Client:
        kwargs["transport"] = httpx.MockTransport(lambda _r: httpx.Response(200, json=done))
        return real_client(*args, **kwargs)

    real_client = httpx.Client
    monkeypatch.setattr("services.cli.plan.httpx.Client", make)
    r = CliRunner().invoke(cli, ["plan", "status", "plan-0123", "--token", "t"])
    assert r.exit_code == 0, r.output
    assert "single-use packaging 32.4 kg" in r.output
    assert "distance 201.9 km" in r.output


def test_submit_of_a_broken_file_is_one_line_with_its_place(sent, tmp_path) -> None:
    """The same line and column as `plan solve` gives, exit 2, nothing sent."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nhubs: [a, b\nfoo: 1\n")
    r = CliRunner().invoke(cli, ["plan", "submit", str(bad), "--token", "t"])
    assert r.exit_code == 2 and not sent
    assert len(r.output.strip().splitlines()) == 1
    assert f"{bad}:3:4:" in r.output


@pytest.fixture
def service(planner_env) -> tuple[TestClient, PlannerWorker]:
    """The job API on an in-memory Kafka, with a token, and a worker to run its jobs."""
    return planner_env["client"], planner_env["worker"]


def _utc(text: str) -> datetime:
    assert RFC3339.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.mark.slow
def test_job_times_are_rfc3339(service, fake_kafka) -> None:
    """created, started and finished are RFC 3339 (UTC) in the job document, the job list
    and the plan-results message, not Unix floats; they are in order and recent."""
    client, worker = service
    before = datetime.now(UTC).replace(microsecond=0)
    queued = client.post("/v1/plans", json={"scenario": TINY,
                                            "options": {"time_limit_s": 20}}).json()
    assert _utc(queued["created_at"]) >= before and queued["started_at"] is None
    worker.process(queued["job_id"])
    done = client.get(f"/v1/plans/{queued['job_id']}").json()
    assert done["status"] == "done", done["error"]
    created, started, finished = (_utc(done[k]) for k in
                                  ("created_at", "started_at", "finished_at"))
    assert before <= created <= started <= finished <= datetime.now(UTC)
    [row] = client.get("/v1/plans").json()["jobs"]
    assert row["created_at"] == done["created_at"] and row["finished_at"] == done["finished_at"]
    [published] = fake_kafka.records[TOPICS.plan_results]
    assert orjson.loads(published.value)["finished_at"] == done["finished_at"]


def _two_hubs() -> dict[str, Any]:
    """tiny.yaml with a copy of its hub and villages beside it."""
    raw = copy.deepcopy(TINY)
    raw["hubs"].append({**raw["hubs"][0], "hub_id": "H02", "lon": 119.3})
    for key in ("villages", "demand", "outstanding_waste"):
        raw[key] += [{**x, "village_id": x["village_id"].replace("H01", "H02"),
                      **({"hub_id": "H02", "lon": x["lon"] + 0.1} if key == "villages" else {})}
                     for x in raw[key]]
    return raw


@pytest.mark.slow
def test_job_progress_is_the_county_as_it_stands(service) -> None:
    """A job's progress carries the county's objective and bound as they stand: at the end
    the plan's own (its summary), not a running sum over finished hubs with no bound."""
    client, worker = service
    job = client.post("/v1/plans", json={"scenario": _two_hubs(),
                                         "options": {"time_limit_s": 60}}).json()
    worker.process(job["job_id"])
    done = client.get(f"/v1/plans/{job['job_id']}").json()
    assert done["status"] == "done", done["error"]
    progress, summary = done["progress"], done["summary"]
    assert progress["incumbent"] == pytest.approx(summary["objective"])
    assert progress["bound"] == pytest.approx(summary["bound"])
    assert progress["label"] == "hub 2/2 done"


def test_status_of_a_running_job_says_what_is_not_known_yet(monkeypatch) -> None:
    """Before every hub group has a plan the county's objective is not known: `plan status`
    shows '-' and how many groups are planned, never None, nan or inf."""
    running = {**JOB, "status": "running", "elapsed_s": 4.2, "progress": {
        "incumbent": None, "bound": None, "gap": None, "elapsed_s": 4.0,
        "label": "uncoordinated:H01 (1/3 hub groups planned)"}}
    real_client = httpx.Client

    def make(*args: Any, **kwargs: Any) -> httpx.Client:
        kwargs["transport"] = httpx.MockTransport(lambda _r: httpx.Response(200, json=running))
        return real_client(*args, **kwargs)

    monkeypatch.setattr("services.cli.plan.httpx.Client", make)
    r = CliRunner().invoke(cli, ["plan", "status", "plan-0123", "--token", "t"])
    assert r.exit_code == 0, r.output
    line = r.output.splitlines()[1]
    assert re.fullmatch(r" +objective +- +bound +- +gap +- +uncoordinated:H01 \(1/3 hub "
                        r"groups planned\)", line), line


def test_submit_frontier_sends_its_options_and_points_need_it(sent, tmp_path) -> None:
    """`--frontier --points 5 --front co2e` asks the service for a frontier job of 5 points
    on the CO2e front; `--points` without `--frontier` is a usage error (exit 2)."""
    import json as _json

    scenario = tmp_path / "s.json"
    scenario.write_text('{"name": "x"}')
    r = CliRunner().invoke(cli, ["plan", "submit", str(scenario), "--frontier", "--points", "5",
                                 "--front", "co2e", "--time-limit", "30", "--token", "t"])
    assert r.exit_code == 0, r.output
    body = _json.loads(sent[-1].content)
    assert body["options"] == {"time_limit_s": 30.0,
                               "frontier": {"points": 5, "fronts": ["co2e"]}}
    r = CliRunner().invoke(cli, ["plan", "submit", str(scenario), "--points", "5",
                                 "--token", "t"])
    assert r.exit_code == 2 and "--frontier" in r.output


def test_plan_submit_reads_files_by_plan_solves_rules(tmp_path):
    """`plan submit` read YAML with PyYAML's last-key-wins and gave a traceback on bytes
    that are not UTF-8, where `plan solve` refuses both with their place."""
    import click

    from services.cli.plan import _load

    dup = tmp_path / "s.yaml"
    dup.write_text("name: a\nname: b\n")
    with pytest.raises(click.ClickException, match="given twice"):
        _load(str(dup))
    bad = tmp_path / "t.yaml"
    bad.write_bytes(b"name: \xff\n")
    with pytest.raises(click.ClickException, match="not UTF-8"):
        _load(str(bad))


@pytest.mark.parametrize("url", ["http://host:abc", "http://[::1", "host:8080", "ftp://x"])
@pytest.mark.parametrize("command", [("plan", "status", "j1"), ("plan", "list"),
                                     ("plan", "cancel", "j1"),
                                     ("dispatch", "show", "H01", "--date", "2026-12-08")])
def test_a_malformed_service_url_is_one_line_naming_the_setting(monkeypatch, url,
                                                                 command) -> None:
    """`http://host:abc` ended in httpx.InvalidURL's traceback; `host:8080` in "unsupported
    protocol 'host://'"."""
    monkeypatch.setenv("PACKLOOP_PLANNER_URL", url)
    monkeypatch.setenv("PACKLOOP_GATEWAY_URL", url)
    monkeypatch.setenv("PACKLOOP_PLANNER_TOKEN", "t")
    monkeypatch.setenv("PACKLOOP_HUB_TOKEN", "t")
    r = CliRunner().invoke(cli, list(command))
    assert r.exit_code == 1 and isinstance(r.exception, SystemExit), r.output
    [line] = r.output.strip().splitlines()
    setting = "PACKLOOP_GATEWAY_URL" if command[0] == "dispatch" else "PACKLOOP_PLANNER_URL"
    assert line.startswith(f"Error: {setting}={url!r} is not a valid URL"), line
    assert "Traceback" not in r.output


def test_a_scenario_the_service_refuses_exits_2_as_plan_solve_does(monkeypatch, tmp_path):
    """`plan submit` of a file the service refuses (422) exited 1, where `plan solve` of
    the same file exits 2: a script could not tell bad input from a failed service."""
    real_client = httpx.Client
    answers = {"status": 422}

    def make(*args: Any, **kwargs: Any) -> httpx.Client:
        kwargs["transport"] = httpx.MockTransport(lambda request: httpx.Response(
            answers["status"], json={"error": "invalid_scenario",
                                     "message": "$: top level must be a mapping"}))
        return real_client(*args, **kwargs)

    monkeypatch.setattr("services.cli.plan.httpx.Client", make)
    scenario = tmp_path / "list.json"
    scenario.write_text("[1, 2]")
    solved = CliRunner().invoke(cli, ["plan", "solve", str(scenario)])
    r = CliRunner().invoke(cli, ["plan", "submit", str(scenario), "--token", "t"])
    assert solved.exit_code == 2 and r.exit_code == 2, (solved.output, r.output)
    assert "top level must be a mapping" in r.output and "HTTP 422" in r.output
    answers["status"] = 500  # the service failing is not the input's fault
    r = CliRunner().invoke(cli, ["plan", "submit", str(scenario), "--token", "t"])
    assert r.exit_code == 1, r.output
