"""The planner job service with an in-memory Kafka: API, store semantics, a worker's run of
one job, report, metrics, CLI.

A job is run by handing its plan-request to ``PlannerWorker.process`` (what the worker's
consumer loop does); the loop itself, its consumer group and cancelling a running solve
are tested against the real broker in ``tests/integration/test_planner_service.py``.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import yaml

from services.planner import JobStore, PlannerWorker
from services.planner.store import CANCELLED, DONE, QUEUED
from streams.kafka import KafkaConnection
from streams.topics import Topics
from tests.services.helpers import TINY, FakeKafkaIO, cli_to_app

TOPICS = Topics("t-")


def infeasible() -> dict[str, Any]:
    bad = yaml.safe_load(yaml.safe_dump(TINY))
    for vt in bad["vehicle_types"]:  # 1-litre compartments: nothing fits
        vt["compartments_litres"] = {k: 1 for k in vt["compartments_litres"]}
    return bad


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


@pytest.mark.slow
def test_submit_run_status_report_and_result(planner_env, fake_kafka) -> None:
    """A submitted job is announced on plan-requests keyed by its id; once run, its status,
    result, report and metrics show the plan, and the outcome is published on plan-results."""
    client = planner_env["client"]
    resp = client.post("/v1/plans", json={"scenario": TINY, "options": {"time_limit_s": 20}})
    assert resp.status_code == 202, resp.text
    job = resp.json()
    assert job["status"] == QUEUED and resp.headers["location"] == f"/v1/plans/{job['job_id']}"
    [request] = fake_kafka.records[TOPICS.plan_requests]
    assert request.key == job["job_id"].encode()
    assert planner_env["run_queued"]() == [job["job_id"]]
    done = client.get(f"/v1/plans/{job['job_id']}").json()
    assert done["status"] == DONE, done
    assert done["summary"]["plan_status"] in ("optimal", "feasible")
    assert done["summary"]["kpis"]["joint"]["cost_cny"] > 0
    assert done["progress"] is not None and done["attempts"] == 1
    assert done["elapsed_s"] > 0
    report = client.get(f"/v1/plans/{job['job_id']}/report")
    assert report.status_code == 200 and "<html" in report.text.lower()
    result = client.get(f"/v1/plans/{job['job_id']}/result").json()
    assert result["status"] == done["summary"]["plan_status"] and result["trips"]
    [published] = fake_kafka.records[TOPICS.plan_results]
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
    job = client.post("/v1/plans", json=infeasible()).json()
    planner_env["run_queued"]()
    failed = client.get(f"/v1/plans/{job['job_id']}").json()
    assert failed["status"] == "failed"
    assert failed["error"].startswith("infeasible: ")  # then the optimiser's diagnosis
    assert "closest feasible plan" in failed["error"]
    # the optimiser's diagnosis is kept: result and report explain the infeasibility
    assert client.get(f"/v1/plans/{job['job_id']}/result").json()["status"] == "infeasible"
    metrics = client.get("/metrics").text
    assert "\npackloop_plan_last_success_timestamp_seconds " not in metrics
    assert 'packloop_plan_jobs_total{status="failed"} 1.0' in metrics


def test_a_job_that_cannot_be_announced_is_not_kept(planner_env, fake_kafka) -> None:
    """A job the API reported as queued is always on plan-requests: when Kafka does not take
    the announcement, the job is removed again and the answer is 503; while Kafka is known
    to be down, nothing is stored at all."""
    from kafka.errors import KafkaTimeoutError

    client, jobs = planner_env["client"], planner_env["jobs"]
    fake_kafka.refuse = KafkaTimeoutError("no acknowledgement")
    resp = client.post("/v1/plans", json=TINY)
    assert resp.status_code == 503 and resp.headers["retry-after"] == "5"
    assert "nothing was stored" in resp.json()["message"]
    assert jobs.list(None, 10) == []
    assert client.get("/readyz").status_code == 503  # down until Kafka answers again
    fake_kafka.refuse = None
    down = client.post("/v1/plans", json=TINY)
    assert down.status_code == 503 and down.json()["error"] == "kafka_unavailable"
    assert jobs.list(None, 10) == []
    fake_kafka.down = None
    assert client.post("/v1/plans", json=TINY).status_code == 202
    assert len(jobs.list(None, 10)) == 1


def test_cancelling_a_queued_job(planner_env) -> None:
    """A cancelled job stays cancelled (409 on a second cancel) and its plan-request is
    skipped when a worker reaches it."""
    client, jobs = planner_env["client"], planner_env["jobs"]
    queued = client.post("/v1/plans", json=TINY).json()
    gone = client.delete(f"/v1/plans/{queued['job_id']}")
    assert gone.status_code == 200 and gone.json()["status"] == CANCELLED
    assert client.delete(f"/v1/plans/{queued['job_id']}").status_code == 409
    assert planner_env["run_queued"]() == [queued["job_id"]]
    job = jobs.get(queued["job_id"])
    assert job["status"] == CANCELLED and job["attempts"] == 0


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


def test_from_state_needs_the_stream_worker(planner_env) -> None:
    """With no worker at PACKLOOP_WORKER_URL the API answers 503 with the reason."""
    from services.broker import free_port

    client = planner_env["client"]
    client.app.state.config.worker_url = f"http://127.0.0.1:{free_port()}"
    resp = client.post("/v1/plans", json={"from_state": {"horizon_days": 1}})
    assert resp.status_code == 503 and "stream worker" in resp.json()["message"]


@pytest.mark.slow
def test_cli_submit_status_fetch(planner_env, tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from services.cli import cli

    monkeypatch.setattr("services.cli.plan.httpx.Client", cli_to_app(planner_env["client"]))
    monkeypatch.setenv("PACKLOOP_PLANNER_TOKEN", planner_env["token"])
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(TINY))
    runner = CliRunner()
    out = runner.invoke(cli, ["plan", "submit", str(scenario), "--time-limit", "20"])
    assert out.exit_code == 0, out.output
    job_id = out.output.strip().splitlines()[-1]
    assert job_id.startswith("plan-")
    queued = runner.invoke(cli, ["plan", "status", job_id, "--json"])
    assert orjson.loads(queued.output)["status"] == QUEUED
    assert runner.invoke(cli, ["plan", "fetch", job_id, "--out", str(tmp_path / "x")]
                         ).exit_code == 1  # nothing to fetch yet
    planner_env["run_queued"]()
    status = runner.invoke(cli, ["plan", "status", job_id, "--wait"])
    assert status.exit_code == 0 and "done" in status.output and "joint" in status.output
    fetched = runner.invoke(cli, ["plan", "fetch", job_id, "--out", str(tmp_path / "out")])
    assert fetched.exit_code == 0, fetched.output
    assert (tmp_path / "out/report.html").exists() and (tmp_path / "out/plan.json").exists()
    # scenario.json is the scenario itself, as `plan solve` and `plan submit` read it; the
    # job's options (and a from_state job's settings and state) are in inputs.json
    fetched_scenario = orjson.loads((tmp_path / "out/scenario.json").read_bytes())
    assert fetched_scenario == orjson.loads(orjson.dumps(TINY))
    inputs = orjson.loads((tmp_path / "out/inputs.json").read_bytes())
    assert inputs["job_id"] == job_id and inputs["source"] == "scenario"
    assert inputs["options"]["time_limit_s"] == 20 and inputs["inputs"] is None
    solved = runner.invoke(cli, ["plan", "solve", str(tmp_path / "out/scenario.json"),
                                 "--time-limit", "20", "--no-baselines", "--json"])
    assert solved.exit_code == 0, solved.output
    assert orjson.loads(solved.stdout)["status"] in ("optimal", "feasible")
    monkeypatch.delenv("PACKLOOP_PLANNER_TOKEN")
    missing = runner.invoke(cli, ["plan", "status", job_id])
    assert missing.exit_code == 1 and "PACKLOOP_PLANNER_TOKEN" in missing.output


def test_workers_built_in_one_thread_have_distinct_ids(tmp_path, fake_kafka) -> None:
    """`packloop planner --workers N` builds its workers in one thread; the store tells
    workers apart by id, so two with one id could both renew and finish one job."""
    jobs = JobStore(f"sqlite:///{tmp_path}/p.db")
    pool = [PlannerWorker(jobs, KafkaConnection(), TOPICS, kafka_io=fake_kafka)
            for _ in range(5)]
    assert len({w.worker_id for w in pool}) == 5
    job = jobs.create({"a": 1}, {}, "scenario", "ops")
    assert jobs.claim(job, pool[0].worker_id, lease_s=-1)  # lease already expired
    assert jobs.claim(job, pool[1].worker_id, lease_s=60)
    assert not jobs.renew(job, pool[0].worker_id, 60)  # the first one lost it
    jobs.close()


SOLVE_THEN_LOSE_THE_WORKER = """
import sys, time
from services.planner.runner import SolveProcess
from tests.services.helpers import big_scenario

