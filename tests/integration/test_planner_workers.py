"""Two planner worker processes share jobs; killing one mid-job hands the job to the other.

Exactly once is checked twice: in the job store (one stored result per job, the killed
job's second attempt is the one that finished) and on plan-results (one record per job).

SIGTERM to `packloop planner` (with its API, and `--no-api`) mid-solve: the process exits
0 having handed its job back (queued again at once, no lease to wait for), and neither it
nor its solve process prints a traceback.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from services.auth.tokens import TokenStore
from services.broker import free_port
from services.planner import JobStore, PlannerConfig, create_app
from services.planner.store import FINAL
from streams.consume import read_topic
from streams.network import load_network
from tests.helpers import wait_until
from tests.integration.helpers import PACKLOOP, REPO, NotYet, start_planner_worker, terminate
from tests.services.helpers import big_scenario, with_time_limit


def start_worker(kafka, topics, db_url: str, log: Path):
    return start_planner_worker({
        **os.environ, "PACKLOOP_KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
        "PACKLOOP_TOPIC_PREFIX": topics.prefix, "PACKLOOP_PLANNER_DB_URL": db_url,
        "PACKLOOP_PLANNER_LEASE_S": "4", "PACKLOOP_PLANNER_THREADS": "1"}, log)


def pid_of(worker_id: str) -> int:
    return int(worker_id.rsplit("-", 2)[1])


def test_two_workers_three_jobs_each_once_and_a_killed_worker_hands_over(
        kafka, topics, tmp_path) -> None:
    db_url = f"sqlite:///{tmp_path}/plans.db"
    jobs = JobStore(db_url)
    tokens = TokenStore(f"sqlite:///{tmp_path}/tokens.db")
    _, token = tokens.add("planner", "ops")
    workers = [start_worker(kafka, topics, db_url, tmp_path / f"worker{i}.log") for i in (1, 2)]
    app = create_app(PlannerConfig(kafka=kafka, topics=topics, network=load_network(),
                                   tokens=tokens, jobs=jobs))
    try:
        with TestClient(app) as client:
            client.headers["Authorization"] = f"Bearer {token}"
            ids = []
            for seed in (1, 2, 3):
                body = {"scenario": big_scenario(hubs=1, seed=seed, days=2),
                        # a job's limit is its whole wall clock (the solve process's start
                        # included); 8 s left one of three without a plan on a busy machine
                        "options": {"time_limit_s": 20, "mip_gap": 0.01, "baselines": False}}
                resp = client.post("/v1/plans", json=body)
                assert resp.status_code == 202, resp.text
                ids.append(resp.json()["job_id"])
            # kill whichever worker first runs a job, once its solve has reported progress
            def solving() -> str | None:
                return next((j for j in ids if (job := jobs.get(j))["status"] == "running"
                             and job["worker_id"] and job["progress"]), None)

            victim_job = wait_until(solving, 90, "a job's solve to report progress")
            victim = pid_of(jobs.get(victim_job)["worker_id"])
            os.kill(victim, signal.SIGKILL)
            killed = next(w for w in workers if w.pid == victim)
            killed.wait(10)
            # every job finishes
            def finished() -> dict[str, str] | NotYet:
                states = {j: jobs.get(j)["status"] for j in ids}
                if all(s in FINAL for s in states.values()):
                    return states
                return NotYet((states, [(tmp_path / f"worker{i}.log").read_text()[-2000:]
                                        for i in (1, 2)]))

            states = wait_until(finished, 240, "every job to finish")
            assert set(states.values()) == {"done"}, {j: (jobs.get(j)["status"],
                                                          jobs.get(j)["error"]) for j in ids}
            final = {j: jobs.get(j) for j in ids}
            survivor = next(w for w in workers if w.pid != victim)
            handed_over = final[victim_job]
            assert pid_of(handed_over["worker_id"]) == survivor.pid
            assert handed_over["attempts"] == 2
            metrics = client.get("/metrics").text
            assert 'packloop_plan_jobs{status="done"} 3.0' in metrics
    finally:
        for w in workers:
            terminate(w)
    # no solve outlived its worker (a solve's process group dies with the worker)
    wait_until(lambda: not (left := _ours(tmp_path)) or NotYet(left), 10,
               "no process of this test left behind")
    records = read_topic(kafka, topics.plan_results, expected=3, idle_timeout_s=3.0)
    published = Counter(orjson.loads(r.value)["job_id"] for r in records)
    assert published == Counter(ids), published
    for r in records:
        message = orjson.loads(r.value)
        assert message["status"] == "done"
        assert message["worker_id"] == final[message["job_id"]]["worker_id"]
    jobs.close()
    tokens.close()


def _ours(tmp_path: Path) -> list[int]:
    """Processes started for this test (their environment names its temporary directory)."""
    mine = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if str(tmp_path).encode() in (entry / "environ").read_bytes():
                mine.append(int(entry.name))
        except OSError:
            continue
    return mine


@pytest.mark.parametrize("api", [True, False], ids=["api", "no-api"])
def test_sigterm_hands_the_running_job_back_and_exits_0(kafka, topics, tmp_path, api) -> None:
    """uvicorn re-raises the signal it caught once it has shut down; the planner must still
    stop its workers first, so the job is queued again at once (the lease, 20 s by default,
    is not waited for) and the process exits 0."""
    db_url = f"sqlite:///{tmp_path}/plans.db"
    jobs = JobStore(db_url)
    tokens = TokenStore(f"sqlite:///{tmp_path}/tokens.db", pepper="pepper")
    _, token = tokens.add("planner", "ops")
    port = free_port()
    env = {**os.environ, "PACKLOOP_KAFKA_BOOTSTRAP": kafka.bootstrap_servers,
           "PACKLOOP_TOPIC_PREFIX": topics.prefix, "PACKLOOP_PLANNER_DB_URL": db_url,
           "PACKLOOP_TOKEN_DB_URL": f"sqlite:///{tmp_path}/tokens.db",
           "PACKLOOP_TOKEN_PEPPER": "pepper", "PACKLOOP_PLANNER_PORT": str(port),
           "PACKLOOP_PLANNER_LEASE_S": "8", "PACKLOOP_PLANNER_THREADS": "1"}
    log = tmp_path / "planner.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen([*PACKLOOP, "planner", "--workers", "1",
                                 *([] if api else ["--no-api"])],
                                cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                                start_new_session=True)
    body = with_time_limit(big_scenario(), 120)
    try:
        if api:
            url = f"http://127.0.0.1:{port}"

            def up() -> bool:
                try:
                    return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(up, 60, "the planner API to answer")
            resp = httpx.post(f"{url}/v1/plans", json=body, timeout=30,
                              headers={"Authorization": f"Bearer {token}"})
        else:
            app = create_app(PlannerConfig(kafka=kafka, topics=topics, network=load_network(),
                                           tokens=tokens, jobs=jobs))
            with TestClient(app) as client:
                resp = client.post("/v1/plans", json=body,
                                   headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]

        def solving() -> bool | NotYet:
            """The solve is under way and has sent progress over its pipe."""
            row = jobs.get(job_id) or {}
            return (row.get("status") == "running" and bool(row.get("progress"))
                    or NotYet((row, log.read_text()[-2000:])))

        wait_until(solving, 120, "the job's solve to report progress")
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        job = jobs.get(job_id) or {}  # at once: no lease expiry waited for
    finally:
        terminate(proc)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert (job.get("status"), job.get("worker_id"), job.get("attempts")) == (
        "queued", None, 1), text
    assert f"job {job_id}: worker stopping, solve abandoned and the job queued again" in text
    # the solve's process group is gone, and nothing it wrote is a traceback
    wait_until(lambda: not (left := _ours(tmp_path)) or NotYet(left), 10,
               "no process of this test left behind")
    text = log.read_text()
    assert "Traceback" not in text and "BrokenPipeError" not in text, text[-3000:]
    jobs.close()
    tokens.close()
