"""Who sees and cancels which plan job, and what the planner refuses at its door: dispatch
dates outside the window, bodies that are not JSON, options that are not an object, and
planner tokens without an owner.

Ownership is by the token's owner name: a planner reads, lists and cancels the jobs it
submitted; another planner's job is a 404, like a job that does not exist. Dispatch jobs
are the county's: every planner reads and lists them; the planner who asked for one
cancels it, and every planner cancels the schedule's own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from services.auth.tokens import TokenStore
from services.http.kafka_io import Record
from services.planner import JobStore, PlannerConfig, create_app
from services.planner.daily import SCHEDULER, DispatchSchedule, dispatch_window, submit
from services.planner.store import CANCELLED, DONE, QUEUED
from streams.kafka import KafkaConnection
from streams.topics import Topics
from tests.services.helpers import NETWORK, TINY, FakeKafkaIO, cli_to_app

TOPICS = Topics("acc-")
HORIZON_DAYS = 2


def stream_worker(request: httpx.Request) -> httpx.Response:
    """A stream worker whose only news is 20 kg of waste at H01-V007."""
    if request.url.path == "/status":
        return httpx.Response(200, json={"events": {"applied": 1}, "hubs": {}, "villages": {
            "H01-V007": {"outstanding_grams": {"cardboard": 20000}}}})
    return httpx.Response(200, json={"pickups": []})


def local_today() -> date:
    return datetime.now(NETWORK.timezone).date()


@pytest.fixture
def env(fake_kafka: FakeKafkaIO, tmp_path) -> Iterator[dict[str, Any]]:
    tokens = TokenStore(f"sqlite:///{tmp_path}/tokens.db")
    jobs = JobStore(f"sqlite:///{tmp_path}/plans.db")
    _, ops = tokens.add("planner", "ops")
    _, other = tokens.add("planner", "other")
    config = PlannerConfig(kafka=KafkaConnection(), topics=TOPICS, network=NETWORK,
                           tokens=tokens, jobs=jobs, kafka_io=fake_kafka,
                           worker_transport=httpx.MockTransport(stream_worker),
                           dispatch=DispatchSchedule(horizon_days=HORIZON_DAYS,
                                                     time_limit_s=30),
                           max_request_bytes=64 * 1024)
    with TestClient(create_app(config)) as ops_client, \
            TestClient(create_app(config)) as other_client:
        ops_client.headers["Authorization"] = f"Bearer {ops}"
        other_client.headers["Authorization"] = f"Bearer {other}"
        yield {"ops": ops_client, "other": other_client, "jobs": jobs, "config": config,
               "tokens": tokens, "kafka": fake_kafka}
    jobs.close()
    tokens.close()


def finish(jobs: JobStore, job_id: str) -> None:
    """Store an outcome as a worker would (no solve needed to test who may read it)."""
    assert jobs.claim(job_id, "w1", lease_s=60)
    assert jobs.finish(job_id, "w1", DONE, result={"status": "optimal", "objective": 1.0},
                       report="<html>plan</html>", summary={"plan_status": "optimal"})


def ids(client: TestClient, **params: Any) -> set[str]:
    resp = client.get("/v1/plans", params=params)
    assert resp.status_code == 200, resp.text
    return {j["job_id"] for j in resp.json()["jobs"]}


# -- ownership ----------------------------------------------------------------------------


def test_a_planner_reads_lists_and_cancels_only_its_own_jobs(env) -> None:
    ops, other, jobs = env["ops"], env["other"], env["jobs"]
    mine = ops.post("/v1/plans", json=TINY).json()["job_id"]
    theirs = other.post("/v1/plans", json=TINY).json()["job_id"]
    assert jobs.get(mine)["submitted_by"] == "ops"
    finish(jobs, mine)
    absent = "plan-0000000000000000"
    for path in ("", "/scenario", "/result", "/report"):
        assert ops.get(f"/v1/plans/{mine}{path}").status_code == 200, path
        seen = other.get(f"/v1/plans/{mine}{path}")
        nowhere = other.get(f"/v1/plans/{absent}{path}")
        # another's job is answered exactly as one that does not exist: ids cannot be probed
        assert seen.status_code == nowhere.status_code == 404, (path, seen.text)
        assert seen.json() == {k: v.replace(absent, mine) for k, v in nowhere.json().items()}
        assert seen.json()["error"] == "not_found"
    assert ids(ops) == {mine} and ids(other) == {theirs}
    assert ids(ops, status="done") == {mine} and ids(other, status="done") == set()
    assert ids(other, status="queued") == {theirs}
    # cancelling another's job: 404, and it stays as it was
    assert ops.delete(f"/v1/plans/{theirs}").status_code == 404
    assert jobs.get(theirs)["status"] == QUEUED
    assert other.delete(f"/v1/plans/{theirs}").json()["status"] == CANCELLED
    assert ops.delete(f"/v1/plans/{mine}").status_code == 409  # own, finished


def test_ownership_follows_the_owner_name_across_token_rotation(env) -> None:
    """Rotation (add a token, revoke the old one) keeps a planner's jobs its own."""
    ops, tokens = env["ops"], env["tokens"]
    job = ops.post("/v1/plans", json=TINY).json()["job_id"]
    _, rotated = tokens.add("planner", "ops")
    resp = ops.get(f"/v1/plans/{job}", headers={"Authorization": f"Bearer {rotated}"})
    assert resp.status_code == 200