solve = SolveProcess(big_scenario(hubs=2, days=2),
                     {"time_limit_s": 15, "threads": 1, "baselines": False})
t0 = time.time()
while not solve.messages(0.5):  # the solve is under way and talking over its pipe
    if time.time() - t0 > 60:
        sys.exit("no message from the solve within 60 s")
solve._conn.close()  # the worker's end is gone (it stopped, or died)
solve.process.join(60)
print("exit", solve.process.exitcode)
"""


@pytest.mark.slow
def test_a_solve_whose_worker_is_gone_ends_without_a_traceback() -> None:
    """The solve's next message finds the pipe closed: it ends there, quietly (before, it
    printed BrokenPipeError tracebacks — the send, then the send of the error — and solved
    on to its time limit)."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    run = subprocess.run([sys.executable, "-c", SOLVE_THEN_LOSE_THE_WORKER], cwd=repo,
                         capture_output=True, text=True, timeout=180,
                         env={**__import__("os").environ, "PYTHONPATH": str(repo)})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "exit None" not in run.stdout, run.stdout  # it ended
    assert "Traceback" not in run.stderr and "BrokenPipeError" not in run.stderr, run.stderr


@pytest.mark.slow
def test_a_queued_job_whose_request_was_lost_is_run_by_an_idle_worker(planner_env,
                                                                       fake_kafka) -> None:
    """A job stored as queued whose plan request never reaches a worker (the embedded
    broker restarted empty under it) stayed queued for good; an idle worker's sweep now
    takes the oldest such job from the store, once, and a late request finds it done."""
    client, jobs, worker = planner_env["client"], planner_env["jobs"], planner_env["worker"]
    job_id = client.post("/v1/plans", json={"scenario": TINY, "options": {
        "time_limit_s": 20}}).json()["job_id"]
    fake_kafka.records[TOPICS.plan_requests].clear()  # the request is gone
    worker.sweep()  # too young: it may still be on its way
    assert jobs.get(job_id)["status"] == QUEUED
    worker.stale_after_s = 0.0
    worker.sweep()
    done = jobs.get(job_id)
    assert done["status"] == DONE and done["attempts"] == 1
    worker.process(job_id)  # the request turns up after all: nothing runs twice
    assert jobs.get(job_id)["attempts"] == 1
    assert len(fake_kafka.records[TOPICS.plan_results]) == 1


