"""The planner job service's HTTP API (``packloop planner``).

Jobs are stored first, then announced on ``plan-requests`` (acks=all); when the
announcement fails the job is removed again and the answer is 503, so a job the
API reported as queued is always on the topic.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import httpx
import orjson
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from services.auth.guard import AuthGuard
from services.auth.tokens import TokenInfo, TokenStore
from services.db import iso_utc
from services.http.access_log import redact_access_log
from services.http.body import BODY_ERRORS, read_json
from services.http.errors import ApiError, install_error_handlers, require_token
from services.http.headers import install_security_headers
from services.http.kafka_io import KafkaIO, KafkaUnavailable, LiveKafkaIO, Record
from services.http.openapi import (
    Responses,
    add_health_routes,
    add_metrics_route,
    error,
    use_bearer_scheme,
)
from services.planner.daily import SCHEDULER, DailyDispatch, DispatchSchedule, dispatch_window
from services.planner.dispatch import CalendarDate
from services.planner.store import (
    DISPATCH_JOB_PREFIX,
    DISPATCH_SOURCE,
    DONE,
    FAILED,
    FINAL,
    IDEMPOTENCY_TTL_S,
    STATUSES,
    JobStore,
    KeyReused,
)
from streams import KafkaConnection, Network, Topics

log = logging.getLogger("packloop.planner")

JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
JobId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


@dataclass
class PlannerConfig:
    kafka: KafkaConnection
    topics: Topics
    network: Network
    tokens: TokenStore
    jobs: JobStore
    worker_url: str = "http://127.0.0.1:6066"
    worker_transport: httpx.BaseTransport | None = None
    max_request_bytes: int = 16 * 1024 * 1024
    default_time_limit_s: float = 120.0
    probe_interval_s: float = 2.0
    #: None: a LiveKafkaIO on ``kafka`` (producer and probe)
    kafka_io: KafkaIO | None = None
    #: tomorrow's dispatch (off unless ``at`` or ``every_s`` is set)
    dispatch: DispatchSchedule = field(default_factory=DispatchSchedule)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> PlannerConfig:
        from streams import load_network

        values: dict[str, Any] = dict(
            kafka=settings.kafka(), topics=settings.topics(),
            network=load_network(settings.network),
            worker_url=settings.worker_url,
            max_request_bytes=settings.planner_max_request_bytes,
            default_time_limit_s=settings.planner_time_limit_s,
            dispatch=DispatchSchedule.from_settings(settings),
        )
        values.update(overrides)
        if "tokens" not in values:
            values["tokens"] = settings.token_store()
        if "jobs" not in values:
            values["jobs"] = JobStore(settings.planner_db_url)
        return cls(**values)


# -- API models ----------------------------------------------------------------------------


class FrontierOptions(BaseModel):
    """A trade-off frontier instead of one plan (`packloop plan frontier`, as a job)."""

    model_config = ConfigDict(extra="forbid")
    points: int = Field(7, ge=2, le=25, description="Points on each front.")
    fronts: list[Literal["single_use", "co2e"]] = Field(
        default=["single_use", "co2e"], min_length=1, max_length=2,
        description="cost against single-use grams, and/or cost against CO2e.")


class PlanOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    time_limit_s: float | None = Field(None, gt=0, le=86400, description=(
        "Solver time limit; of each point's solve for a frontier."))
    mip_gap: float | None = Field(None, ge=0, le=1, description="Stop at this relative gap.")
    baselines: bool = Field(True, description="Also compute the uncoordinated baseline.")
    name: str | None = Field(None, max_length=200)
    frontier: FrontierOptions | None = Field(None, description=(
        "Plan the cost-single-use and/or cost-CO2e fronts (AUGMECON2) instead of one plan; "
        "the job's result is the frontier document, its report the curve."))


def frontier_budget_s(point_time_limit_s: float, f: FrontierOptions) -> float:
    """A frontier job's wall clock: each front's points and its lexicographic ends (solved
    as one whole-county model, or hub by hub with the hubs' own shares), and the planner's
    cost-optimal plan (optimizer.frontier.PLANNER_SHARE time limits), each at most the
    point time limit."""
    from optimizer.frontier import PLANNER_SHARE
    from optimizer.frontier_hubs import limits_per_front

    per_front = max(f.points + 1, limits_per_front(f.points))
    solves = len(f.fronts) * per_front + PLANNER_SHARE + 1
    return min(86400.0, point_time_limit_s * solves)


class Progress(BaseModel):
    incumbent: float | None = None
    bound: float | None = None
    gap: float | None = None
    elapsed_s: float | None = None
    label: str | None = None


class PlanSummary(BaseModel):
    plan_status: str | None = None
    objective: float | None = None
    bound: float | None = None
    gap: float | None = None
    trips: int | None = None
    kpis: dict[str, dict[str, float | int | None]] = Field(default_factory=dict)
    left_out: dict[str, str] = Field(default_factory=dict, description=(
        "Hubs a dispatch plan leaves out because their data admit no plan, each with why "
        "(their run sheets say so too)."))


class PlanJob(BaseModel):
    job_id: str
    status: JobStatus
    name: str | None = None
    source: str
    created_at: str = Field(description="RFC 3339, UTC.")
    started_at: str | None = Field(None, description="RFC 3339, UTC: the first run's start.")
    finished_at: str | None = Field(None, description="RFC 3339, UTC.")
    elapsed_s: float | None = Field(None, description=(
        "Running: since the first run's start; final: duration; queued: null."))
    attempts: int = Field(description="Runs started (more than 1 after a worker died).")
    worker_id: str | None = None
    progress: Progress | None = None
    error: str | None = Field(None, description="Why the job failed.")
    summary: PlanSummary | None = None
    links: dict[str, str]


class PlanList(BaseModel):
    jobs: list[dict[str, Any]]


class DispatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    date: CalendarDate = Field(description=(
        "The dispatch date to plan, YYYY-MM-DD (local): today or tomorrow."))


# -- who may see and cancel a job ----------------------------------------------------------

#: the keys of a request that wraps its scenario (or asks for one from the live state)
ENVELOPE_KEYS = frozenset({"scenario", "from_state", "options"})

#: Jobs of these sources are the county's, not one planner's: every planner token reads and
#: lists them (the dispatch plans, whose run sheets every hub gets).
SHARED_SOURCES = (DISPATCH_SOURCE,)


def can_read(job: dict[str, Any], owner: str) -> bool:
    """A planner reads the jobs it submitted (its token's owner name, so a rotated token
    keeps its jobs) and the shared ones; any other job is answered as not there."""
    return job["submitted_by"] == owner or job["source"] in SHARED_SOURCES


def can_cancel(job: dict[str, Any], owner: str) -> bool:
    """A planner cancels the jobs it submitted, and the dispatch schedule's own jobs (the
    schedule has no token of its own; a cancelled date is planned again by `POST
    /v1/dispatch` for it, not by the next daily firing, which plans the day after)."""
    return job["submitted_by"] == owner or (
        job["source"] == DISPATCH_SOURCE and job["submitted_by"] == SCHEDULER)


IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency_key(request: Request) -> str | None:
    """The request's ``Idempotency-Key``, or None; 400 naming the header when it is not
    1–255 printable ASCII characters. A structured-field string (``"…"``, as the IETF
    draft writes it) is taken without its quotes, so either spelling names one key."""
    raw = request.headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        return None
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not 1 <= len(value) <= 255 or any(not " " <= ch <= "~" for ch in value):
        raise ApiError(400, "invalid_idempotency_key",
                       f"{IDEMPOTENCY_HEADER}: must be 1–255 printable ASCII characters "
                       "(a UUID is usual)")
    return value


def request_fingerprint(body: Any) -> str:
    """What makes two submissions the same request: the body's JSON with sorted keys."""
    import hashlib

    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def first_error(exc: ValidationError, prefix: str = "",
                model: type[BaseModel] | None = None) -> str:
    """``path: message`` of a validation error's first problem; the path is ``prefix``
    itself when the problem is the whole value (``{"options": "fast"}``). A field the
    ``model`` does not have names the closest one it has (``time_limit``)."""
    import difflib

    e = exc.errors(include_url=False)[0]
    where = ".".join([*([prefix] if prefix else []), *map(str, e["loc"])]) or "body"
    message = str(e["msg"])
    if e["type"] == "extra_forbidden" and model is not None and len(e["loc"]) == 1:
        message = "not a field here"
        close = difflib.get_close_matches(str(e["loc"][0]), list(model.model_fields), 1, 0.6)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return f"{where}: {message}"


