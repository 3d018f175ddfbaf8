"""A frontier job's hubs as parts that every planner worker can take.

Why: solved hub by hub (`optimizer.frontier_hubs`), a county front is twenty independent
tasks of a minute or more each, and a frontier job ran them all in the one worker that
claimed it while the other workers sat idle. Now the job's solve puts each hub's task in the
job store as a *part* (a job of source ``frontier-part``, named ``<job id>/<hub>``) and
announces it on plan-requests, like any job; whichever worker is free claims it.

The job's own worker takes part in the same way: it claims parts from the store, largest
hub first, for its own process pool, and waits for the rest. With no other worker running,
it simply runs them all; a part whose worker dies (its lease expires) is claimed again,
here or elsewhere. Claims are the store's atomic ones, so a part is never run twice to its
end, and the first result stored is the one used. A part is cancelled with its job, and a
part whose job has ended is never started (`parent_ended`).

Each part carries its hub's task: the hub, its slice of the planner's plan
(`optimizer.frontier_hubs.hub_plan`), its budget and the front's deadline; its scenario is
the job's, read from the job's row. Its result is the hub's fronts as JSON
(`optimizer.frontier_hubs.hub_front_json`).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from services.planner.store import (  # noqa: F401 - PART_SOURCE, part_name: re-exported
    CANCELLED,
    DONE,
    FAILED,
    FINAL,
    PART_SOURCE,
    QUEUED,
    RUNNING,
    JobStore,
    part_name,
)

log = logging.getLogger("packloop.planner")

#: how often the job's solve looks at its parts (and takes one when a process is free)
POLL_S = 0.25


def parent_of(options: dict[str, Any]) -> str | None:
    """The job a part belongs to (None: not a part)."""
    part = options.get("frontier_part")
    return None if not part else str(part["parent"])


def part_options(parent: str, task: tuple[Any, ...]) -> dict[str, Any]:
    """A hub task (`optimizer.frontier_hubs.hub_task`'s arguments) as a part's options; its
    time limit is what is left to the front's deadline (the worker's lease and hard limit
    follow it)."""
    (_s, hub, fronts, plan, cost_bound, points, budget_s, deadline, mip_gap, threads) = task
    out: dict[str, Any] = {
        "frontier_part": {"parent": parent, "hub": hub, "fronts": list(fronts), "plan": plan,
                          "cost_bound": cost_bound, "points": points, "budget_s": budget_s,
                          "deadline": deadline, "mip_gap": mip_gap, "threads": threads},
        "threads": threads}
    if deadline is not None:  # without one, the worker's default time limit
        out["time_limit_s"] = max(1.0, deadline - time.time())
    return out


def task_of(options: dict[str, Any]) -> tuple[Any, ...]:
    """The inverse of `part_options`: the hub task (its scenario left to the worker)."""
    p = options["frontier_part"]
    return (None, p["hub"], tuple(p["fronts"]), p["plan"], p["cost_bound"], p["points"],
            p["budget_s"], p["deadline"], p["mip_gap"], p["threads"])


def part_result(hub: str, fronts: list[Any]) -> dict[str, Any]:
    """What a part stores: its hub's fronts as JSON, read back by the job's solve."""
    from optimizer.frontier_hubs import hub_front_json

    return {"kind": "frontier_part", "hub": hub, "fronts": [hub_front_json(f) for f in fronts]}


def run_part(scenario: Any, options: dict[str, Any]) -> dict[str, Any]:
    """A part's solves, in a worker's solve process: the result stored for the job's solve."""
    from optimizer.frontier_hubs import hub_fronts

    task = task_of(options)
    return part_result(task[1], hub_fronts(scenario, *task[1:]))


def _hub_task_with_fronts(task: tuple[Any, ...]) -> list[Any]:
    from optimizer.frontier_hubs import hub_task

    return hub_task(task)