def test_a_name_planned_once_has_one_job_however_many_creators_race(tmp_path) -> None:
    """Four concurrent POST /v1/dispatch for one date made four jobs: each looked for the
    date's job, found none while the others built their scenarios, and inserted its own.
    Now the date's name goes to one job; a failed or cancelled one passes it on."""
    import threading

    from services.planner.store import FAILED

    store = JobStore(f"sqlite:///{tmp_path}/p.db")
    barrier = threading.Barrier(4)
    got: list[tuple[str, bool]] = []

    def create() -> None:
        barrier.wait()
        got.append(store.create_once({"a": 1}, {}, "dispatch", "ops", "dispatch 2026-12-09"))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(created for _, created in got) == 1
    assert len({job for job, _ in got}) == 1
    first = got[0][0]
    assert [j["job_id"] for j in store.named("dispatch", "dispatch 2026-12-09")] == [first]
    assert store.create_once({}, {}, "dispatch", "ops", "dispatch 2026-12-10")[1]  # another
    assert store.cancel(first)
    again, created = store.create_once({"a": 2}, {}, "dispatch", "ops", "dispatch 2026-12-09")
    assert created and again != first
    assert store.claim(again, "w", 60) and store.finish(again, "w", FAILED, error="x")
    third, created = store.create_once({"a": 3}, {}, "dispatch", "ops", "dispatch 2026-12-09")
    assert created and third not in (first, again)
    assert store.create_once({}, {}, "dispatch", "ops", "dispatch 2026-12-09") == (third, False)
    store.close()


