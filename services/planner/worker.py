"""Planner workers: consume ``plan-requests`` in a consumer group and run each job once.

* A job message carries only its id; the scenario and the outcome live in the job store.
* The offset is committed only after the outcome is stored (and published), so a
  worker that dies mid-job leaves the message to the partition's next owner.
* The store's conditional updates make the job run to completion once: a second
  delivery of a finished job is skipped; so is a job whose worker is alive (it renews a
  lease every few seconds); a job whose worker died (lease expired) is claimed again.
  A sweeper in every idle worker re-queues jobs whose lease expired (their message may
  be committed already), and publishes finished results that never reached plan-results.
* The solve runs in a child process group: a cancel (DELETE) ends the lease renewal,
  and the worker kills the solve at once.
* While a job runs, the worker keeps polling with its partitions paused (the usual Kafka
  pattern for long work), so a worker joining or leaving the group rebalances it within a
  poll instead of waiting for the solve to end. A partition that moves away mid-job is
  harmless: its next owner finds the job running under a live lease and skips it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson

from services.auth.signing import signed_headers
from services.db import iso_utc
from services.http.kafka_io import KafkaIO, LiveKafkaIO, Record, close_quietly
from services.planner.dispatch import DISPATCH_PURPOSE
from services.planner.parts import PART_SOURCE, parent_ended, parent_of
from services.planner.runner import SolveProcess
from services.planner.store import CANCELLED, DONE, FAILED, FINAL, RUNNING, JobStore
from streams import KafkaConnection, Topics

log = logging.getLogger("packloop.planner.worker")

MAX_RESULT_MESSAGE_BYTES = 900_000
#: kept back from a job's time limit (its wall clock from start to stored result) for
#: storing and publishing the result
STORE_S = 0.5


def default_worker_id() -> str:
    """Unique per worker object: the store's leases and conditional updates tell workers
    apart by this id, and `packloop planner --workers N` builds N workers in one process
    and one thread, so neither a process nor a thread id will do."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def summarise(result: dict[str, Any]) -> dict[str, Any]:
    """Objective, gap and the KPIs of the joint plan and its baselines (for metrics, status)."""

    def kpi(k: dict[str, Any] | None) -> dict[str, Any] | None:
        if not k:
            return None
        return {
            "cost_cny": (k.get("cost_cny") or {}).get("total"),
            "co2e_kg": (k.get("co2e_kg") or {}).get("total"),
            "single_use_grams": k.get("single_use_grams"),
            "km": k.get("km"),
            "trips": k.get("trips"),
        }

    kpis = {"joint": kpi(result.get("kpis"))}
    for name, base in (result.get("baselines") or {}).items():
        kpis[name] = kpi(base.get("kpis"))
    return {
        "plan_status": result.get("status"),
        "objective": result.get("objective"),
        "bound": result.get("bound"),
        "gap": result.get("gap"),
        "trips": len(result.get("trips") or []),
        "kpis": {k: v for k, v in kpis.items() if v is not None},
        # a dispatch plan's hubs without a plan (their data admit none): the metric and
        # alert that tell the county, beside the hub's own "no plan" run sheet
        "left_out": dict((result.get("stats") or {}).get("left_out") or {}),
    }


#: attempts of a job whose solve process is killed by a signal (each attempt killed)
#: before it fails: one retry, as a frontier part a worker failed gets
KILLED_SOLVE_ATTEMPTS = 2


def frontier_summary(result: dict[str, Any]) -> dict[str, Any]:
    """A frontier job's summary: its points, and the cost-optimal end as the objective, with
    its bound (from its gap: the summary has every key of a plan's, on the plan-results
    topic as in the API, which added a missing `bound` as null)."""
    points = result.get("points") or []
    cheapest = min(points, key=lambda p: p["cost_cny"], default=None)
    gap = cheapest.get("gap") if cheapest else None
    bound = None if cheapest is None or gap is None else cheapest["cost_cny"] * (1.0 - gap)
    return {"plan_status": "frontier", "objective": cheapest and cheapest["cost_cny"],
            "bound": bound, "gap": gap, "trips": None, "left_out": {},
            "kpis": {f"point {k}": {"cost_cny": p["cost_cny"], "co2e_kg": p["co2e_kg"],
                                    "single_use_grams": p["single_use_grams"]}
                     for k, p in enumerate(points)}}


