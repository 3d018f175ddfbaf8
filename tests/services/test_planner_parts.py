"""A frontier job's hubs as parts in the job store (`services.planner.parts`), against a real
SQLite store: the job's own solve runs every part nobody else takes, reads back a part
another worker finished, takes over a part whose worker stopped renewing its lease, and
the fronts it returns are the ones solved in this process. Other workers taking parts over
the broker: tests/integration/test_planner_service.py."""

from __future__ import annotations

import threading

import pytest

import optimizer
from optimizer.frontier import solve_frontier
from optimizer.frontier_hubs import hub_front_from_json, hub_front_json
from services.planner.parts import (
    PART_SOURCE,
    SharedHubTasks,
    parent_ended,
    part_name,
    run_part,
)
from services.planner.store import CANCELLED, DONE, QUEUED, JobStore
from tests.helpers import wait_until
from tests.optimizer.test_frontier import _two_hubs


@pytest.fixture(scope="module")
def two_hubs():
    return optimizer.load_scenario(_two_hubs())


def _points(f):
    return sorted((p.front, p.role, round(p.cost_cny, 4), round(p.criterion(), 4))
                  for p in f.points)


def test_a_hub_front_survives_json(two_hubs) -> None:
    """What a part stores is what the job's solve reads back: every field, tuples as
    tuples (the bounds compare them)."""
    import json

    heard = []

    def record(s, tasks, workers, on_hub):
        from optimizer.frontier_hubs import run_hub_tasks

        out = run_hub_tasks(s, tasks, 1, on_hub)
        heard.extend(out)
        return out

    solve_frontier(two_hubs, points=3, fronts=("single_use",), mip_gap=1e-6, threads=1,
                   run_tasks=record)
    assert len(heard) == 2
    for fronts in heard:
        for f in fronts:
            back = hub_front_from_json(json.loads(json.dumps(hub_front_json(f))))
            assert back == f
            assert all(isinstance(x, tuple) for x in back.lines + back.steps)


@pytest.mark.slow
def test_the_jobs_own_solve_runs_every_part_nobody_takes(two_hubs, tmp_path) -> None:
    """No other worker: both hubs' parts are created, announced, claimed and run here; the
    front equals the one solved without the store, and each part ends done as this worker's
    with its hub's fronts stored."""
    url = f"sqlite:///{tmp_path}/plans.db"
    store = JobStore(url)
    job = store.create({}, {"frontier": {"points": 3}}, "api", "ops")
    assert store.claim(job, "w1", 20.0)
    announced: list[list[str]] = []
    shared = SharedHubTasks(url, job, "w1", 20.0, announced.append)
    f = solve_frontier(two_hubs, points=3, fronts=("single_use",), mip_gap=1e-6, threads=1,
                       run_tasks=shared)
    local = solve_frontier(two_hubs, points=3, fronts=("single_use",), mip_gap=1e-6,
                           threads=1)
    assert _points(f) == _points(local)
    assert len(announced) == 1 and len(announced[0]) == 2
    assert shared.ran_by == {"H01": "w1", "H02": "w1"}
    for pid in announced[0]:
        row = store.get(pid, columns=("result",))
        assert row["source"] == PART_SOURCE and row["status"] == DONE
        assert row["worker_id"] == "w1"
        assert row["name"] in (part_name(job, "H01"), part_name(job, "H02"))
        assert row["result"]["hub"] == row["name"].split("/")[-1]
    # the parts are the job's insides: not in the planner's job metrics
    snap = store.metrics_snapshot()
    assert snap["counts"][DONE] == 0 and snap["duration_count"] == 0
    assert snap["last_summary"] is None
    store.close()


