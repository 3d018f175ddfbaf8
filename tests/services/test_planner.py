"""The planner job service: API, store semantics, worker, cancel, report, metrics, CLI."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from fastapi.testclient import TestClient

from services.auth.tokens import TokenStore
from services.planner import JobStore, PlannerConfig, PlannerWorker, create_app
from services.planner.store import CANCELLED, DONE, QUEUED
from streams.consume import read_topic
from streams.network import load_network

REPO = Path(__file__).resolve().parents[2]
TINY = yaml.safe_load((REPO / "examples/scenarios/tiny.yaml").read_text())
NETWORK = load_network()


def infeasible() -> dict[str, Any]:
    bad = yaml.safe_load((REPO / "examples/scenarios/tiny.yaml").read_text())
    for vt in bad["vehicle_types"]:  # 1-litre compartments: nothing fits
        vt["compartments_litres"] = {k: 1 for k in vt["compartments_litres"]}
    return bad


@pytest.fixture
def planner_env(kafka, topics, tmp_path) -> Iterator[dict[str, Any]]:
    tokens = TokenStore(f"sqlite:///{tmp_path}/tokens.db")
    jobs = JobStore(f"sqlite:///{tmp_path}/plans.db")
    _, token = tokens.add("planner", "ops")
    app = create_app(PlannerConfig(kafka=kafka, topics=topics, network=NETWORK, tokens=tokens,
                                   jobs=jobs, default_time_limit_s=30))
    workers: list[PlannerWorker] = []

    def start_worker(**kw: Any) -> PlannerWorker:
        w = PlannerWorker(jobs, kafka, topics, group_id=f"g-{topics.prefix}",
                          lease_s=kw.pop("lease_s", 4.0), **kw)
        w.start()
        workers.append(w)
        return w

    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield {"client": client, "jobs": jobs, "start_worker": start_worker, "token": token,
               "tokens": tokens}
    for w in workers:
        w.stop()
    time.sleep(0.5)
    jobs.close()
    tokens.close()


def wait_for(client: TestClient, job_id: str, statuses: tuple[str, ...] = ("done", "failed",
             "cancelled"), timeout_s: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/v1/plans/{job_id}").json()
        if job["status"] in statuses:
            return job
        assert time.monotonic() < deadline, f"job {job_id} stuck in {job['status']}"
        time.sleep(0.3)


def test_store_finish_is_conditional_and_first_finish_wins(tmp_path) -> None:
    store = JobStore(f"sqlite:///{tmp_path}/p.db")
    job = store.create({"a": 1}, {}, "scenario", "ops")
    assert store.claim(job, "w1", lease_s=60)
    assert not store.claim(job, "w2", lease_s=60)  # live lease: no second run
    assert store.finish(job, "w1", DONE, result={"objective": 1.0}, summary={"objective": 1.0})
    assert not store.finish(job, "w2", DONE, result={"objective": 2.0})  # duplicate run
    assert store.get(job, ("result",))["result"] == {"objective": 1.0}
    # a solve quicker than a lease renewal: its last progress is stored with the outcome
    quick = store.create({"a": 3}, {}, "scenario", "ops")
    assert store.claim(quick, "w1", lease_s=60) and store.get(quick)["progress"] is None
    assert store.finish(quick, "w1", DONE, result={}, progress={"incumbent": 5.0})
    assert store.get(quick)["progress"] == {"incumbent": 5.0}
    assert not store.cancel(job)  # finished jobs stay finished
    # an expired lease is taken over
    other = store.create({"a": 2}, {}, "scenario", "ops")
    assert store.claim(other, "w1", lease_s=-1)
    assert store.expired() == [other]
    assert store.claim(other, "w2", lease_s=60)
    assert not store.renew(other, "w1", 60)  # the old owner lost it
    assert store.get(other)["attempts"] == 2
    assert store.cancel(other) and store.get(other)["status"] == CANCELLED
    assert not store.renew(other, "w2", 60)  # cancel ends the lease
    assert not store.finish(other, "w2", DONE, result={})
    store.close()


def test_submit_run_status_report_and_result(planner_env, kafka, topics) -> None:
    client = planner_env["client"]
    planner_env["start_worker"]()
    resp = client.post("/v1/plans", json={"scenario": TINY, "options": {"time_limit_s": 20}})
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert job["status"] == QUEUED and resp.headers["location"] == f"/v1/plans/{job['job_id']}"
    done = wait_for(client, job["job_id"])
    assert done["status"] == DONE, done
    assert done["summary"]["plan_status"] in ("optimal", "feasible")
    assert done["summary"]["kpis"]["joint"]["cost_cny"] > 0
    assert done["progress"] is not None and done["attempts"] == 1
    assert done["elapsed_s"] > 0
    report = client.get(f"/v1/plans/{job['job_id']}/report")
    assert report.status_code == 200 and "<html" in report.text.lower()
    result = client.get(f"/v1/plans/{job['job_id']}/result").json()
    assert result["status"] == done["summary"]["plan_status"] and result["trips"]
    [published] = read_topic(kafka, topics.plan_results, expected=1)
    message = orjson.loads(published.value)
    assert message["job_id"] == job["job_id"] and message["status"] == DONE
    metrics = client.get("/metrics").text
    assert 'packloop_plan_jobs{status="done"} 1.0' in metrics
    assert 'packloop_plan_jobs_total{status="done"} 1.0' in metrics
    assert "packloop_plan_duration_seconds_count 1.0" in metrics
    assert "packloop_plan_last_success_timestamp_seconds " in metrics
    assert 'packloop_plan_cost_cny{plan="joint"}' in metrics
    assert 'packloop_plan_cost_cny{plan="uncoordinated"}' in metrics


def test_infeasible_job_fails_with_a_clear_reason(planner_env) -> None:
    client = planner_env["client"]
    planner_env["start_worker"]()
    job = client.post("/v1/plans", json=infeasible()).json()
    failed = wait_for(client, job["job_id"])
    assert failed["status"] == "failed"
    assert failed["error"].startswith("infeasible: ")  # then the optimiser's diagnosis
    assert "closest feasible plan" in failed["error"]
    # the optimiser's diagnosis is kept: result and report explain the infeasibility
    assert client.get(f"/v1/plans/{job['job_id']}/result").json()["status"] == "infeasible"
    metrics = client.get("/metrics").text
    assert "\npackloop_plan_last_success_timestamp_seconds " not in metrics
    assert 'packloop_plan_jobs_total{status="failed"} 1.0' in metrics


def test_cancel_queued_and_running_jobs(planner_env) -> None:
    client, jobs = planner_env["client"], planner_env["jobs"]
    queued = client.post("/v1/plans", json=TINY).json()  # no worker yet
    gone = client.delete(f"/v1/plans/{queued['job_id']}")
    assert gone.status_code == 200 and gone.json()["status"] == CANCELLED
    assert client.delete(f"/v1/plans/{queued['job_id']}").status_code == 409
    events: list[tuple[str, str]] = []
    planner_env["start_worker"](on_event=lambda j, what: events.append((j, what)))
    slow = json_with_time_limit(big_scenario(), 60)
    job = client.post("/v1/plans", json=slow).json()
    wait_for(client, job["job_id"], ("running",))
    # while it runs, the status shows the solver's progress
    deadline = time.monotonic() + 60
    while not (running := client.get(f"/v1/plans/{job['job_id']}").json()).get("progress"):
        assert running["status"] == "running" and time.monotonic() < deadline, running
        time.sleep(0.3)
    assert running["progress"]["incumbent"] > 0 and running["progress"]["elapsed_s"] > 0
    assert running["elapsed_s"] > 0 and running["worker_id"]
    started = time.monotonic()
    assert client.delete(f"/v1/plans/{job['job_id']}").json()["status"] == CANCELLED
    deadline = time.monotonic() + 15
    while (job["job_id"], "cancelled") not in events:
        assert time.monotonic() < deadline, events
        time.sleep(0.1)
    assert time.monotonic() - started < 10  # the solve was killed, not waited for
    assert jobs.get(job["job_id"])["status"] == CANCELLED
    # the cancelled job's message is not run again: the worker moves on to the next job
    nxt = client.post("/v1/plans", json=TINY).json()
    assert wait_for(client, nxt["job_id"])["status"] == DONE
    assert jobs.get(job["job_id"])["status"] == CANCELLED


def json_with_time_limit(scenario: dict[str, Any], limit: float) -> dict[str, Any]:
    return {"scenario": scenario, "options": {"time_limit_s": limit}}


def big_scenario(hubs: int = 6, seed: int = 1, days: int = 7) -> dict[str, Any]:
    """A scenario that takes HiGHS a while (several hubs, a week)."""
    import optimizer

    sc = optimizer.scenario_from_network(
        NETWORK.raw, hubs=[f"H{i:02d}" for i in range(1, hubs + 1)], horizon_days=days,
        seed=seed)
    return sc.model_dump(mode="json")


def test_auth_validation_and_errors(planner_env) -> None:
    client, tokens = planner_env["client"], planner_env["tokens"]
    anon = client.post("/v1/plans", json=TINY, headers={"Authorization": ""})
    assert anon.status_code == 401
    _, hub_token = tokens.add("hub", "H01")
    assert client.get("/v1/plans", headers={"Authorization": f"Bearer {hub_token}"}
                      ).status_code == 401
    bad = dict(TINY, horizon_days=0)
    resp = client.post("/v1/plans", json=bad)
    assert resp.status_code == 422 and resp.json()["error"] == "invalid_scenario"
    assert any(p["path"] == "horizon_days" for p in resp.json()["problems"])
    bad_option = client.post("/v1/plans", json={"scenario": TINY, "options": {"mip_gap": 7}})
    assert bad_option.status_code == 422
    assert client.get("/v1/plans/plan-nope").status_code == 404
    assert client.post("/v1/plans", content=b"[1]",
                       headers={"Content-Type": "application/json"}).status_code == 400
    spec = client.get("/openapi.json").json()
    assert {"/v1/plans", "/v1/plans/{job_id}", "/v1/plans/{job_id}/report"} <= set(spec["paths"])


def test_from_state_needs_the_stream_worker(planner_env, kafka, topics, tmp_path) -> None:
    """With no worker at PACKLOOP_WORKER_URL the API answers 503 with the reason."""
    from services.broker import free_port

    client = planner_env["client"]
    client.app.state.config.worker_url = f"http://127.0.0.1:{free_port()}"
    resp = client.post("/v1/plans", json={"from_state": {"horizon_days": 1}})
    assert resp.status_code == 503 and "stream worker" in resp.json()["message"]


def test_cli_submit_status_fetch(planner_env, tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from services.cli import cli

    client = planner_env["client"]
    planner_env["start_worker"]()

    def transport(request: httpx.Request) -> httpx.Response:  # the CLI → the app in-process
        resp = client.request(request.method, request.url.path, content=request.content,
                              headers={k: v for k, v in request.headers.items()
                                       if k.lower() in ("authorization", "content-type")})
        return httpx.Response(resp.status_code, content=resp.content, headers=resp.headers)

    real_client = httpx.Client

    def fake_client(*args: Any, **kwargs: Any) -> httpx.Client:
        kwargs["transport"] = httpx.MockTransport(transport)
        return real_client(*args, **kwargs)

    monkeypatch.setattr("services.cli.plan.httpx.Client", fake_client)
    monkeypatch.setenv("PACKLOOP_PLANNER_TOKEN", planner_env["token"])
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(TINY))
    runner = CliRunner()
    out = runner.invoke(cli, ["plan", "submit", str(scenario), "--time-limit", "20"])
    assert out.exit_code == 0, out.output
    job_id = out.output.strip().splitlines()[-1]
    assert job_id.startswith("plan-")
    status = runner.invoke(cli, ["plan", "status", job_id, "--wait"])
    assert status.exit_code == 0 and "done" in status.output and "joint" in status.output
    fetched = runner.invoke(cli, ["plan", "fetch", job_id, "--out", str(tmp_path / "out")])
    assert fetched.exit_code == 0, fetched.output
    assert (tmp_path / "out/report.html").exists() and (tmp_path / "out/plan.json").exists()
    monkeypatch.delenv("PACKLOOP_PLANNER_TOKEN")
    missing = runner.invoke(cli, ["plan", "status", job_id])
    assert missing.exit_code == 1 and "PACKLOOP_PLANNER_TOKEN" in missing.output
    _ = uuid


def test_a_stopping_worker_hands_its_job_back(planner_env) -> None:
    client, jobs = planner_env["client"], planner_env["jobs"]
    first = planner_env["start_worker"]()
    job = client.post("/v1/plans", json=json_with_time_limit(big_scenario(), 60)).json()
    wait_for(client, job["job_id"], ("running",))
    first.stop()  # graceful: the job goes back to the queue at once, no lease wait
    wait_for(client, job["job_id"], ("queued",), timeout_s=15)
    planner_env["start_worker"]()
    wait_for(client, job["job_id"], ("running",), timeout_s=60)
    assert jobs.get(job["job_id"])["attempts"] == 2
    assert client.delete(f"/v1/plans/{job['job_id']}").json()["status"] == CANCELLED


def test_a_worker_joining_during_a_solve_gets_partitions_at_once(planner_env) -> None:
    """The busy worker keeps polling (paused) mid-solve, so the group rebalances while it
    solves: a job on the newcomer's partitions runs at once, and when the busy worker then
    stops, the newcomer takes its job back from the queue (this stalled on Tansu before)."""
    from streams.processor import murmur2_partition

    client, jobs = planner_env["client"], planner_env["jobs"]
    first = planner_env["start_worker"]()
    big = client.post("/v1/plans", json=json_with_time_limit(big_scenario(), 90)).json()
    wait_for(client, big["job_id"], ("running",))
    second = planner_env["start_worker"]()
    deadline = time.monotonic() + 20
    while not second.partitions:  # the busy worker may still be finishing its own join
        assert time.monotonic() < deadline, (first.partitions, second.partitions)
        time.sleep(0.2)
    assert not first.partitions & second.partitions
    assert jobs.get(big["job_id"])["worker_id"] == first.worker_id
    # a job keyed onto the newcomer's partitions runs while the first worker still solves
    for _ in range(40):
        small = client.post("/v1/plans", json=TINY).json()
        if murmur2_partition(small["job_id"].encode(), 4) in second.partitions:
            break
        assert client.delete(f"/v1/plans/{small['job_id']}").status_code == 200
    done = wait_for(client, small["job_id"], timeout_s=40)
    assert done["status"] == DONE and done["worker_id"] == second.worker_id
    assert jobs.get(big["job_id"])["status"] == "running"
    first.stop()  # hands the job back; the newcomer, idle and in the group, takes it
    deadline = time.monotonic() + 30
    while (job := jobs.get(big["job_id"]))["worker_id"] != second.worker_id:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "running" and job["attempts"] == 2
    assert client.delete(f"/v1/plans/{big['job_id']}").json()["status"] == CANCELLED


def test_workers_built_in_one_thread_have_distinct_ids(tmp_path, kafka, topics) -> None:
    """`packloop planner --workers N` builds its workers in one thread; the store tells
    workers apart by id, so two with one id could both renew and finish one job."""
    jobs = JobStore(f"sqlite:///{tmp_path}/p.db")
    pool = [PlannerWorker(jobs, kafka, topics) for _ in range(5)]
    assert len({w.worker_id for w in pool}) == 5
    job = jobs.create({"a": 1}, {}, "scenario", "ops")
    assert jobs.claim(job, pool[0].worker_id, lease_s=-1)  # lease already expired
    assert jobs.claim(job, pool[1].worker_id, lease_s=60)
    assert not jobs.renew(job, pool[0].worker_id, 60)  # the first one lost it
    for w in pool:
        w.kafka_io.stop()
    jobs.close()