@pytest.mark.parametrize("body, named", [
    ({"scenario": TINY, "option": {"time_limit_s": 5}}, "option: not a field"),
    ({"scenario": TINY, "from_state": {}}, "scenario, from_state: give one of them"),
    # options without a plan listed seven missing scenario fields (an outside audit)
    ({"options": {"time_limit_s": 5}}, "scenario, from_state: give one of them with"),
])
def test_a_request_with_a_stray_key_is_refused_naming_it(planner_env, body, named) -> None:
    """A misspelt "option" was dropped (the job ran 120 s, not 5), and a body with both a
    scenario and from_state planned from the state without a word."""
    resp = planner_env["client"].post("/v1/plans", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"] == "invalid_request" and named in resp.json()["message"]
    assert planner_env["jobs"].list() == []


def test_cli_lists_and_cancels_jobs(planner_env, monkeypatch, tmp_path) -> None:
    """`plan list` and `plan cancel`: cancelling was DELETE-only, and `plan fetch` on a
    cancelled job said "nothing to fetch yet", as if it might still come."""
    from click.testing import CliRunner

    from services.cli import cli

    monkeypatch.setattr("services.cli.plan.httpx.Client", cli_to_app(planner_env["client"]))
    monkeypatch.setenv("PACKLOOP_PLANNER_TOKEN", planner_env["token"])
    scenario = tmp_path / "tiny.yaml"
    scenario.write_text(yaml.safe_dump(TINY))
    runner = CliRunner()
    ids = [runner.invoke(cli, ["plan", "submit", str(scenario), "--time-limit", "20"]
                         ).output.strip().splitlines()[-1] for _ in range(2)]
    listed = runner.invoke(cli, ["plan", "list"])
    assert listed.exit_code == 0, listed.output
    assert all(job in listed.output for job in ids) and "queued" in listed.output
    gone = runner.invoke(cli, ["plan", "cancel", ids[0]])
    assert gone.exit_code == 0 and f"job {ids[0]} cancelled" in gone.output, gone.output
    only = orjson.loads(runner.invoke(cli, ["plan", "list", "--status", "cancelled",
                                            "--json"]).output)
    assert [j["job_id"] for j in only] == [ids[0]]
    fetch = runner.invoke(cli, ["plan", "fetch", ids[0], "--out", str(tmp_path / "x")])
    assert fetch.exit_code == 1 and "was cancelled" in fetch.output
    again = runner.invoke(cli, ["plan", "cancel", ids[0]])
    assert again.exit_code == 1 and "HTTP 409" in again.output


def test_a_worker_starts_its_fork_server_before_its_first_job(fake_kafka, tmp_path,
                                                              monkeypatch) -> None:
    """The fork server was started by the first job, inside that job's time limit: a first
    job of 5 s on a fresh `packloop planner` ended `time_limit` where a warm worker's was
    optimal (measured by hand both ways). The worker now starts it before any job."""
    from multiprocessing import forkserver

    import services.planner.runner as runner

    started: list[bool] = []
    real = runner.warm_up
    monkeypatch.setattr(runner, "warm_up", lambda: (started.append(True), real()))
    jobs = JobStore(f"sqlite:///{tmp_path}/plans.db")
    worker = PlannerWorker(jobs, KafkaConnection(), TOPICS, kafka_io=fake_kafka)
    worker.stop_event.set()  # no job: only what happens before the first
    worker.run_forever()
    assert started == [True]
    assert forkserver._forkserver._forkserver_pid is not None  # running, optimiser loaded
    jobs.close()


def test_a_worker_without_partitions_says_so_once(tmp_path) -> None:
    import time

    from services.planner.worker import UNASSIGNED_WARN_S

    jobs = JobStore(f"sqlite:///{tmp_path}/p.db")
    worker = PlannerWorker(jobs, KafkaConnection(), Topics("t-"), kafka_io=FakeKafkaIO())
    start = worker._unassigned_since
    assert start is not None
    assert worker.check_assignment(start + UNASSIGNED_WARN_S - 1) is None
    warning = worker.check_assignment(start + UNASSIGNED_WARN_S)
    assert warning is not None and "t-plan-requests" in warning and "job store" in warning
    assert worker.check_assignment(start + 2 * UNASSIGNED_WARN_S) is None  # once
    # a worker that holds a partition says nothing; once it lost its last one (a group
    # stuck after another member was killed), it says so after the same wait
    other = PlannerWorker(jobs, KafkaConnection(), Topics("t-"), kafka_io=FakeKafkaIO())
    other.partitions = frozenset({0})
    t = time.monotonic() + 10 * UNASSIGNED_WARN_S
    assert other.check_assignment(t) is None
    other.partitions = frozenset()
    assert other.check_assignment(t + 1) is None
    assert other.check_assignment(t + 1 + UNASSIGNED_WARN_S) is not None
    assert other.check_assignment(t + 2 + UNASSIGNED_WARN_S) is None
    jobs.close()


def test_a_misspelt_option_names_the_one_meant(planner_env) -> None:
    """It said pydantic's "Extra inputs are not permitted"."""
    resp = planner_env["client"].post(
        "/v1/plans", json={"scenario": TINY, "options": {"time_limit": 20}})
    assert resp.status_code == 422
    assert resp.json()["message"] == ("options.time_limit: not a field here "
                                      "(did you mean 'time_limit_s'?)")


def test_an_unreachable_job_store_is_a_503_in_the_error_shape(planner_env, monkeypatch) -> None:
    """PostgreSQL stopped under a running planner: GET and POST /v1/plans answered a bare
    "Internal Server Error" (text/plain, 500) and logged a traceback (an outside audit)."""
    from sqlalchemy.exc import OperationalError

    def down(*_args: Any, **_kwargs: Any) -> Any:
        raise OperationalError("SELECT 1", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(planner_env["jobs"], "list", down)
    monkeypatch.setattr(planner_env["jobs"], "create", down)
    monkeypatch.setattr(planner_env["jobs"], "create_once", down)
    for resp in (planner_env["client"].get("/v1/plans"),
                 planner_env["client"].post("/v1/plans", json={"scenario": TINY})):
        assert resp.status_code == 503, resp.text
        assert resp.json()["error"] == "database_unavailable"
        assert resp.headers["Retry-After"] == "10"


def test_a_solve_killed_by_a_signal_is_tried_once_more(planner_env, monkeypatch) -> None:
    """A solve process killed with SIGKILL (the OOM killer) failed its job at once, where a
    job whose worker dies is taken over (an outside audit). It is queued again once; killed
    again, the job fails saying so."""

    class Killed:
        exitcode = -9

        def __init__(self, *_args: Any, **_kwargs: Any) -> None:
            pass

        def messages(self, _timeout_s: float) -> list[Any]:
            return []

        def alive(self) -> bool:
            return False

        def close(self) -> None:
            pass

    monkeypatch.setattr("services.planner.worker.SolveProcess", Killed)
    client = planner_env["client"]
    job = client.post("/v1/plans", json=TINY).json()
    assert planner_env["run_queued"]() == [job["job_id"]]
    again = client.get(f"/v1/plans/{job['job_id']}").json()
    assert (again["status"], again["attempts"]) == ("queued", 1)
    assert planner_env["run_queued"]() == [job["job_id"]]  # announced again
    failed = client.get(f"/v1/plans/{job['job_id']}").json()
    assert (failed["status"], failed["attempts"]) == ("failed", 2)
    assert "exited with code -9" in failed["error"] and "killed, attempt 2" in failed["error"]
