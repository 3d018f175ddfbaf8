"""The plan job store: the jobs' table (and which job holds a name planned once, such as
a dispatch date), SQLite by default, PostgreSQL with a URL (SQLAlchemy).

Every state change is a conditional UPDATE, so concurrent workers (and the API's
cancel) never overwrite each other:

* claim:  queued → running, or running with an expired lease → running (take-over);
* renew:  only the lease holder, only while running (a cancel or take-over ends it);
* finish: only while running — the first run to finish wins, a duplicate run's
  result is discarded, a cancelled job stays cancelled;
* cancel: only queued or running jobs.
"""

from __future__ import annotations

import builtins
import math
import secrets
import time
from collections.abc import Iterable
from typing import Any, cast

import orjson
from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    select,
    update,
)

from services.db import create_tables, make_engine

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
STATUSES = (QUEUED, RUNNING, DONE, FAILED, CANCELLED)
FINAL = (DONE, FAILED, CANCELLED)

metadata = MetaData()

plan_jobs = Table(
    "plan_jobs",
    metadata,
    Column("job_id", String(40), primary_key=True),
    Column("status", String(16), nullable=False, index=True),
    Column("name", Text, nullable=True),
    Column("source", String(16), nullable=False),
    Column("submitted_by", String(128), nullable=True),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("finished_at", Float, nullable=True),
    Column("scenario", Text, nullable=False),
    Column("options", Text, nullable=False),
    Column("inputs", Text, nullable=True),
    Column("progress", Text, nullable=True),
    Column("worker_id", String(128), nullable=True),
    Column("lease_expires_at", Float, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    Column("result", Text, nullable=True),
    Column("report", Text, nullable=True),
    Column("summary", Text, nullable=True),
    Column("published", Integer, nullable=False, default=0),
)

#: which job holds a name that must be planned once (a dispatch date): the primary key makes
#: two creators of the same name exclusive on every database, where looking for the name
#: and then inserting let four concurrent POST /v1/dispatch make four jobs of one date
plan_job_names = Table(
    "plan_job_names",
    metadata,
    Column("source", String(16), primary_key=True),
    Column("name", String(255), primary_key=True),
    Column("job_id", String(40), nullable=False),
)

#: the job an ``Idempotency-Key`` created, per planner: a client that sends POST /v1/plans
#: again after a timeout (it cannot know whether the first got through) gets that job back
#: instead of a second solve of the same request
plan_idempotency_keys = Table(
    "plan_idempotency_keys",
    metadata,
    Column("owner", String(128), primary_key=True),
    Column("idem_key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("job_id", String(40), nullable=False, index=True),
    Column("created_at", Float, nullable=False, index=True),
)

#: the source of a frontier job's parts (`services.planner.parts`), each named
#: `part_name(job id, hub)`: the store cancels, lists and deletes a job's parts by them
PART_SOURCE = "frontier-part"
#: the daily dispatch's jobs (`services.planner.daily`), named DISPATCH_JOB_PREFIX + date
DISPATCH_SOURCE = "dispatch"
DISPATCH_JOB_PREFIX = "dispatch "


def part_name(job_id: str, hub: str) -> str:
    return f"{job_id}/{hub}"


#: how long a key holds its job; a key sent again later starts a new job (Stripe keeps
#: keys 24 hours, the IETF draft leaves it to the server)
IDEMPOTENCY_TTL_S = 24 * 3600.0

DURATION_BUCKETS = (1, 2, 5, 10, 30, 60, 120, 300, 600, 1200, 3600)


class KeyReused(Exception):
    """An ``Idempotency-Key`` already used for a different request (another body)."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id)
        self.job_id = job_id


def _loads(text: str | None) -> Any:
    return orjson.loads(text) if text else None


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY).decode()


def _text(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters (SQLite can): both stores drop them."""
    return value.replace("\x00", "") if value else value


def clean_json(obj: Any) -> Any:
    """JSON has no inf/NaN: they become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean_json(v) for v in obj]
    return obj


def _parts_of(job_id: str) -> Any:
    """The rows of ``job_id``'s frontier parts."""
    return (plan_jobs.c.source == PART_SOURCE) & plan_jobs.c.name.startswith(
        part_name(job_id, ""), autoescape=True)


def _cancelled(which: Any, reason: str | None = None) -> Any:
    """The UPDATE that cancels the rows ``which`` selects while they are queued or
    running (a final job stays as it ended), with ``reason`` as their error if given."""
    values: dict[str, Any] = {"status": CANCELLED, "finished_at": time.time(),
                              "lease_expires_at": None}
    if reason is not None:
        values["error"] = _text(reason)
    return update(plan_jobs).where(which, plan_jobs.c.status.in_([QUEUED, RUNNING])).values(
        **values)


class JobStore:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        create_tables(self.engine, metadata)

    def __repr__(self) -> str:
        return f"JobStore({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        self.engine.dispose()

    # -- API side ------------------------------------------------------------------------

    @staticmethod
    def _new_job(job_id: str, scenario: dict[str, Any], options: dict[str, Any], source: str,
                 submitted_by: str | None, name: str | None, inputs: dict[str, Any] | None,
                 created_at: float | None = None) -> Any:
        """The INSERT of a new queued job (every way of creating one goes through it)."""
        return plan_jobs.insert().values(
            job_id=job_id, status=QUEUED, name=_text(name), source=source,
            submitted_by=submitted_by,
            created_at=time.time() if created_at is None else created_at,
            scenario=_dumps(scenario), options=_dumps(options),
            inputs=_dumps(inputs) if inputs else None, attempts=0, published=0,
        )

    def create(self, scenario: dict[str, Any], options: dict[str, Any], source: str,
               submitted_by: str | None, name: str | None = None,
               inputs: dict[str, Any] | None = None) -> str:
        job_id = "plan-" + secrets.token_hex(8)
        with self.engine.begin() as conn:
            conn.execute(self._new_job(job_id, scenario, options, source, submitted_by, name,
                                       inputs))
        return job_id

    def create_once(self, scenario: dict[str, Any], options: dict[str, Any], source: str,
                    submitted_by: str | None, name: str,
                    inputs: dict[str, Any] | None = None) -> tuple[str, bool]:
        """(job id, whether created now): a new job called ``name``, unless a job of that
        name is live (queued, running or done) — one creator wins however many race, on
        SQLite and PostgreSQL alike (`plan_job_names`). A failed or cancelled job's name
        passes to the new job."""
        from sqlalchemy.exc import IntegrityError

        for _attempt in range(3):
            held = self.holder(source, name)
            if held is not None:
                return held, False
            try:
                return self._claim_name(scenario, options, source, submitted_by, name,
                                        inputs)
            except IntegrityError:
                continue  # another creator took the name meanwhile: its job is the one
        held = self.holder(source, name)
        if held is None:
            raise RuntimeError(f"job name {name!r} of {source} is contended; try again")
        return held, False

    def _claim_name(self, scenario: dict[str, Any], options: dict[str, Any], source: str,
                    submitted_by: str | None, name: str, inputs: dict[str, Any] | None
                    ) -> tuple[str, bool]:
        """Inside one transaction: the name's row and its job's status are read, a live
        holder is returned as it is, and otherwise the row is inserted (or moved from a
        failed or cancelled job by compare-and-swap) with the new job. A creator that read
        "no holder" before another committed finds that job here, not a row to take over."""
        from sqlalchemy.exc import IntegrityError

        key = (plan_job_names.c.source == source) & (plan_job_names.c.name == name)
        job_id = "plan-" + secrets.token_hex(8)
        with self.engine.begin() as conn:
            row = conn.execute(
                select(plan_job_names.c.job_id, plan_jobs.c.status)
                .select_from(plan_job_names.outerjoin(
                    plan_jobs, plan_jobs.c.job_id == plan_job_names.c.job_id))
                .where(key)).first()
            if row is None:
                conn.execute(plan_job_names.insert().values(source=source, name=name,
                                                            job_id=job_id))
            elif row.status not in (None, FAILED, CANCELLED):
                return str(row.job_id), False
            elif conn.execute(update(plan_job_names).where(
                    key, plan_job_names.c.job_id == row.job_id).values(
                    job_id=job_id)).rowcount != 1:
                raise IntegrityError("name taken meanwhile", None, Exception())
            conn.execute(self._new_job(job_id, scenario, options, source, submitted_by, name,
                                       inputs))
        return job_id, True

    def holder(self, source: str, name: str) -> str | None:
        """The live job holding ``name`` (queued, running or done), if any."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(plan_jobs.c.job_id)
                .select_from(plan_job_names.join(
                    plan_jobs, plan_jobs.c.job_id == plan_job_names.c.job_id))
                .where(plan_job_names.c.source == source, plan_job_names.c.name == name,
                       plan_jobs.c.status.not_in([FAILED, CANCELLED]))).first()
        if row is not None:
            return str(row.job_id)
        # a store written before plan_job_names: the newest live job of that name
        for job in self.named(source, name):
            if job["status"] not in (FAILED, CANCELLED):
                return str(job["job_id"])
        return None

    def keyed(self, owner: str, key: str, fingerprint: str,
              now: float | None = None) -> str | None:
        """The live job ``owner``'s ``key`` created for the same request, if any; raises
        :class:`KeyReused` when the key is live for another request."""
        now = time.time() if now is None else now
        k = plan_idempotency_keys.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(k.job_id, k.fingerprint)
                .select_from(plan_idempotency_keys.join(
                    plan_jobs, plan_jobs.c.job_id == k.job_id))
                .where(k.owner == owner, k.idem_key == key,
                       k.created_at > now - IDEMPOTENCY_TTL_S)).first()
        if row is None:
            return None
        if row.fingerprint != fingerprint:
            raise KeyReused(str(row.job_id))
        return str(row.job_id)

    def create_keyed(self, scenario: dict[str, Any], options: dict[str, Any], source: str,
                     owner: str, key: str, fingerprint: str, name: str | None = None,
                     inputs: dict[str, Any] | None = None,
                     now: float | None = None) -> tuple[str, bool]:
        """(job id, whether created now) for ``owner``'s ``key``: the job the key made for
        the same request while the key is live (:data:`IDEMPOTENCY_TTL_S`), else a new
        job, the key's row and the job inserted in one transaction, so of two requests
        racing with one key one job is made and the other gets it. Raises
        :class:`KeyReused` when the key is live for another request."""
        from sqlalchemy.exc import IntegrityError

        k = plan_idempotency_keys.c
        where = (k.owner == owner) & (k.idem_key == key)
        with self.engine.begin() as conn:  # keys past their time hold nothing: forget them
            conn.execute(plan_idempotency_keys.delete().where(
                k.created_at <= (time.time() if now is None else now) - IDEMPOTENCY_TTL_S))
        for _attempt in range(3):
            now_ = time.time() if now is None else now
            job_id = "plan-" + secrets.token_hex(8)
            try:
                with self.engine.begin() as conn:
                    old = conn.execute(
                        select(k.job_id, k.fingerprint, k.created_at,
                               plan_jobs.c.job_id.label("live"))
                        .select_from(plan_idempotency_keys.outerjoin(
                            plan_jobs, plan_jobs.c.job_id == k.job_id))
                        .where(where)).first()
                    if (old is not None and old.live is not None
                            and old.created_at > now_ - IDEMPOTENCY_TTL_S):
                        if old.fingerprint != fingerprint:
                            raise KeyReused(str(old.job_id))
                        return str(old.job_id), False
                    if old is not None:  # past its time, or its job is gone: the key is free
                        conn.execute(plan_idempotency_keys.delete().where(
                            where, k.job_id == old.job_id))
                    conn.execute(plan_idempotency_keys.insert().values(
                        owner=owner, idem_key=key, fingerprint=fingerprint, job_id=job_id,
                        created_at=now_))
                    conn.execute(self._new_job(job_id, scenario, options, source, owner, name,
                                               inputs, now_))
            except IntegrityError:
                continue  # another request with this key won: its job is the one
            return job_id, True
        held = self.keyed(owner, key, fingerprint)
        if held is None:
            raise RuntimeError(f"Idempotency-Key {key!r} is contended; try again")
        return held, False

    def unqueued(self, job_id: str, reason: str) -> None:
        """A keyed job that could not be announced: failed with ``reason`` (kept, not
        deleted: a retry of its request may already have been answered with it) and its
        key freed, so the next retry makes a new job."""
        with self.engine.begin() as conn:
            conn.execute(update(plan_jobs).where(
                plan_jobs.c.job_id == job_id, plan_jobs.c.status == QUEUED).values(
                status=FAILED, error=_text(reason), finished_at=time.time()))
            conn.execute(plan_idempotency_keys.delete().where(
                plan_idempotency_keys.c.job_id == job_id))

    def delete(self, job_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(plan_jobs.delete().where(plan_jobs.c.job_id == job_id))
            conn.execute(plan_job_names.delete().where(plan_job_names.c.job_id == job_id))
            conn.execute(plan_idempotency_keys.delete().where(
                plan_idempotency_keys.c.job_id == job_id))

    def get(self, job_id: str, columns: tuple[str, ...] = ()) -> dict[str, Any] | None:
        """The job's row; the large columns (scenario, result, report, inputs) only on request."""
        light = [c for c in plan_jobs.c if c.name not in
                 ("scenario", "result", "report", "inputs")]
        extra = [plan_jobs.c[name] for name in columns]
        with self.engine.connect() as conn:
            row = conn.execute(select(*light, *extra).where(plan_jobs.c.job_id == job_id)).first()
        if row is None:
            return None
        job = dict(row._mapping)
        for key in ("options", "progress", "summary", "scenario", "result", "inputs"):
            if key in job:
                job[key] = _loads(job[key])
        return job

    def list(self, status: str | None = None, limit: int = 50, *,
             owner: str | None = None,
             shared_sources: Iterable[str] = ()) -> builtins.list[dict[str, Any]]:
        """Newest first. With ``owner``: only the jobs ``owner`` submitted, and those of
        ``shared_sources`` (every planner's to read); without: every job."""
        query = select(plan_jobs.c.job_id, plan_jobs.c.status, plan_jobs.c.name,
                       plan_jobs.c.source, plan_jobs.c.created_at, plan_jobs.c.finished_at)
        if status:
            query = query.where(plan_jobs.c.status == status)
        if owner is not None:
            query = query.where((plan_jobs.c.submitted_by == owner)
                                | plan_jobs.c.source.in_(builtins.list(shared_sources)))
        query = query.order_by(plan_jobs.c.created_at.desc()).limit(limit)
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def named(self, source: str, name: str) -> builtins.list[dict[str, Any]]:
        """Jobs of ``source`` called ``name``, newest first (the daily dispatch looks up
        its date's job this way, so a date is planned once however many schedulers run)."""
        query = select(plan_jobs.c.job_id, plan_jobs.c.status, plan_jobs.c.created_at) \
            .where(plan_jobs.c.source == source, plan_jobs.c.name == name) \
            .order_by(plan_jobs.c.created_at.desc())
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def cancel(self, job_id: str) -> bool:
        """Cancel a queued or running job, and the parts of it still live (a frontier job's
        hubs, `services.planner.parts`)."""
        with self.engine.begin() as conn:
            result = conn.execute(_cancelled(plan_jobs.c.job_id == job_id))
            if result.rowcount:  # in the same transaction: a cancel is all or nothing
                conn.execute(_cancelled(_parts_of(job_id), "its frontier job was cancelled"))
        return bool(result.rowcount)

    def cancel_parts(self, job_id: str, reason: str) -> int:
        """Cancel ``job_id``'s parts that are queued or running (their workers' next lease
        renewal fails, and they stop); how many."""
        with self.engine.begin() as conn:
            return int(conn.execute(_cancelled(_parts_of(job_id), reason)).rowcount)

    def cancel_jobs(self, job_ids: Iterable[str], reason: str) -> int:
        """Cancel those of ``job_ids`` that are queued or running, with ``reason``."""
        with self.engine.begin() as conn:
            return int(conn.execute(_cancelled(
                plan_jobs.c.job_id.in_(builtins.list(job_ids)), reason)).rowcount)

    def requeue_failed(self, job_id: str) -> bool:
        """A failed job queued again (a frontier part whose worker failed it, tried once
        more); False if it is not failed."""
        with self.engine.begin() as conn:
            return bool(conn.execute(
                update(plan_jobs)
                .where(plan_jobs.c.job_id == job_id, plan_jobs.c.status == FAILED)
                .values(status=QUEUED, worker_id=None, lease_expires_at=None, error=None,
                        finished_at=None, published=0)).rowcount)

    def queued_parts(self, limit: int = 1) -> builtins.list[str]:
        """Queued frontier parts, oldest first: an idle worker takes them from here at
        once (`PlannerWorker.take_part`), since their requests may sit on a busy worker's
        partitions."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(plan_jobs.c.job_id).where(
                plan_jobs.c.status == QUEUED, plan_jobs.c.source == PART_SOURCE)
                .order_by(plan_jobs.c.created_at).limit(limit))
            return [r.job_id for r in rows]

    def delete_parts(self, job_id: str) -> int:
        """Delete ``job_id``'s parts once the job has its result: each holds its hub's plans
        (about 1 MB a county-week hub), read by the job's solve and by nobody after."""
        with self.engine.begin() as conn:
            return int(conn.execute(plan_jobs.delete().where(
                _parts_of(job_id), plan_jobs.c.status.in_(FINAL))).rowcount)

    def states(self, job_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Status, worker, lease and error of each of ``job_ids`` (one query; absent: gone)."""
        ids = builtins.list(job_ids)
        with self.engine.connect() as conn:
            rows = conn.execute(select(
                plan_jobs.c.job_id, plan_jobs.c.status, plan_jobs.c.worker_id,
                plan_jobs.c.lease_expires_at, plan_jobs.c.error,
            ).where(plan_jobs.c.job_id.in_(ids)))
            return {r.job_id: dict(r._mapping) for r in rows}

    # -- worker side ---------------------------------------------------------------------

    def claim(self, job_id: str, worker_id: str, lease_s: float) -> bool:
        now = time.time()
        with self.engine.begin() as conn:
            result = conn.execute(
                update(plan_jobs)
                .where(
                    plan_jobs.c.job_id == job_id,
                    (plan_jobs.c.status == QUEUED)
                    | ((plan_jobs.c.status == RUNNING) & (plan_jobs.c.lease_expires_at < now)),
                )
                .values(status=RUNNING, worker_id=worker_id, lease_expires_at=now + lease_s,
                        started_at=func.coalesce(plan_jobs.c.started_at, now),
                        attempts=plan_jobs.c.attempts + 1)
            )
        return bool(result.rowcount)

    def renew(self, job_id: str, worker_id: str, lease_s: float,
              progress: dict[str, Any] | None = None) -> bool:
        values: dict[str, Any] = {"lease_expires_at": time.time() + lease_s}
        if progress is not None:
            values["progress"] = _dumps(clean_json(progress))
        with self.engine.begin() as conn:
            result = conn.execute(
                update(plan_jobs)
                .where(plan_jobs.c.job_id == job_id, plan_jobs.c.worker_id == worker_id,
                       plan_jobs.c.status == RUNNING)
                .values(**values)
            )
        return bool(result.rowcount)

    def finish(self, job_id: str, worker_id: str, status: str, *,
               result: dict[str, Any] | None = None, report: str | None = None,
               error: str | None = None, summary: dict[str, Any] | None = None,
               progress: dict[str, Any] | None = None) -> bool:
        """Record the outcome unless the job is no longer running (first finish wins), with
        the solve's last progress: a solve quicker than one lease renewal had none stored."""
        assert status in (DONE, FAILED)
        values: dict[str, Any] = {}
        if progress is not None:
            values["progress"] = _dumps(clean_json(progress))
        with self.engine.begin() as conn:
            outcome = conn.execute(
                update(plan_jobs)
                .where(plan_jobs.c.job_id == job_id, plan_jobs.c.status == RUNNING)
                .values(status=status, finished_at=time.time(), worker_id=worker_id,
                        lease_expires_at=None, error=_text(error),
                        result=_dumps(clean_json(result)) if result is not None else None,
                        report=_text(report),
                        summary=_dumps(clean_json(summary)) if summary is not None else None,
                        **values)
            )
        return bool(outcome.rowcount)

    def release(self, job_id: str, worker_id: str) -> bool:
        """A worker shutting down hands its running job back (queued again, at once)."""
        with self.engine.begin() as conn:
            result = conn.execute(
                update(plan_jobs)
                .where(plan_jobs.c.job_id == job_id, plan_jobs.c.worker_id == worker_id,
                       plan_jobs.c.status == RUNNING)
                .values(status=QUEUED, worker_id=None, lease_expires_at=None, progress=None)
            )
        return bool(result.rowcount)

    def expired(self) -> builtins.list[str]:
        """Running jobs whose worker stopped renewing its lease."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(plan_jobs.c.job_id).where(
                plan_jobs.c.status == RUNNING, plan_jobs.c.lease_expires_at < time.time()))
            return [r.job_id for r in rows]

    def stale_queued(self, created_before: float) -> builtins.list[str]:
        """Queued jobs created before ``created_before`` (time.time()), oldest first: their
        plan request was lost, or waits behind a busy worker (see `PlannerWorker.sweep`)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(plan_jobs.c.job_id).where(
                plan_jobs.c.status == QUEUED, plan_jobs.c.created_at < created_before)
                .order_by(plan_jobs.c.created_at))
            return [r.job_id for r in rows]

    def unpublished(self) -> builtins.list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(plan_jobs.c.job_id).where(
                plan_jobs.c.status.in_([DONE, FAILED]), plan_jobs.c.published == 0))
            return [r.job_id for r in rows]

    def mark_published(self, job_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(plan_jobs).where(plan_jobs.c.job_id == job_id)
                         .values(published=1))

    # -- metrics -------------------------------------------------------------------------

    def metrics_snapshot(self) -> dict[str, Any]:
        """Counts, durations and the newest summary of the jobs people submit: a frontier
        job's parts (`services.planner.parts`) are its insides, not jobs of their own."""
        own = plan_jobs.c.source != PART_SOURCE
        with self.engine.connect() as conn:
            counts = {s: 0 for s in STATUSES}
            # the untyped table's rows unpack as object: say what the columns hold
            by_status = conn.execute(
                select(plan_jobs.c.status, func.count()).where(own).group_by(plan_jobs.c.status)
            )
            for status, n in cast("Iterable[tuple[str, int]]", by_status):
                counts[status] = n
            duration = plan_jobs.c.finished_at - plan_jobs.c.started_at
            finished = own & (plan_jobs.c.status == DONE) & plan_jobs.c.started_at.is_not(None)
            buckets = []
            for le in DURATION_BUCKETS:
                upto = conn.execute(select(func.count()).where(finished, duration <= le)).scalar()
                buckets.append((le, int(upto or 0)))
            total, total_sum = cast("tuple[int, float]", conn.execute(
                select(func.count(), func.coalesce(func.sum(duration), 0.0)).where(finished)
            ).one())  # an aggregate without GROUP BY: always exactly one row
            last = conn.execute(
                select(plan_jobs.c.finished_at, plan_jobs.c.summary)
                .where(own, plan_jobs.c.status == DONE)
                .order_by(plan_jobs.c.finished_at.desc()).limit(1)
            ).first()
            # the latest date planned (names end in the ISO date), not the last to finish:
            # a catch-up of an earlier date may finish after tomorrow's. A failed one counts
            # too: then no hub of its scenario has a plan for that date.
            dispatch = conn.execute(
                select(plan_jobs.c.job_id, plan_jobs.c.name, plan_jobs.c.status,
                       plan_jobs.c.summary)
                .where(plan_jobs.c.source == DISPATCH_SOURCE,
                       plan_jobs.c.status.in_((DONE, FAILED)))
                .order_by(plan_jobs.c.name.desc(), plan_jobs.c.finished_at.desc()).limit(1)
            ).first()
            without_plan: list[str] = []
            if dispatch is not None and dispatch.status == FAILED:
                scenario = _loads(conn.execute(select(plan_jobs.c.scenario).where(
                    plan_jobs.c.job_id == dispatch.job_id)).scalar()) or {}
                without_plan = sorted(h["hub_id"] for h in scenario.get("hubs") or [])
            elif dispatch is not None:
                without_plan = sorted((_loads(dispatch.summary) or {}).get("left_out") or {})
        return {
            "counts": counts,
            "duration_buckets": buckets,
            "duration_count": int(total or 0),
            "duration_sum": float(total_sum or 0.0),
            "last_success": last.finished_at if last else None,
            "last_summary": _loads(last.summary) if last else None,
            "last_dispatch": {"name": dispatch.name, "without_plan": without_plan}
            if dispatch else None,
        }