# -- metrics -------------------------------------------------------------------------------


class PlanCollector:
    """Job metrics read from the store at scrape time (the store is shared by all workers)."""

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs

    def collect(self) -> Iterator[Any]:
        snap = self.jobs.metrics_snapshot()
        current = GaugeMetricFamily("packloop_plan_jobs", "Plan jobs by current status.",
                                    labels=["status"])
        total = CounterMetricFamily(
            "packloop_plan_jobs", "Plan jobs that reached a final status (done, failed, "
            "cancelled) since the job store was created.", labels=["status"])
        for status in STATUSES:
            current.add_metric([status], snap["counts"][status])
            if status in FINAL:
                total.add_metric([status], snap["counts"][status])
        yield current
        yield total
        hist = HistogramMetricFamily(
            "packloop_plan_duration_seconds", "Run time of successful plan jobs "
            "(start of the last run to the stored result).")
        buckets = [(str(le), n) for le, n in snap["duration_buckets"]]
        buckets.append(("+Inf", snap["duration_count"]))
        hist.add_metric([], buckets, snap["duration_sum"])
        yield hist
        last = GaugeMetricFamily("packloop_plan_last_success_timestamp_seconds",
                                 "When the last successful plan was stored (Unix time).")
        if snap["last_success"] is not None:
            last.add_metric([], snap["last_success"])
        yield last
        summary = snap["last_summary"] or {}
        families = {
            "cost_cny": GaugeMetricFamily("packloop_plan_cost_cny",
                                          "Total cost of the last successful plan (CNY).",
                                          labels=["plan"]),
            "co2e_kg": GaugeMetricFamily("packloop_plan_co2e_kg",
                                         "CO2e of the last successful plan (kg).",
                                         labels=["plan"]),
            "single_use_grams": GaugeMetricFamily(
                "packloop_plan_single_use_grams",
                "Single-use packaging of the last successful plan (grams).", labels=["plan"]),
            "km": GaugeMetricFamily("packloop_plan_distance_km",
                                    "Vehicle kilometres of the last successful plan.",
                                    labels=["plan"]),
            "trips": GaugeMetricFamily("packloop_plan_trips",
                                       "Trips of the last successful plan.", labels=["plan"]),
        }
        for plan, kpis in (summary.get("kpis") or {}).items():
            for key, family in families.items():
                value = (kpis or {}).get(key)
                if value is not None:
                    family.add_metric([plan], float(value))
        yield from families.values()
        gap = GaugeMetricFamily("packloop_plan_gap_ratio",
                                "Relative MIP gap of the last successful plan.")
        if summary.get("gap") is not None:
            gap.add_metric([], float(summary["gap"]))
        yield gap
        no_plan = GaugeMetricFamily(
            "packloop_dispatch_no_plan", "1 for each hub the daily dispatch of the latest date "
            "leaves without a plan (its data admit none; every hub when it failed), labelled "
            "with that date.",
            labels=["hub", "date"])
        dispatch = snap.get("last_dispatch")
        if dispatch is not None:
            day = (dispatch["name"] or "").removeprefix(DISPATCH_JOB_PREFIX)
            for hub in dispatch["without_plan"]:
                no_plan.add_metric([hub, day], 1.0)
        yield no_plan