def _remote(url: str, scenario, stop: threading.Event, *, finish: bool,
            taken: list[str]) -> None:
    """Another worker: claims the first part it sees; with `finish` runs it and stores its
    result, without it holds the claim and stops renewing (a worker that died)."""
    store = JobStore(url)
    try:
        while not stop.is_set():
            for row in store.list(QUEUED, 10):
                full = store.get(row["job_id"])
                if full["source"] != PART_SOURCE or not store.claim(row["job_id"], "w2", 1.5):
                    continue
                taken.append(full["name"])
                if finish:
                    store.finish(row["job_id"], "w2", DONE,
                                 result=run_part(scenario, full["options"]))
                return
            stop.wait(0.01)
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("finish", [True, False], ids=["finished_there", "worker_died"])
def test_a_part_another_worker_takes(two_hubs, tmp_path, finish) -> None:
    """One part is claimed by another worker. Finished there, its stored result is read
    back and the job's front is unchanged; held by a worker that stops renewing its lease,
    the job's solve takes it over once the lease expires and runs it itself."""
    url = f"sqlite:///{tmp_path}/plans.db"
    store = JobStore(url)
    job = store.create({}, {}, "api", "ops")
    stop, taken = threading.Event(), []
    other = threading.Thread(target=_remote, args=(url, two_hubs, stop),
                             kwargs={"finish": finish, "taken": taken})
    def announce(ids: list[str]) -> None:
        other.start()  # and the part is taken before this process looks at its parts
        wait_until(lambda: bool(taken), 30, "the other worker to claim a part")

    shared = SharedHubTasks(url, job, "w1", 20.0, announce)
    f = solve_frontier(two_hubs, points=3, fronts=("single_use",), mip_gap=1e-6, threads=1,
                       run_tasks=shared)
    stop.set()
    other.join(30)
    local = solve_frontier(two_hubs, points=3, fronts=("single_use",), mip_gap=1e-6,
                           threads=1)
    assert _points(f) == _points(local)
    hub = taken[0].split("/")[-1]
    assert shared.ran_by[hub] == ("w2" if finish else "w1")
    store.close()


@pytest.mark.slow
def test_a_part_that_fails_is_tried_again_once(tmp_path, two_hubs) -> None:
    """A part another worker failed (killed, out of memory) is queued again and, run here,
    the front is whole; a part that fails again fails the job with its reason and cancels
    its parts still live, and the job's stats name no worker for a hub."""
    url = f"sqlite:///{tmp_path}/plans.db"
    store = JobStore(url)
    job = store.create({}, {}, "api", "ops")

    def fail(pid: str) -> None:
        assert store.claim(pid, "w2", 30.0)
        store.finish(pid, "w2", "failed", error="the solver process exited with code -9")

    shared = SharedHubTasks(url, job, "w1", 20.0, lambda ids: fail(ids[0]))
    f = solve_frontier(two_hubs, points=3, fronts=("single_use",), mip_gap=1e-6, threads=1,
                       run_tasks=shared)
    local = solve_frontier(two_hubs, points=3, fronts=("single_use",), mip_gap=1e-6,
                           threads=1)
    assert _points(f) == _points(local)
    assert set(shared.ran_by.values()) == {"w1"}

    job1 = store.create({}, {}, "api", "ops")
    stop, failed = threading.Event(), []

    def keep_failing(ids: list[str]) -> None:
        fail(ids[0])  # the first time; then each time it is queued again

        def again() -> None:
            while not stop.is_set():
                if store.get(ids[0])["status"] == QUEUED and store.claim(ids[0], "w2", 30.0):
                    store.finish(ids[0], "w2", "failed", error="ValueError: boom")
                    failed.append(ids[0])
                    return
                stop.wait(0.005)

        threading.Thread(target=again, daemon=True).start()

    shared = SharedHubTasks(url, job1, "w1", 20.0, keep_failing)
    try:
        with pytest.raises(RuntimeError, match="failed on w2: ValueError: boom"):
            solve_frontier(two_hubs, points=3, fronts=("single_use",), mip_gap=1e-6,
                           threads=1, run_tasks=shared)
    finally:
        stop.set()
    assert failed and shared.ran_by == {}
    parts = [r for r in store.list(None, 20) if r["source"] == PART_SOURCE
             and r["name"].startswith(job1)]
    assert {r["status"] for r in parts} <= {CANCELLED, "failed", DONE}
    assert "failed" in {r["status"] for r in parts}
    assert not [r for r in parts if r["status"] in (QUEUED, "running")]


def test_a_cancelled_job_cancels_its_parts(tmp_path) -> None:
    """Cancelling a job cancels its live parts (in the same transaction), a part of an
    ended job is not worth starting, another job's parts are untouched, and an idle
    worker finds queued parts in the store."""
    store = JobStore(f"sqlite:///{tmp_path}/plans.db")
    job2 = store.create({}, {}, "api", "ops")
    a = store.create({}, {"frontier_part": {"parent": job2}}, PART_SOURCE, None,
                     name=part_name(job2, "H01"))
    b = store.create({}, {"frontier_part": {"parent": job2}}, PART_SOURCE, None,
                     name=part_name(job2, "H02"))
    assert store.claim(b, "w2", 30.0)
    assert not parent_ended(store, {"frontier_part": {"parent": job2}})
    assert store.cancel(job2)
    assert store.get(a)["status"] == CANCELLED and store.get(b)["status"] == CANCELLED
    assert not store.renew(b, "w2", 30.0)  # its worker stops at its next renewal
    assert parent_ended(store, {"frontier_part": {"parent": job2}})
    # another job's parts are untouched
    job3 = store.create({}, {}, "api", "ops")
    c = store.create({}, {"frontier_part": {"parent": job3}}, PART_SOURCE, None,
                     name=part_name(job3, "H01"))
    store.cancel_parts(job2, "again")
    assert store.get(c)["status"] == QUEUED
    assert store.queued_parts(5) == [c]
    store.close()