@dataclass
class SharedHubTasks:
    """`optimizer.frontier_hubs.TaskRunner` over the job store: run in the frontier job's
    solve process. `announce(ids)` puts the parts' requests on plan-requests (the worker,
    which holds the Kafka producer, does it); `worker_id` and `lease_s` are the job's
    worker's, whose claims these are."""

    store_url: str
    job_id: str
    worker_id: str
    lease_s: float
    announce: Callable[[list[str]], None]
    poll_s: float = POLL_S
    task: Callable[[tuple[Any, ...]], list[Any]] = _hub_task_with_fronts
    #: which worker ran each part (by hub), for the job's stats
    ran_by: dict[str, str] = field(default_factory=dict)

    def __call__(self, s: Any, tasks: list[tuple[Any, ...]], workers: int,
                 on_hub: Any = None) -> list[list[Any]]:
        from optimizer.planner import worker_pool

        store = JobStore(self.store_url)
        try:
            # a job started again (its worker died) drops its earlier parts: their budgets
            # and deadline were the first run's
            store.cancel_parts(self.job_id, "the frontier job was started again")
            ids = [store.create({}, part_options(self.job_id, t), PART_SOURCE, None,
                                name=part_name(self.job_id, t[1])) for t in tasks]
            try:
                self.announce(ids)
            except Exception as exc:  # noqa: BLE001 - the parts are run here then
                log.warning("frontier %s: parts not announced (%s); run by this worker",
                            self.job_id, exc)
            try:
                with worker_pool(s, max(1, workers)) as pool:
                    results = self._wait(store, pool, ids, tasks, max(1, workers), on_hub)
            except BaseException as exc:
                # the job's solve ends here: its parts still queued or running end with it,
                # so that no worker starts or goes on with what nobody will read (these ids
                # only: a newer attempt of the job has parts of its own)
                self.ran_by.clear()
                store.cancel_jobs(ids, f"its frontier job's solve ended: "
                                       f"{type(exc).__name__}: {exc}")
                raise
            return [results[k] for k in range(len(ids))]
        finally:
            store.close()

    def _wait(self, store: JobStore, pool: Any, ids: list[str], tasks: list[tuple[Any, ...]],
              slots: int, on_hub: Any) -> dict[int, list[Any]]:
        """Every part's fronts, by task: read back where another worker finished them, run
        in `pool` (`slots` at a time) where this process can claim them."""
        results: dict[int, list[Any]] = {}
        running: dict[cf.Future, int] = {}
        retried: set[int] = set()
        renew_every = max(0.5, self.lease_s / 4)
        next_renew = time.monotonic() + renew_every
        while len(results) < len(ids):
            states = store.states(ids)
            for k, pid in enumerate(ids):
                if k in results or k in running.values():
                    continue
                fronts = self._settled(store, k, pid, states.get(pid), tasks[k][1], retried)
                if fronts is not None:
                    results[k] = fronts
                    if on_hub is not None:
                        on_hub(tasks[k][1], len(results), len(ids))
                elif (len(running) < slots and _claimable(states[pid])
                      and store.claim(pid, self.worker_id, self.lease_s)):
                    running[pool.submit(self.task, tasks[k])] = k
            if len(results) == len(ids):
                break
            done, _ = cf.wait(list(running), timeout=self.poll_s,
                              return_when=cf.FIRST_COMPLETED)
            for f in done:
                k = running.pop(f)
                # a hub's failure ends the job's wait now; whoever finished first (a
                # take-over after a stall) wins: the next round reads the stored result back
                store.finish(ids[k], self.worker_id, DONE,
                             result=part_result(tasks[k][1], f.result()),
                             summary={"plan_status": "frontier_part"})
            if time.monotonic() >= next_renew:
                next_renew = time.monotonic() + renew_every
                for k in running.values():
                    store.renew(ids[k], self.worker_id, self.lease_s)
        return results

    def _settled(self, store: JobStore, k: int, pid: str, state: dict[str, Any] | None,
                 hub: str, retried: set[int]) -> list[Any] | None:
        """A part's fronts if it is done; None while it is queued or running (or queued
        again after a worker's failure, once); raises where it cannot end well."""
        from optimizer.frontier_hubs import HubFrontError, hub_front_from_json

        if state is None:
            raise RuntimeError(f"frontier part {pid} was deleted")
        status, error = state["status"], state["error"]
        if status == DONE:
            row = store.get(pid, columns=("result",))
            assert row is not None
            self.ran_by[hub] = str(row["worker_id"])
            return [hub_front_from_json(d) for d in row["result"]["fronts"]]
        if status == FAILED:
            if (error or "").startswith("HubFrontError"):
                raise HubFrontError(error)
            if k in retried or not store.requeue_failed(pid):
                raise RuntimeError(f"frontier part {hub} failed on {state['worker_id']}: "
                                   f"{error}")
            # a worker's failure (killed, out of memory, an older version that cannot read
            # a part) is tried once more, by whoever is free, before it fails the job
            retried.add(k)
            log.warning("frontier %s: part %s failed on %s (%s); tried again", self.job_id,
                        hub, state["worker_id"], error)
        elif status == CANCELLED:
            raise RuntimeError(f"frontier part {hub} was cancelled")
        return None


def _claimable(state: dict[str, Any]) -> bool:
    """Queued, or running under a lease that has expired (the store's claim decides; this
    spares it an UPDATE per part still held by a live worker, every poll)."""
    return state["status"] == QUEUED or (
        state["status"] == RUNNING and (state["lease_expires_at"] or 0) < time.time())


def parent_ended(store: JobStore, options: dict[str, Any]) -> bool:
    """Whether a part's job has ended (or is gone): then the part is not worth running."""
    parent = parent_of(options)
    if parent is None:
        return False
    row = store.get(parent)
    return row is None or row["status"] in FINAL