def test_dispatch_jobs_are_everyones_to_read_and_their_submitters_to_cancel(env) -> None:
    ops, other, jobs = env["ops"], env["other"], env["jobs"]
    today = local_today().isoformat()
    asked = ops.post("/v1/dispatch", json={"date": today})
    assert asked.status_code == 202, asked.text
    job = asked.json()["job_id"]
    assert jobs.get(job)["submitted_by"] == "ops"
    # every planner reads and lists the county's dispatch jobs…
    assert other.get(f"/v1/plans/{job}").status_code == 200
    assert other.get(f"/v1/plans/{job}/scenario").status_code == 200
    assert job in ids(other) and job in ids(ops)
    again = other.post("/v1/dispatch", json={"date": today})
    assert again.status_code == 200 and again.json()["job_id"] == job
    # …but only the planner who asked for one cancels it
    refused = other.delete(f"/v1/plans/{job}")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    assert jobs.get(job)["status"] == QUEUED
    assert ops.delete(f"/v1/plans/{job}").json()["status"] == CANCELLED
    # the schedule's own jobs: every planner reads and cancels them
    tomorrow = local_today() + timedelta(days=1)
    scheduled, created = submit(env["config"], env["kafka"], env["config"].dispatch, tomorrow)
    assert created and jobs.get(scheduled)["submitted_by"] == SCHEDULER
    assert scheduled in ids(other) and scheduled in ids(ops)
    assert other.get(f"/v1/plans/{scheduled}").status_code == 200
    assert other.delete(f"/v1/plans/{scheduled}").json()["status"] == CANCELLED


def test_a_job_handed_back_shows_no_elapsed_time_while_queued(env) -> None:
    """A stopping worker releases its job (queued again, its first start kept): the job is
    not running, so no time is counted for it until a worker runs it again."""
    ops, jobs = env["ops"], env["jobs"]
    job = ops.post("/v1/plans", json=TINY).json()["job_id"]
    assert jobs.claim(job, "w1", lease_s=60)
    assert ops.get(f"/v1/plans/{job}").json()["elapsed_s"] is not None
    assert jobs.release(job, "w1")
    view = ops.get(f"/v1/plans/{job}").json()
    assert view["status"] == QUEUED and view["elapsed_s"] is None
    assert view["started_at"] is not None and view["attempts"] == 1


def test_the_openapi_document_names_403_and_the_dispatch_body(env) -> None:
    spec = env["ops"].get("/openapi.json").json()
    assert "403" in spec["paths"]["/v1/plans/{job_id}"]["delete"]["responses"]
    body = spec["paths"]["/v1/dispatch"]["post"]["requestBody"]
    assert body["required"] is True
    assert "date" in body["content"]["application/json"]["schema"]["properties"]


# -- POST /v1/dispatch: the date, and the body ---------------------------------------------


def test_a_dispatch_date_before_today_is_refused_naming_the_date(env, fake_kafka) -> None:
    ops, jobs = env["ops"], env["jobs"]
    for past in ("1999-01-01", (local_today() - timedelta(days=1)).isoformat()):
        resp = ops.post("/v1/dispatch", json={"date": past})
        assert resp.status_code == 422, resp.text
        body = resp.json()
        assert body["error"] == "invalid_date"
        assert body["message"].startswith(f"date: {past} is before today")
        assert "stays fixed" in body["message"]
    assert jobs.list() == [] and not fake_kafka.records[TOPICS.plan_requests]


def test_a_dispatch_date_after_tomorrow_is_refused(env) -> None:
    """A date further out was planned from today's state as if the days between did not
    happen (the same recyclables collected on each day) and fixed before its own evening's
    run (an audit)."""
    ops = env["ops"]
    last = local_today() + timedelta(days=1)
    too_far = ops.post("/v1/dispatch", json={"date": (last + timedelta(days=1)).isoformat()})
    assert too_far.status_code == 422 and too_far.json()["error"] == "invalid_date"
    assert too_far.json()["message"].startswith("date: ")
    assert f"up to {last}" in too_far.json()["message"]
    assert ops.post("/v1/dispatch", json={"date": last.isoformat()}).status_code == 202


