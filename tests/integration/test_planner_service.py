"""Planner workers on the real broker: the consumer loop, its group, and a running solve.

The API and the store are tested without a broker in ``tests/services/test_planner.py``;
here workers consume plan-requests in a consumer group, so what is checked is what only
Kafka does: a cancelled job's message is skipped and the next one runs, a stopping worker
hands its job back at once, and a worker joining during a solve gets partitions at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from services.auth.tokens import TokenStore
from services.planner import JobStore, PlannerConfig, PlannerWorker, create_app
from services.planner.store import CANCELLED, DONE
from tests.helpers import wait_until
from tests.services.helpers import NETWORK, TINY, big_scenario, wait_for_job, with_time_limit


@pytest.fixture
def planner_env(kafka, topics, tmp_path) -> Iterator[dict[str, Any]]:
    tokens = TokenStore(f"sqlite:///{tmp_path}/tokens.db")
    jobs = JobStore(f"sqlite:///{tmp_path}/plans.db")
    _, token = tokens.add("planner", "ops")
    app = create_app(PlannerConfig(kafka=kafka, topics=topics, network=NETWORK, tokens=tokens,
                                   jobs=jobs, default_time_limit_s=30))
    workers: list[PlannerWorker] = []
    threads: list[threading.Thread] = []

    def start_worker(**kw: Any) -> PlannerWorker:
        w = PlannerWorker(jobs, kafka, topics, group_id=f"g-{topics.prefix}",
                          lease_s=kw.pop("lease_s", 4.0), **kw)
        threads.append(w.start())
        workers.append(w)
        return w

    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        yield {"client": client, "jobs": jobs, "start_worker": start_worker, "token": token,
               "tokens": tokens}
    for w in workers:
        w.stop()
    wait_until(lambda: not any(t.is_alive() for t in threads), 30, "planner workers to stop")
    jobs.close()
    tokens.close()


def test_cancel_queued_and_running_jobs(planner_env) -> None:
    client, jobs = planner_env["client"], planner_env["jobs"]
    queued = client.post("/v1/plans", json=TINY).json()  # no worker yet
    gone = client.delete(f"/v1/plans/{queued['job_id']}")
    assert gone.status_code == 200 and gone.json()["status"] == CANCELLED
    assert client.delete(f"/v1/plans/{queued['job_id']}").status_code == 409
    events: list[tuple[str, str]] = []
    planner_env["start_worker"](on_event=lambda j, what: events.append((j, what)))
    job = client.post("/v1/plans", json=with_time_limit(big_scenario(), 60)).json()
    wait_for_job(client, job["job_id"], ("running",))
    # while it runs, the status shows the solver's progress (the county's objective once
    # every hub group has a first plan)
    running = wait_until(
        lambda: (view := client.get(f"/v1/plans/{job['job_id']}").json()).get("progress")
        and view["progress"]["incumbent"] is not None and view, 60, "the running job's progress")
    assert running["status"] == "running"
    assert running["progress"]["incumbent"] > 0 and running["progress"]["elapsed_s"] > 0
    assert running["elapsed_s"] > 0 and running["worker_id"]
    cancelled = client.delete(f"/v1/plans/{job['job_id']}")
    assert cancelled.json()["status"] == CANCELLED
    # the solve is killed, not waited for
    wait_until(lambda: (job["job_id"], "cancelled") in events, 10, "the worker to stop the solve")
    assert jobs.get(job["job_id"])["status"] == CANCELLED
    # the cancelled job's message is not run again: the worker moves on to the next job,
    # submitted twice with one Idempotency-Key (a client retrying a lost answer): one job
    key = {"Idempotency-Key": "retry-1"}
    nxt = client.post("/v1/plans", json=TINY, headers=key).json()
    again = client.post("/v1/plans", json=TINY, headers=key)
    assert again.json()["job_id"] == nxt["job_id"] and again.headers["idempotent-replayed"]
    assert wait_for_job(client, nxt["job_id"])["status"] == DONE
    assert jobs.get(job["job_id"])["status"] == CANCELLED
    assert len([j for j in client.get("/v1/plans").json()["jobs"]
                if j["job_id"] not in (queued["job_id"], job["job_id"])]) == 1


def test_a_stopping_worker_hands_its_job_back(planner_env) -> None:
    client, jobs = planner_env["client"], planner_env["jobs"]
    first = planner_env["start_worker"]()
    job = client.post("/v1/plans", json=with_time_limit(big_scenario(), 60)).json()
    wait_for_job(client, job["job_id"], ("running",))
    first.stop()  # graceful: the job goes back to the queue at once, no lease wait
    wait_for_job(client, job["job_id"], ("queued",), timeout_s=15)
    planner_env["start_worker"]()
    wait_for_job(client, job["job_id"], ("running",), timeout_s=60)
    assert jobs.get(job["job_id"])["attempts"] == 2
    assert client.delete(f"/v1/plans/{job['job_id']}").json()["status"] == CANCELLED


def test_a_worker_joining_during_a_solve_gets_partitions_at_once(planner_env) -> None:
    """The busy worker keeps polling (paused) mid-solve, so the group rebalances while it
    solves: a job on the newcomer's partitions runs at once, and when the busy worker then
    stops, the newcomer takes its job back from the queue."""
    from streams.processor import murmur2_partition

    client, jobs = planner_env["client"], planner_env["jobs"]
    first = planner_env["start_worker"]()
    big = client.post("/v1/plans", json=with_time_limit(big_scenario(), 90)).json()
    wait_for_job(client, big["job_id"], ("running",))
    second = planner_env["start_worker"]()
    # the busy worker may still be finishing its own join
    wait_until(lambda: second.partitions, 20, "partitions for the worker that joined")
    assert not first.partitions & second.partitions
    assert jobs.get(big["job_id"])["worker_id"] == first.worker_id
    # a job keyed onto the newcomer's partitions runs while the first worker still solves
    for _ in range(40):
        small = client.post("/v1/plans", json=TINY).json()
        if murmur2_partition(small["job_id"].encode(), 4) in second.partitions:
            break
        assert client.delete(f"/v1/plans/{small['job_id']}").status_code == 200
    done = wait_for_job(client, small["job_id"], timeout_s=40)
    assert done["status"] == DONE and done["worker_id"] == second.worker_id
    assert jobs.get(big["job_id"])["status"] == "running"
    first.stop()  # hands the job back; the newcomer, idle and in the group, takes it
    job = wait_until(
        lambda: (row := jobs.get(big["job_id"]))["worker_id"] == second.worker_id and row,
        30, "the worker that joined to take the job back")
    assert job["status"] == "running" and job["attempts"] == 2
    assert client.delete(f"/v1/plans/{big['job_id']}").json()["status"] == CANCELLED


def test_a_frontier_job_plans_the_front(planner_env) -> None:
    """`plan submit --frontier` as the API sees it: a worker plans the cost-single-use front
    of tiny.yaml; the stored result has non-dominated points, the cheapest of them the
    cost-optimal end, whose cost a plain solve of the same scenario matches within the two
    solves' gaps; the report is the curve; a frontier option the API does not know is a 422
    naming it."""
    import optimizer

    client = planner_env["client"]
    bad = client.post("/v1/plans", json={"scenario": TINY, "options": {
        "frontier": {"points": 1}}})
    assert bad.status_code == 422 and "options.frontier.points" in bad.json()["message"]
    planner_env["start_worker"]()
    job = client.post("/v1/plans", json={"scenario": TINY, "options": {
        "time_limit_s": 20, "frontier": {"points": 4, "fronts": ["single_use"]}}}).json()
    done = wait_for_job(client, job["job_id"], timeout_s=240)
    assert done["status"] == DONE, done.get("error")
    assert done["summary"]["plan_status"] == "frontier"
    doc = client.get(f"/v1/plans/{job['job_id']}/result").json()
    assert doc["kind"] == "frontier"
    pts = [p for p in doc["points"] if p["front"] == "single_use"]
    assert len(pts) >= 2
    for a in pts:
        for b in pts:
            assert not (b["cost_cny"] < a["cost_cny"] - 1e-6
                        and b["single_use_grams"] < a["single_use_grams"] - 1e-6)
    cheapest = min(pts, key=lambda p: p["cost_cny"])
    assert cheapest["role"] == "cost_optimal"
    plain = optimizer.solve(optimizer.load_scenario(TINY), time_limit_s=20, baselines=False)
    assert plain.kpis is not None
    tol = ((plain.gap or 0) + (cheapest["gap"] or 0) + 1e-6) * plain.kpis["cost_cny"]["total"]
    assert abs(cheapest["cost_cny"] - plain.kpis["cost_cny"]["total"]) <= tol
    report = client.get(f"/v1/plans/{job['job_id']}/report").text
    assert "<svg" in report and "single-use" in report


def _hubs(n: int) -> dict[str, Any]:
    """tiny.yaml's hub and n - 1 copies of it 0.05° apart: n hub groups for the planner."""
    import copy

    raw = copy.deepcopy(TINY)
    base = copy.deepcopy(raw)
    for k in range(2, n + 1):
        hub = {**base["hubs"][0], "hub_id": f"H0{k}", "lon": base["hubs"][0]["lon"] + 0.05 * k}
        raw["hubs"].append(hub)
        for v in base["villages"]:
            raw["villages"].append({**v, "village_id": v["village_id"].replace("H01", f"H0{k}"),
                                    "hub_id": f"H0{k}", "lon": v["lon"] + 0.05 * k})
        for key in ("demand", "outstanding_waste"):
            raw[key] += [{**d, "village_id": d["village_id"].replace("H01", f"H0{k}")}
                         for d in base[key]]
        raw["container_pools"] += [{**p, "hub_id": f"H0{k}"} for p in base["container_pools"]]
    return raw