@pytest.mark.slow
def test_a_worker_runs_a_part_on_its_jobs_scenario_and_skips_an_ended_jobs(tmp_path) -> None:
    """A worker that takes a part solves the hub on the job's scenario (the part stores
    none), stores the hub's fronts and publishes nothing (the job publishes); a part whose
    job has ended is cancelled without a solve."""
    from optimizer.frontier_hubs import hub_plan
    from services.planner import PlannerWorker
    from services.planner.parts import part_options
    from streams.kafka import KafkaConnection
    from streams.topics import Topics
    from tests.services.helpers import FakeKafkaIO

    raw = _two_hubs()
    s = optimizer.load_scenario(raw)
    first = optimizer.solve(s, mip_gap=1e-6, baselines=False, marginals=False)
    store = JobStore(f"sqlite:///{tmp_path}/p.db")
    kafka = FakeKafkaIO()
    topics = Topics("t-")
    worker = PlannerWorker(store, KafkaConnection(), topics, kafka_io=kafka)
    job = store.create(raw, {"frontier": {"points": 3}}, "api", "ops")
    assert store.claim(job, "elsewhere", 60.0)
    task = (None, "H02", ("single_use",), hub_plan(first.plan, "H02"), first.bound, 3, None,
            None, 1e-6, 1)
    part = store.create({}, part_options(job, task), PART_SOURCE, None,
                        name=part_name(job, "H02"))
    worker.process(part)
    row = store.get(part, columns=("result",))
    assert row["status"] == DONE, row["error"]
    [front] = [hub_front_from_json(d) for d in row["result"]["fronts"]]
    assert front.hub == "H02" and front.cost_end.cost > 0
    assert row["published"] == 1 and not kafka.records.get(topics.plan_results)
    assert store.cancel(job)
    late = store.create({}, part_options(job, task), PART_SOURCE, None,
                        name=part_name(job, "H02"))
    worker.process(late)
    row = store.get(late)
    assert row["status"] == CANCELLED and row["started_at"] is not None
    assert row["finished_at"] - row["started_at"] < 5  # no solve
    store.close()


@pytest.mark.slow
def test_a_worker_runs_a_frontier_job_through_parts(tmp_path) -> None:
    """A worker alone runs a frontier job of two hubs: it announces both parts on
    plan-requests, runs them itself, stores the front with which worker solved each hub,
    and deletes the parts once read."""
    from services.planner import PlannerWorker
    from streams.kafka import KafkaConnection
    from streams.topics import Topics
    from tests.services.helpers import FakeKafkaIO

    store = JobStore(f"sqlite:///{tmp_path}/p.db")
    kafka, topics = FakeKafkaIO(), Topics("t-")
    worker = PlannerWorker(store, KafkaConnection(), topics, kafka_io=kafka)
    job = store.create(_two_hubs(), {"time_limit_s": 60, "mip_gap": 1e-6, "frontier": {
        "points": 3, "fronts": ["single_use"], "point_time_limit_s": 10}}, "api", "ops")
    worker.process(job)
    row = store.get(job, columns=("result",))
    assert row["status"] == DONE, row["error"]
    assert row["result"]["stats"]["hubs_ran_by"] == {"H01": worker.worker_id,
                                                     "H02": worker.worker_id}
    announced = kafka.records[topics.plan_requests]
    assert len(announced) == 2
    assert not [r for r in store.list(None, 20) if r["source"] == PART_SOURCE]
    store.close()


def test_a_frontier_summary_has_a_plans_keys_and_its_cheapest_points_bound() -> None:
    """On plan-results a frontier job's summary had no `bound` (the API added it as null):
    it is the cost-optimal end's, from its gap."""
    from services.planner.app import PlanSummary
    from services.planner.worker import frontier_summary

    summary = frontier_summary({"kind": "frontier", "points": [
        {"cost_cny": 120.0, "co2e_kg": 9.0, "single_use_grams": 10.0, "gap": 0.1},
        {"cost_cny": 100.0, "co2e_kg": 10.0, "single_use_grams": 50.0, "gap": 0.02}]})
    assert set(PlanSummary.model_fields) <= set(summary)
    assert summary["objective"] == 100.0 and summary["gap"] == 0.02
    assert summary["bound"] == pytest.approx(98.0)