def failure_reason(result: dict[str, Any], time_limit_s: float | None) -> str | None:
    """Why a finished solve is a failed job (None when it produced a plan)."""
    if result.get("kind") == "frontier_part":
        return None  # the hub's fronts; a hub that failed raised instead
    if result.get("kind") == "frontier":
        return None if result.get("points") else (
            "no point of the front found a plan within its time limit")
    status = result.get("status")
    if result.get("trips") is not None and status in ("optimal", "feasible", "time_limit") \
            and result.get("objective") is not None:
        return None
    why = "; ".join(f"{d.get('what')}: {d.get('why')}" for d in result.get("diagnosis") or [])
    if status == "infeasible":
        return "infeasible: " + (why or "no plan satisfies the scenario's constraints")
    if status == "time_limit":
        return f"no feasible plan found within the time limit ({time_limit_s} s)" + (
            f": {why}" if why else "")
    return f"the solver ended with status {status!r} and no plan"


#: how long a worker may hold no plan-requests partition before it says so (a group join
#: takes seconds on Kafka, up to about 20 s on the embedded broker)
UNASSIGNED_WARN_S = 60.0


class PlannerWorker:
    def __init__(
        self,
        store: JobStore,
        kafka: KafkaConnection,
        topics: Topics,
        group_id: str = "packloop-planner",
        worker_id: str | None = None,
        lease_s: float = 20.0,
        default_time_limit_s: float = 120.0,
        threads: int = 1,
        on_event: Callable[[str, str], None] | None = None,
        kafka_io: KafkaIO | None = None,
        signing_pepper: str | None = None,
        stale_after_s: float | None = None,
    ) -> None:
        self.store = store
        #: the server secret the run sheets are signed with (`services.auth.signing`)
        self.signing_pepper = signing_pepper
        self.kafka = kafka
        self.topics = topics
        self.group_id = group_id
        self.worker_id = worker_id or default_worker_id()
        self.lease_s = lease_s
        self.default_time_limit_s = default_time_limit_s
        self.threads = threads
        self.on_event = on_event or (lambda _job, _what: None)
        #: publishes plan-results and re-queues jobs; plan-requests are consumed directly
        self.kafka_io = kafka_io or LiveKafkaIO(kafka, produce_timeout_s=10.0,
                                                client_id="packloop-planner")
        self.assigned = threading.Event()
        self.partitions: frozenset[int] = frozenset()  # plan-requests partitions held now
        self.stop_event = threading.Event()
        self.current: str | None = None
        #: a queued job older than this is taken from the store by an idle worker (`sweep`)
        self.stale_after_s = stale_after_s if stale_after_s is not None else 3 * lease_s
        self._last_sweep = 0.0
        self._kafka_consumer: Any = None
        #: since when the worker has held no plan-requests partition (None: it holds some)
        self._unassigned_since: float | None = time.monotonic()
        self._warned = False

    def check_assignment(self, now: float) -> str | None:
        """A warning, once a spell, when the worker has held no partition for
        `UNASSIGNED_WARN_S` (from its start, or since it lost its last one): then requests
        reach it only through the job store's sweep (`stale_after_s`)."""
        if self.partitions:
            self._unassigned_since, self._warned = None, False
            return None
        if self._unassigned_since is None:
            self._unassigned_since = now
        if self._warned or now - self._unassigned_since < UNASSIGNED_WARN_S:
            return None
        self._warned = True
        return (f"planner worker {self.worker_id}: no partition of "
                f"{self.topics.plan_requests} assigned for {UNASSIGNED_WARN_S:.0f} s (group "
                f"{self.group_id}). That is normal when more workers than partitions share "
                "the group; otherwise the group is stuck (seen on the embedded broker after "
                "a member was killed: restart the workers). Jobs still reach an idle worker "
                f"from the job store once queued for {self.stale_after_s:.0f} s.")

    # -- one job ---------------------------------------------------------------------------

    def process(self, job_id: str) -> None:
        """Bring ``job_id`` to a final state (or leave it to its live owner)."""
        while not self.stop_event.is_set():
            job = self.store.get(job_id)
            if job is None:
                log.warning("plan request for unknown job %s (skipped)", job_id)
                return
            if job["status"] in FINAL:
                if job["status"] in (DONE, FAILED) and not job["published"]:
                    self.publish(job_id)
                return
            if job["status"] == RUNNING and (job["lease_expires_at"] or 0) > time.time():
                # another worker holds a live lease: never run twice, and do not sit waiting
                # (if that worker dies, its lease expires and the sweeper re-queues the job)
                log.info("job %s: running on %s, skipped", job_id, job["worker_id"])
                return
            if self.store.claim(job_id, self.worker_id, self.lease_s):
                self.run(job_id)
                return

    def run(self, job_id: str) -> None:
        job = self.store.get(job_id, columns=("scenario",))
        assert job is not None
        options = dict(job["options"] or {})
        options.setdefault("time_limit_s", self.default_time_limit_s)
        options.setdefault("threads", self.threads)
        scenario = job["scenario"]
        parent = parent_of(options)
        if parent is not None:
            # a frontier job's part: its scenario is the job's, and a part whose job has
            # ended is not worth a solve
            row = self.store.get(parent, columns=("scenario",))
            if row is None or row["status"] in FINAL:
                self.store.cancel(job_id)
                log.info("job %s: part of %s, which has ended; cancelled", job_id, parent)
                return
            scenario = row["scenario"]
        elif options.get("frontier"):
            # its hubs become parts that any worker may take (services.planner.parts); the
            # solve process claims them for itself too, as this worker
            options["_parts"] = {"store_url": self.store.url, "job_id": job_id,
                                 "worker_id": self.worker_id, "lease_s": self.lease_s}
        attempt = job["attempts"]
        log.info("job %s: started on %s (attempt %d)", job_id, self.worker_id, attempt)
        self.on_event(job_id, "started")
        self.current = job_id
        deadline = time.time() + float(options["time_limit_s"]) - STORE_S
        solve = SolveProcess(scenario, options, deadline=deadline)
        hard_limit = time.monotonic() + float(options["time_limit_s"]) * 3 + 180
        renew_every = max(0.5, self.lease_s / 4)
        next_renew = time.monotonic() + renew_every
        progress: dict[str, Any] | None = None
        outcome: tuple[Any, ...] | None = None
        started = time.monotonic()
        try:
            while outcome is None:
                self._stay_in_group()
                for msg in solve.messages(0.15):
                    if msg[0] == "progress":
                        progress = msg[1]
                    elif msg[0] == "enqueue":
                        self._announce(job_id, msg[1])
                    else:
                        outcome = msg
                if outcome is None and not solve.alive():
                    for msg in solve.messages(0.2):  # the last words, if any
                        if msg[0] == "progress":
                            progress = msg[1]
                        elif msg[0] == "enqueue":
                            self._announce(job_id, msg[1])
                        elif msg[0] in ("result", "error"):
                            outcome = msg
                    if outcome is None:
                        code = solve.exitcode
                        if code is not None and code < 0 and attempt < KILLED_SOLVE_ATTEMPTS:
                            # killed by a signal (the OOM killer's SIGKILL, an operator):
                            # not the scenario's doing, so tried again, as a job whose
                            # worker died is; a job failed at once before (an outside audit)
                            self._requeue(job_id, f"its solve process was killed (signal "
                                                  f"{-code}) on attempt {attempt}")
                            return
                        outcome = ("error", f"the solver process exited with code {code} "
                                            "without a result"
                                   + (f" (killed, attempt {attempt})" if code is not None
                                      and code < 0 else ""), "")
                    break
                if self.stop_event.is_set():
                    # Leave the consumer group before the job is offered again: the embedded
                    # broker (Tansu) keeps a group's leader after it left in the middle of a
                    # rebalance, so a worker that joined before this one left would never
                    # get a partition and the handed-back job would stay queued.
                    self._leave_group()
                    self._requeue(job_id, "worker stopping, solve abandoned")
                    return
                if time.monotonic() >= next_renew:
                    next_renew = time.monotonic() + renew_every
                    if progress is not None:
                        progress["elapsed_s"] = time.monotonic() - started
                    if parent is not None and parent_ended(self.store, options):
                        # a part whose job ended (killed, failed, handed back): nobody will
                        # read its result
                        self.store.cancel_jobs([job_id], f"its frontier job {parent} ended")
                        log.info("job %s: part of %s, which has ended; solve stopped",
                                 job_id, parent)
                        self.on_event(job_id, "cancelled")
                        return
                    if not self.store.renew(job_id, self.worker_id, self.lease_s, progress):
                        now = self.store.get(job_id)
                        state = now["status"] if now else "deleted"
                        log.info("job %s: %s; solve stopped", job_id,
                                 "cancelled" if state == CANCELLED else f"no longer ours ({state})")
                        self.on_event(job_id, "cancelled" if state == CANCELLED else "lost")
                        return
                if time.monotonic() > hard_limit:
                    outcome = ("error", "the solve overran its time limit by far and was killed",
                               "")
        finally:
            self.current = None
            solve.close()
            if "_parts" in options:
                self._end_parts(job_id)
        if progress is not None:
            progress["elapsed_s"] = time.monotonic() - started
        self._record(job_id, outcome, options, progress)

    def _requeue(self, job_id: str, why: str) -> None:
        """Hand the running job back (queued again, announced on plan-requests)."""
        released = self.store.release(job_id, self.worker_id)
        log.warning("job %s: %s%s", job_id, why, " and the job queued again" if released else "")
        if released:
            try:
                self.enqueue(job_id)
            except Exception:  # noqa: BLE001 - the uncommitted message remains
                pass

    def _end_parts(self, job_id: str) -> None:
        """A frontier job's solve has ended, however: its parts still queued or running on
        other workers are cancelled (they stop at their next renewal), and the finished
        ones, read already, deleted."""
        try:
            n = self.store.cancel_parts(job_id, "its frontier job's solve ended")
            self.store.delete_parts(job_id)
        except Exception as exc:  # noqa: BLE001 - parts of an ended job stop on their own
            log.warning("job %s: its parts not cleared (%s)", job_id, exc)
            return
        if n:
            log.info("job %s: %d frontier parts still live, cancelled", job_id, n)

    def _announce(self, job_id: str, part_ids: list[str]) -> None:
        """Plan requests for a frontier job's parts: a failed send leaves them to this job's
        own solve process (which takes parts as its processes free up) and to idle workers'
        sweeps."""
        try:
            errors = self.kafka_io.produce([
                Record(self.topics.plan_requests, p.encode(), orjson.dumps({"job_id": p}))
                for p in part_ids])
            error = next((e for e in errors if e is not None), None)
        except Exception as exc:  # noqa: BLE001 - see the docstring
            error = exc
        if error is not None:
            log.warning("job %s: its parts' requests not sent (%s)", job_id, error)
        else:
            log.info("job %s: %d frontier parts announced", job_id, len(part_ids))

    def _record(self, job_id: str, outcome: tuple[Any, ...], options: dict[str, Any],
                progress: dict[str, Any] | None) -> None:
        if outcome[0] == "result":
            result, html = outcome[1], outcome[2]
            reason = failure_reason(result, options.get("time_limit_s"))
            status = DONE if reason is None else FAILED
            kind = result.get("kind")
            summary = (frontier_summary(result) if kind == "frontier"
                       else {"plan_status": kind} if kind == "frontier_part"
                       else summarise(result))
            stored = self.store.finish(job_id, self.worker_id, status, result=result,
                                       report=html, error=reason, summary=summary,
                                       progress=progress)
        else:
            reason = outcome[1]
            stored = self.store.finish(job_id, self.worker_id, FAILED, error=reason,
                                       progress=progress)
            status = FAILED
        if stored:
            log.info("job %s: %s%s", job_id, status, f" ({reason})" if reason else "")
            self.on_event(job_id, status)
            self.publish(job_id)
        else:
            log.info("job %s: finished, but the job was already final (result discarded)",
                     job_id)
            self.on_event(job_id, "discarded")

    def publish(self, job_id: str) -> None:
        """The job's plan-results message and, for a dispatch plan that produced a plan,
        its run sheets on the dispatch topic: marked published once all are written."""
        job = self.store.get(job_id, columns=("result",))
        if job is None or job["status"] not in (DONE, FAILED):
            return
        if job["source"] == PART_SOURCE:  # a frontier job's inside: its job publishes
            self.store.mark_published(job_id)
            return
        sheets = self.dispatch_records(job)
        message: dict[str, Any] = {
            "job_id": job_id,
            "status": job["status"],
            "name": job["name"],
            "finished_at": iso_utc(job["finished_at"]),
            "worker_id": job["worker_id"],
            "error": job["error"],
            "summary": job["summary"],
            "result": job["result"],
        }
        value = orjson.dumps(message)
        if len(value) > MAX_RESULT_MESSAGE_BYTES:
            message["result"] = None
            message["result_truncated"] = True
            value = orjson.dumps(message)
        errors = self.kafka_io.produce(
            [*sheets, Record(self.topics.plan_results, job_id.encode(), value)])
        error = next((e for e in errors if e is not None), None)
        if error is None:
            self.store.mark_published(job_id)
        else:
            log.warning("job %s: result not published yet (%s); the sweeper retries", job_id,
                        error)

    def dispatch_records(self, job: dict[str, Any]) -> list[Record]:
        """One record per hub (key ``hub_id``) when ``job`` is a finished dispatch plan: every
        hub of the network the job was submitted for (its options' ``dispatch.hubs``; a job
        queued before they were recorded: the scenario's), those the plan leaves out with an
        empty sheet and the containers they held (the job's inputs)."""
        spec = (job.get("options") or {}).get("dispatch")
        if not spec or job["status"] != DONE or not job.get("result"):
            return []
        from datetime import date, time

        from services.planner.dispatch import run_sheets

        full = self.store.get(job["job_id"], columns=("scenario", "inputs"))
        try:
            assert full is not None
            sheets = run_sheets(
                full["scenario"], job["result"], date.fromisoformat(spec["date"]),
                job_id=job["job_id"], timezone=spec["timezone"],
                shift_start=time.fromisoformat(spec["shift_start"]),
                planned_at=iso_utc(job["finished_at"]), hubs=spec.get("hubs"),
                containers=(full.get("inputs") or {}).get("container_pools"))
        except Exception:  # a plan the sheets cannot be cut from must not stall the worker
            log.exception("job %s: no run sheets for the dispatch of %s", job["job_id"],
                          spec.get("date"))
            return []
        out = []
        for sheet in sheets:
            if sheet.no_plan:
                # the job succeeded for the other hubs: said here, or nobody hears of it
                log.warning("job %s: the dispatch of %s has no plan for hub %s: %s",
                            job["job_id"], spec.get("date"), sheet.hub_id, sheet.no_plan)
            value = sheet.model_dump_json().encode()
            out.append(Record(self.topics.dispatch, sheet.hub_id.encode(), value,
                              signed_headers(self.signing_pepper, DISPATCH_PURPOSE, value)))
        return out

    # -- the loop ----------------------------------------------------------------------------

    def sweep(self) -> None:
        """Re-queue jobs whose worker died after its message was committed; publish leftovers;
        run the oldest job queued for longer than `stale_after_s` (this worker is idle when
        it sweeps). Its plan request was lost — the embedded broker restarted empty under
        it, or the API stored the job and its send failed — and it stayed queued for good
        (15 minutes, seen; a dispatch job so blocks its date), or it waits behind a busy
        worker's partition. The job store's claim is atomic, so a request that arrives after
        all finds the job taken and skips it."""
        for job_id in self.store.expired():
            log.info("job %s: lease expired, re-queued", job_id)
            self.enqueue(job_id)
        for job_id in self.store.unpublished():
            self.publish(job_id)
        stale = self.store.stale_queued(time.time() - self.stale_after_s)
        if stale and not self.stop_event.is_set():
            log.info("job %s: queued for over %.0f s without its request reaching a free "
                     "worker; taken from the job store", stale[0], self.stale_after_s)
            self.process(stale[0])

    def take_part(self) -> bool:
        """An idle worker takes a queued frontier part from the store at once: a part's
        request may sit on the partitions of the worker running its job, which reads none
        while busy, and waiting for the sweep (`stale_after_s`) left half a two-worker
        deployment's parts to the job's own worker (the review of the parts' commit)."""
        try:
            ids = self.store.queued_parts(1)
        except Exception as exc:  # noqa: BLE001 - the sweep and the requests still come
            log.info("planner worker: queued parts not read: %s", exc)
            return False
        if not ids or self.stop_event.is_set():
            return False
        self.process(ids[0])
        return True

    def enqueue(self, job_id: str) -> None:
        self.kafka_io.produce([Record(self.topics.plan_requests, job_id.encode(),
                                      orjson.dumps({"job_id": job_id}))])

    def _consumer(self) -> Any:
        from kafka import KafkaConsumer
        from kafka.consumer.subscription_state import ConsumerRebalanceListener

        worker = self

        class Listener(ConsumerRebalanceListener):
            def on_partitions_revoked(self, revoked: Any) -> None:
                worker.partitions -= {tp.partition for tp in revoked}

            def on_partitions_assigned(self, assigned: Any) -> None:
                worker.partitions |= {tp.partition for tp in assigned}
                worker.assigned.set()
                if worker.current is not None and worker._kafka_consumer is not None:
                    worker._kafka_consumer.pause(*assigned)  # busy: fetch nothing yet

        consumer = KafkaConsumer(
            group_id=self.group_id,
            client_id=f"packloop-planner-{self.worker_id}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=1,
            session_timeout_ms=self.kafka.session_timeout_ms,
            heartbeat_interval_ms=max(500, self.kafka.session_timeout_ms // 3),
            fetch_max_wait_ms=self.kafka.fetch_max_wait_ms,
            # Kafka's default; a running job polls too (see _stay_in_group), so a solve of
            # any length stays within it, and a hung worker is still dropped from the group
            max_poll_interval_ms=300_000,
            **self.kafka.kafka_python_kwargs(),
        )
        consumer.subscribe([self.topics.plan_requests], listener=Listener())
        return consumer

    def run_forever(self) -> None:
        from kafka.structs import OffsetAndMetadata

        from services.planner.runner import warm_up

        try:
            warm_up()  # before the first job, not inside its time limit
        except Exception as exc:  # noqa: BLE001 - the first job starts it then
            log.warning("planner worker: fork server not started ahead (%s: %s)",
                        type(exc).__name__, exc)
        consumer = None
        while not self.stop_event.is_set():
            try:
                if consumer is None:
                    consumer = self._kafka_consumer = self._consumer()
                if time.monotonic() - self._last_sweep > self.lease_s / 2:
                    self._last_sweep = time.monotonic()
                    self.sweep()
                    if self.stop_event.is_set():
                        break  # stopped during a job the sweep ran: its consumer is closed
                    # a job run by the sweep paused every partition while it ran
                    consumer.resume(*consumer.paused())
                batches = consumer.poll(timeout_ms=500, max_records=1)
                if not batches and self.take_part():
                    consumer.resume(*consumer.paused())
                warning = self.check_assignment(time.monotonic())
                if warning is not None:
                    log.warning("%s", warning)
                for tp, records in batches.items():
                    for rec in records:
                        try:
                            job_id = orjson.loads(rec.value)["job_id"]
                        except (orjson.JSONDecodeError, KeyError, TypeError):
                            log.warning("unreadable plan request at %s:%d", tp, rec.offset)
                        else:
                            self.process(str(job_id))
                        if self.stop_event.is_set():
                            break
                        consumer.resume(*consumer.paused())
                        try:
                            consumer.commit({tp: OffsetAndMetadata(rec.offset + 1, "", -1)})
                        except Exception as exc:  # noqa: BLE001 - rebalanced away: fine
                            log.info("commit of %s:%d failed (%s); the next owner will skip "
                                     "the finished job", tp, rec.offset, exc)
            except Exception as exc:  # noqa: BLE001 - keep serving after Kafka hiccups
                log.warning("planner worker: %s: %s (retrying)", type(exc).__name__, exc)
                close_quietly(consumer)
                consumer = None
                self.stop_event.wait(2.0)
        close_quietly(consumer)
        self.kafka_io.stop()

    def _stay_in_group(self) -> None:
        """Poll with every partition paused, mid-job: heartbeats alone do not complete a
        rebalance, the member must poll to rejoin, so a worker joining during a solve gets
        its partitions within a poll instead of when the solve ends."""
        consumer = self._kafka_consumer
        if consumer is None:
            return
        try:
            consumer.pause(*consumer.assignment())
            records = consumer.poll(timeout_ms=100)
            for tp, recs in records.items():  # assigned between pause and fetch: keep them
                consumer.seek(tp, recs[0].offset)
                consumer.pause(tp)
        except Exception as exc:  # noqa: BLE001 - the solve goes on; run_forever reconnects
            log.info("planner worker: poll during a job failed: %s: %s",
                     type(exc).__name__, exc)

    def _leave_group(self) -> None:
        """Close this worker's consumer now (from its own thread, inside a solve), which
        sends LeaveGroup; `run_forever` then stops without touching it again."""
        close_quietly(self._kafka_consumer)
        self._kafka_consumer = None
        self.partitions = frozenset()

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, name=f"planner-{self.worker_id}",
                                  daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.stop_event.set()