def test_a_frontier_jobs_hubs_are_spread_over_the_workers(planner_env) -> None:
    """`plan submit --frontier` with two workers in the group: the job's hubs become parts
    on plan-requests and in the store, and the idle worker takes some (from the store at
    once, whichever partitions their requests are on) while the job's own worker runs the
    others; the front is the one `plan frontier` solves in one process, and the parts are
    in no list of jobs, and deleted once read."""
    from optimizer.frontier import solve_frontier

    client, jobs = planner_env["client"], planner_env["jobs"]
    a = planner_env["start_worker"]()
    b = planner_env["start_worker"]()
    wait_until(lambda: a.partitions and b.partitions, 60, "both workers to hold partitions")
    raw = _hubs(4)
    job = client.post("/v1/plans", json={"scenario": raw, "options": {
        "time_limit_s": 30, "mip_gap": 1e-6,
        "frontier": {"points": 4, "fronts": ["single_use"]}}}).json()
    done = wait_for_job(client, job["job_id"], timeout_s=300)
    assert done["status"] == DONE, done.get("error")
    doc = client.get(f"/v1/plans/{job['job_id']}/result").json()
    ran_by = doc["stats"]["hubs_ran_by"]
    assert sorted(ran_by) == ["H01", "H02", "H03", "H04"]
    assert set(ran_by.values()) == {a.worker_id, b.worker_id}, ran_by
    import optimizer

    local = solve_frontier(optimizer.load_scenario(raw), points=4, fronts=("single_use",),
                           mip_gap=1e-6, threads=1)
    want = sorted((p.role, p.cost_cny, p.criterion()) for p in local.points)
    got = sorted((p["role"], p["cost_cny"], p["single_use_grams"]) for p in doc["points"])
    assert len(got) == len(want)
    for (r1, c1, g1), (r2, c2, g2) in zip(got, want, strict=True):
        assert r1 == r2 and c1 == pytest.approx(c2, rel=1e-5) and g1 == pytest.approx(g2,
                                                                                     rel=1e-5)
    listed = client.get("/v1/plans").json()["jobs"]
    assert [r["job_id"] for r in listed] == [job["job_id"]]
    # read into the job's result, the parts (a hub's plans each) are gone from the store
    assert not [r for r in jobs.list(None, 50) if r["source"] == "frontier-part"]