def test_the_dispatch_window_is_the_networks_local_today() -> None:
    # 20:00 UTC on 5 December is 04:00 on 6 December in Shanghai
    now = datetime(2026, 12, 5, 20, 0, tzinfo=UTC)
    assert dispatch_window("Asia/Shanghai", now) == (date(2026, 12, 6),
                                                               date(2026, 12, 7))
    assert dispatch_window("UTC", now)[0] == date(2026, 12, 5)


def test_dispatch_bodies_fail_as_plan_bodies_do(env) -> None:
    ops = env["ops"]
    json_type = {"Content-Type": "application/json"}
    for path in ("/v1/plans", "/v1/dispatch"):
        broken = ops.post(path, content=b"{not json", headers=json_type)
        assert broken.status_code == 400, (path, broken.text)
        assert broken.json()["error"] == "malformed_json"
        listed = ops.post(path, content=b"[1]", headers=json_type)
        assert listed.status_code == 400 and listed.json()["error"] == "bad_request"
        huge = ops.post(path, content=b" " * (65 * 1024), headers=json_type)
        assert huge.status_code == 413, path
    missing = ops.post("/v1/dispatch", json={})
    assert missing.status_code == 422 and missing.json()["message"].startswith("date: ")
    wrong = ops.post("/v1/dispatch", json={"date": "06.12.2026"})
    assert wrong.status_code == 422 and wrong.json()["message"].startswith("date: ")
    extra = ops.post("/v1/dispatch", json={"date": local_today().isoformat(), "hub": "H01"})
    assert extra.status_code == 422 and extra.json()["message"].startswith("hub: ")


@pytest.mark.parametrize(("body", "prefix"), [
    ({"scenario": TINY, "options": "fast"}, "options: "),
    ({"scenario": TINY, "options": []}, "options: "),
    ({"scenario": TINY, "options": {"mip_gap": 7}}, "options.mip_gap: "),
    ({"scenario": TINY, "options": {"frontier": "yes"}}, "options.frontier: "),
    ({"from_state": "all hubs"}, "from_state: "),
    ({"from_state": {"horizon_days": 99}}, "from_state.horizon_days: "),
])
def test_option_errors_name_the_field(env, body, prefix) -> None:
    resp = env["ops"].post("/v1/plans", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["message"].startswith(prefix), resp.json()
    assert ".:" not in resp.json()["message"]


# -- planner tokens ------------------------------------------------------------------------


@pytest.mark.parametrize("owner", ["", "   ", "\t", " ops"])
def test_a_planner_token_needs_an_owner_name(owner, tmp_path, monkeypatch) -> None:
    from services.cli import cli

    monkeypatch.setenv("PACKLOOP_TOKEN_DB_URL", f"sqlite:///{tmp_path}/tokens.db")
    runner = CliRunner()
    refused = runner.invoke(cli, ["planners", "add-token", owner])
    assert refused.exit_code == 2, refused.output  # a usage error
    assert "NAME" in refused.output
    listed = runner.invoke(cli, ["planners", "list-tokens", "--json"])
    assert listed.exit_code == 0 and orjson.loads(listed.output) == []
    assert runner.invoke(cli, ["planners", "add-token", "ops"]).exit_code == 0


def test_fetched_from_state_scenario_is_the_one_built(env, tmp_path, monkeypatch) -> None:
    """`plan fetch` of a from_state job: scenario.json is the scenario the planner built
    from the live state; inputs.json has the settings, the options and the state."""
    from services.cli import cli

    ops, jobs = env["ops"], env["jobs"]
    env["kafka"].produce([Record(TOPICS.hub_events, b"x", orjson.dumps({"type": "other"}))])
    resp = ops.post("/v1/plans", json={"from_state": {"horizon_days": 1, "hubs": ["H01"]},
                                       "options": {"time_limit_s": 15}})
    assert resp.status_code == 202, resp.text
    job = resp.json()["job_id"]
    finish(jobs, job)
    monkeypatch.setattr("services.cli.plan.httpx.Client", cli_to_app(ops))
    monkeypatch.setenv("PACKLOOP_PLANNER_TOKEN", ops.headers["Authorization"].split()[-1])
    out = tmp_path / "fetched"
    fetched = CliRunner().invoke(cli, ["plan", "fetch", job, "--out", str(out)])
    assert fetched.exit_code == 0, fetched.output
    stored = jobs.get(job, ("scenario", "inputs"))
    assert orjson.loads((out / "scenario.json").read_bytes()) == stored["scenario"]
    inputs = orjson.loads((out / "inputs.json").read_bytes())
    assert inputs["job_id"] == job and inputs["source"] == "from_state"
    assert inputs["options"]["time_limit_s"] == 15
    assert inputs["inputs"]["from_state"]["hubs"] == ["H01"]
    assert inputs["inputs"]["outstanding_grams"] == {"H01-V007": 20000.0}