# -- the app -------------------------------------------------------------------------------


NOT_FOUND = "No such job, or another planner's (see `GET /v1/plans`)."

COMMON: Responses = {
    **error(400, "Malformed request."),
    **error(401, "Missing or invalid planner token."),
    **error(422, "Invalid parameters."),
}


def create_app(config: PlannerConfig) -> FastAPI:
    kafka_io = config.kafka_io or LiveKafkaIO(
        config.kafka, produce_timeout_s=5.0, client_id="packloop-planner-api",
        probe_interval_s=config.probe_interval_s)
    registry = CollectorRegistry()
    registry.register(PlanCollector(config.jobs))
    state = {"started": False}
    daily = DailyDispatch(config, kafka_io, config.dispatch)

    def start() -> None:
        if not state["started"]:
            state["started"] = True
            kafka_io.start()
            daily.start()

    def kafka_unavailable() -> str | None:
        return kafka_io.unavailable(config.kafka.connect_timeout_ms / 1000)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        start()
        try:
            yield
        finally:
            daily.stop()
            kafka_io.stop()

    app = FastAPI(
        title="packloop planner job service",
        version="1.0.0",
        description=(
            "Submit planning jobs (a scenario in the optimiser's format, or `from_state`: "
            "a scenario built from the live stream state), follow their progress, cancel "
            "them, fetch results and HTML reports. Authenticate with `Authorization: Bearer "
            "<planner token>` (`packloop planners add-token NAME`)."
        ),
        lifespan=lifespan,
    )

    install_error_handlers(app)
    install_security_headers(app)
    redact_access_log()
    app.state.auth_guard = AuthGuard("planner", "planner", registry)

    @app.middleware("http")
    async def _start(request: Request, call_next: Any) -> Response:
        start()
        return await call_next(request)

    async def planner_auth(request: Request) -> TokenInfo:
        return await require_token(request, config.tokens, "planner",
                                   "packloop planners add-token NAME", "packloop-planner")

    def job_view(job: dict[str, Any]) -> dict[str, Any]:
        jid = job["job_id"]
        elapsed = None  # queued (a job handed back keeps its first start): not running
        if job["started_at"] is not None and job["status"] != "queued":
            end = job["finished_at"] if job["status"] in FINAL and job["finished_at"] else \
                time.time()
            elapsed = max(0.0, end - job["started_at"])
        links = {"self": f"/v1/plans/{jid}", "scenario": f"/v1/plans/{jid}/scenario"}
        if job["status"] == DONE or (job["status"] == FAILED and job["summary"]):
            links["result"] = f"/v1/plans/{jid}/result"
            links["report"] = f"/v1/plans/{jid}/report"
        view = PlanJob(
            job_id=jid, status=job["status"], name=job["name"], source=job["source"],
            created_at=iso_utc(job["created_at"]) or "", started_at=iso_utc(job["started_at"]),
            finished_at=iso_utc(job["finished_at"]), elapsed_s=elapsed, attempts=job["attempts"],
            worker_id=job["worker_id"],
            progress=Progress(**job["progress"]) if job["progress"] and job["status"] in
            ("running", DONE, FAILED) else None,
            error=job["error"],
            summary=PlanSummary(**job["summary"]) if job["summary"] else None,
            links=links,
        )
        return view.model_dump()

    def get_job(job_id: str, owner: str, columns: tuple[str, ...] = ()) -> dict[str, Any]:
        """The job if ``owner`` may read it; another planner's job is a 404 like a job that
        does not exist, so job ids cannot be probed."""
        job = config.jobs.get(job_id, columns)
        if job is None or not can_read(job, owner):
            raise ApiError(404, "not_found", f"no plan job {job_id!r}")
        return job

    async def read_body_json(request: Request) -> Any:
        """The body by the rule every JSON route of both services follows (415, 413, 400
        malformed_json: :mod:`services.http.body`)."""
        _, data = await read_json(request, config.max_request_bytes)
        return data

    def prepare(body: Any) -> tuple[dict[str, Any], dict[str, Any], str, dict[str, Any] | None]:
        """(scenario, options, source, inputs) from a request body; raises ApiError."""
        import optimizer
        from services.planner.from_state import FromState, StateUnavailable, build_scenario

        if not isinstance(body, dict):
            raise ApiError(400, "bad_request", "body must be a JSON object: a scenario, "
                           "{\"scenario\": …}, or {\"from_state\": {…}}")
        if "scenario" in body or "from_state" in body:
            # the envelope: a misspelt key ("option") was dropped, and its options with it
            unknown = sorted(set(body) - ENVELOPE_KEYS)
            if unknown:
                raise ApiError(422, "invalid_request", (
                    f"{unknown[0]}: not a field of the request (it has scenario or "
                    f"from_state, and options)"))
            if "scenario" in body and "from_state" in body:
                raise ApiError(422, "invalid_request", "scenario, from_state: give one of "
                               "them, not both (nothing was planned)")
        elif "options" in body and not set(body) - ENVELOPE_KEYS:
            # options alone: an envelope without its plan, not a scenario missing seven
            # fields and having an unknown "options" (an outside audit)
            raise ApiError(422, "invalid_request", "scenario, from_state: give one of them "
                           "with the options (nothing was planned)")
        raw_options = body.get("options") if ("scenario" in body or "from_state" in body) \
            else None
        try:
            options = PlanOptions.model_validate({} if raw_options is None else raw_options)
        except ValidationError as exc:
            raise ApiError(422, "invalid_options",
                           first_error(exc, "options", PlanOptions)) from None
        opts = options.model_dump(exclude_none=True)
        opts.setdefault("time_limit_s", config.default_time_limit_s)
        if options.frontier is not None:
            opts["frontier"]["point_time_limit_s"] = opts["time_limit_s"]
            opts["time_limit_s"] = frontier_budget_s(opts["time_limit_s"], options.frontier)
        if "from_state" in body:
            raw_state = body["from_state"]
            try:
                request = FromState.model_validate({} if raw_state is None else raw_state)
            except ValidationError as exc:
                raise ApiError(422, "invalid_from_state",
                               first_error(exc, "from_state")) from None
            try:
                scenario, inputs = build_scenario(request, config.network, kafka_io,
                                                  config.topics, config.worker_url,
                                                  config.worker_transport)
            except StateUnavailable as exc:
                raise ApiError(503, "state_unavailable", str(exc),
                               headers={"Retry-After": "10"}) from None
            except optimizer.ScenarioError as exc:
                raise ApiError(422, "invalid_scenario", str(exc),
                               problems=[{"path": p, "message": m}
                                         for p, m in exc.problems]) from None
            except ValueError as exc:
                raise ApiError(422, "invalid_from_state", str(exc)) from None
            return scenario, opts, "from_state", inputs
        scenario = body["scenario"] if "scenario" in body else body
        if not isinstance(scenario, dict):
            raise ApiError(422, "invalid_scenario", "scenario must be an object")
        try:
            optimizer.load_scenario(scenario)
        except optimizer.ScenarioError as exc:
            raise ApiError(422, "invalid_scenario", str(exc),
                           problems=[{"path": p, "message": m} for p, m in exc.problems]
                           ) from None
        except (TypeError, ValueError) as exc:
            raise ApiError(422, "invalid_scenario", f"invalid scenario: {exc}") from None
        return scenario, opts, "scenario", None

    async def replayed(job_id: str, owner: str) -> Response:
        """A submission repeated with its Idempotency-Key: the job it made, as it is now."""
        job = await run_in_threadpool(get_job, job_id, owner)
        return JSONResponse(job_view(job), status_code=202,
                            headers={"Location": f"/v1/plans/{job_id}",
                                     "Idempotent-Replayed": "true"})

    def key_reused(exc: KeyReused) -> ApiError:
        return ApiError(422, "idempotency_key_reused", (
            f"{IDEMPOTENCY_HEADER}: this key was used for a different request (job "
            f"{exc.job_id}) in the last {IDEMPOTENCY_TTL_S / 3600:g} hours; send a new key "
            "with a new request"))

    @app.post(
        "/v1/plans",
        status_code=202,
        response_model=PlanJob,
        summary="Submit a plan job",
        description=(
            "Body: a scenario (the optimiser's format, see `optimizer/schemas/`), or "
            "`{\"scenario\": {...}, \"options\": {...}}`, or `{\"from_state\": {...}, "
            "\"options\": {...}}` to plan from the live stream state. Answers 202 with the "
            "job; follow `links.self`. With an `Idempotency-Key` header (e.g. a UUID) a "
            "request sent again within 24 hours gets the job the first one made "
            "(`Idempotent-Replayed: true`) instead of a second job, so a client may retry "
            "after a timeout; the same key with a different body is a 422."
        ),
        responses={**COMMON, **BODY_ERRORS,
                   **error(503, "Kafka or the stream worker is not available.")},
        openapi_extra={"parameters": [{
            "name": IDEMPOTENCY_HEADER, "in": "header", "required": False,
            "description": "A key of the client's choosing (1–255 printable ASCII "
                           "characters) that makes a retried submission return the job "
                           "the first made.",
            "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                       "pattern": "^[ -~]+$"}}],
            "requestBody": {"required": True, "content": {"application/json": {
            "schema": {"type": "object", "properties": {
                "scenario": {"type": "object"},
                "from_state": FromStateSchema(),
                "options": PlanOptions.model_json_schema(),
            }}}}}},
    )
    async def submit(request: Request,
                     auth: TokenInfo = Depends(planner_auth)) -> Response:  # noqa: B008
        body = await read_body_json(request)
        key = idempotency_key(request)
        fingerprint = request_fingerprint(body) if key is not None else ""
        if key is not None:
            try:
                held = await run_in_threadpool(config.jobs.keyed, auth.owner, key, fingerprint)
            except KeyReused as exc:
                raise key_reused(exc) from None
            if held is not None:  # before the state is read again or Kafka asked
                return await replayed(held, auth.owner)
        scenario, options, source, inputs = await run_in_threadpool(prepare, body)
        down = await run_in_threadpool(kafka_unavailable)
        if down is not None:
            raise ApiError(503, "kafka_unavailable", f"Kafka is not available: {down}",
                           headers={"Retry-After": "5"})
        name = options.pop("name", None) or scenario.get("name")
        if key is None:
            job_id = await run_in_threadpool(config.jobs.create, scenario, options, source,
                                             auth.owner, name, inputs)
        else:
            try:
                job_id, created = await run_in_threadpool(
                    config.jobs.create_keyed, scenario, options, source, auth.owner, key,
                    fingerprint, name, inputs)
            except KeyReused as exc:
                raise key_reused(exc) from None
            if not created:  # a request racing with this key made the job
                return await replayed(job_id, auth.owner)
        try:
            [failure] = await run_in_threadpool(
                kafka_io.produce,
                [Record(config.topics.plan_requests, job_id.encode(),
                        orjson.dumps({"job_id": job_id}))])
        except KafkaUnavailable as exc:
            failure = exc
        if failure is not None:
            if key is None:
                await run_in_threadpool(config.jobs.delete, job_id)
            else:  # a retry with the key may hold this job already: it ends failed
                await run_in_threadpool(
                    config.jobs.unqueued, job_id,
                    f"could not be queued on Kafka ({type(failure).__name__}: {failure}); "
                    "submit again")
            kafka_io.mark_failed(f"{type(failure).__name__}: {failure}")
            raise ApiError(503, "kafka_unavailable",
                           f"the job could not be queued ({type(failure).__name__}: {failure}); "
                           + ("nothing was stored" if key is None else
                              f"job {job_id} ended failed and its key is free")
                           + ", submit again", headers={"Retry-After": "5"})
        log.info("job %s queued by planner %s (%s)", job_id, auth.owner, source)
        job = await run_in_threadpool(get_job, job_id, auth.owner)
        return JSONResponse(job_view(job), status_code=202,
                            headers={"Location": f"/v1/plans/{job_id}"})

    @app.get("/v1/plans", response_model=PlanList, summary="Recent plan jobs",
             description="The jobs this planner (its token's owner) submitted and the "
             "dispatch jobs, newest first.",
             responses=COMMON)
    async def list_jobs(auth: TokenInfo = Depends(planner_auth),  # noqa: B008
                        status: Annotated[JobStatus | None, Query()] = None,
                        limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Response:
        rows = await run_in_threadpool(lambda: config.jobs.list(
            status, limit, owner=auth.owner, shared_sources=SHARED_SOURCES))
        return JSONResponse({"jobs": [{**r, "created_at": iso_utc(r["created_at"]),
                                       "finished_at": iso_utc(r["finished_at"])} for r in rows]})


    @app.get("/v1/plans/{job_id}", response_model=PlanJob, summary="A job's status",
             description="queued; running with progress (incumbent, bound, gap, elapsed); "
             "done with a summary; failed with the reason; cancelled.",
             responses={**COMMON, **error(404, NOT_FOUND)})
    async def job_status(job_id: JobId,
                         auth: TokenInfo = Depends(planner_auth)) -> Response:  # noqa: B008
        job = await run_in_threadpool(get_job, job_id, auth.owner)
        return JSONResponse(job_view(job))

    @app.delete("/v1/plans/{job_id}", response_model=PlanJob, summary="Cancel a job",
                description="A planner cancels the jobs it submitted and the dispatch "
                "schedule's own dispatch jobs; another planner's dispatch job is 403.",
                responses={**COMMON, **error(403, "Another planner's dispatch job."),
                           **error(404, NOT_FOUND),
                           **error(409, "The job is already finished.")})
    async def cancel(job_id: JobId,
                     auth: TokenInfo = Depends(planner_auth)) -> Response:  # noqa: B008
        job = await run_in_threadpool(get_job, job_id, auth.owner)
        if not can_cancel(job, auth.owner):
            raise ApiError(403, "forbidden", f"job {job_id} was submitted by another planner: "
                           "only that planner can cancel it")
        if not await run_in_threadpool(config.jobs.cancel, job_id):
            job = await run_in_threadpool(get_job, job_id, auth.owner)
            raise ApiError(409, "conflict", f"job {job_id} is already {job['status']}")
        log.info("job %s cancelled by planner %s", job_id, auth.owner)
        return JSONResponse(job_view(await run_in_threadpool(get_job, job_id, auth.owner)))

    @app.get("/v1/plans/{job_id}/result", summary="The plan (JSON)",
             responses={200: {"description": "The optimiser's plan JSON.",
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                        **COMMON, **error(404, NOT_FOUND),
                        **error(409, "No result yet.")})
    async def result(job_id: JobId,
                     auth: TokenInfo = Depends(planner_auth)) -> Response:  # noqa: B008
        job = await run_in_threadpool(get_job, job_id, auth.owner, ("result",))
        if job["result"] is None:
            raise ApiError(409, "not_ready", f"job {job_id} is {job['status']}: no result"
                           + (f" ({job['error']})" if job["error"] else ""))
        return JSONResponse(job["result"])

    @app.get("/v1/plans/{job_id}/scenario", summary="The scenario the job plans",
             responses={200: {"description": (
                 "`scenario`: the scenario planned, in the optimiser's format (for a "
                 "from_state or dispatch job, the one built from the live state); "
                 "`inputs`: for those jobs, the state it was built from and the from_state "
                 "settings (`inputs.from_state`), else null; `options`: the options the job "
                 "runs with; `source`: scenario, from_state or dispatch."),
                              "content": {"application/json": {"schema": {"type": "object"}}}},
                        **COMMON, **error(404, NOT_FOUND)})
    async def scenario(job_id: JobId,
                       auth: TokenInfo = Depends(planner_auth)) -> Response:  # noqa: B008
        job = await run_in_threadpool(get_job, job_id, auth.owner, ("scenario", "inputs"))
        return JSONResponse({"scenario": job["scenario"], "inputs": job["inputs"],
                             "options": job["options"], "source": job["source"]})

    @app.get("/v1/plans/{job_id}/report", summary="The plan's HTML report",
             responses={200: {"description": "The report (HTML).",
                              "content": {"text/html": {"schema": {"type": "string"}}}},
                        **COMMON, **error(404, NOT_FOUND),
                        **error(409, "No report yet.")})
    async def report(job_id: JobId,
                     auth: TokenInfo = Depends(planner_auth)) -> Response:  # noqa: B008
        job = await run_in_threadpool(get_job, job_id, auth.owner, ("report",))
        if not job.get("report"):
            raise ApiError(409, "not_ready", f"job {job_id} is {job['status']}: no report")
        return HTMLResponse(job["report"])

    @app.post(
        "/v1/dispatch",
        status_code=202,
        response_model=PlanJob,
        summary="Plan a date's dispatch now",
        description=(
            "What the daily schedule (PACKLOOP_DISPATCH_AT) does, for a given date: a plan "
            "from the live state over PACKLOOP_DISPATCH_HORIZON_DAYS days from that date, "
            "whose first day is published as one run sheet per hub on the dispatch topic. "
            "202 with the new job; 200 with the date's job when it already has one that "
            "is not failed or cancelled (a published dispatch stays fixed). The date is "
            "today or tomorrow in the network's time zone (a past date's dispatch is what "
            "was planned then; a later one is planned the evening before, from that day's "
            "state); 422 otherwise. Dispatch jobs are every planner's to read; see "
            "`DELETE /v1/plans/{job_id}` for cancelling."
        ),
        responses={200: {"description": "The date's dispatch job, planned before.",
                         "model": PlanJob},
                   **COMMON, **BODY_ERRORS,
                   **error(503, "Kafka or the stream worker is not available.")},
        openapi_extra={"requestBody": {"required": True, "content": {"application/json": {
            "schema": DispatchRequest.model_json_schema()}}}},
    )
    async def plan_dispatch(request: Request,
                            auth: TokenInfo = Depends(planner_auth)) -> Response:  # noqa: B008
        from services.planner.daily import DispatchConflict, DispatchPending, submit
        from services.planner.from_state import StateUnavailable

        body = await read_body_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "bad_request", 'body must be a JSON object: {"date": '
                           '"YYYY-MM-DD"}')
        try:
            day = DispatchRequest.model_validate(body).date
        except ValidationError as exc:
            raise ApiError(422, "invalid_request", first_error(exc)) from None
        first, last = dispatch_window(config.network.timezone)
        if day < first:
            raise ApiError(422, "invalid_date", (
                f"date: {day} is before today ({first} in {config.network.timezone}): a "
                "date's dispatch is planned once and then stays fixed, and a plan made now "
                "from today's state cannot be a past day's; give today or tomorrow"))
        if day > last:
            raise ApiError(422, "invalid_date", (
                f"date: {day} is after tomorrow ({last} in {config.network.timezone}): a "
                "plan made now starts from today's state, as if the days between did not "
                "happen, and would fix that date before the run the evening before plans "
                f"it from its own state; give today or tomorrow, up to {last}"))
        try:
            job_id, created = await run_in_threadpool(
                submit, config, kafka_io, config.dispatch, day, auth.owner)
        except StateUnavailable as exc:
            raise ApiError(503, "state_unavailable", str(exc),
                           headers={"Retry-After": "10"}) from None
        except KafkaUnavailable as exc:
            raise ApiError(503, "kafka_unavailable", str(exc),
                           headers={"Retry-After": "5"}) from None
        except DispatchPending as exc:
            raise ApiError(409, "dispatch_pending", str(exc),
                           headers={"Retry-After": "30"}) from None
        except DispatchConflict as exc:
            raise ApiError(409, "dispatch_conflict", str(exc)) from None
        except ValueError as exc:  # the state makes no valid scenario (ScenarioError too)
            raise ApiError(422, "invalid_scenario", str(exc)) from None
        job = await run_in_threadpool(get_job, job_id, auth.owner)
        return JSONResponse(job_view(job), status_code=202 if created else 200,
                            headers={"Location": f"/v1/plans/{job_id}"})

    add_health_routes(
        app, liveness="Liveness", readiness="Readiness (Kafka and job store)",
        kafka_unavailable=kafka_unavailable,
        check_database=lambda: config.jobs.list(None, 1),
    )
    add_metrics_route(app, registry)
    use_bearer_scheme(app, "plannerToken",
                      "Planner token from `packloop planners add-token NAME`.")
    app.state.config = config
    return app


def FromStateSchema() -> dict[str, Any]:  # noqa: N802 - used like a constant
    from services.planner.from_state import FromState

    schema = FromState.model_json_schema()
    schema.pop("title", None)
    return schema
