"""The hub ingestion gateway: an HTTP front door to the hub-events topic.

Order of checks for ``POST /v1/events``: token (401) → per-hub rate (429) →
request size (413) → JSON shape (400) → batch size (413) → ownership of every
event (403, nothing is produced) → per-event validation (rejected, answered) →
produce with acks=all (503 if Kafka does not acknowledge in time).

An event counts as accepted only when Kafka acknowledged it before the answer
was sent. Rejected events are answered synchronously and counted in metrics,
never dead-lettered: the hub has the answer and its own copy.
"""

from __future__ import annotations

import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, cast

import httpx
import orjson
from fastapi import Depends, FastAPI, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field, TypeAdapter

from services.gateway.kafka_io import (
    KafkaProbe,
    KafkaUnavailable,
    Record,
    SafeProducer,
    is_unavailable,
)
from services.gateway.metrics import GatewayMetrics
from services.gateway.ratelimit import RateLimiter
from services.http_errors import ApiError, install_error_handlers, require_token
from services.tokens import TokenInfo, TokenStore
from streams.events import (
    MAX_EVENT_BYTES,
    EventError,
    HubEvent,
    PickupCancelled,
    event_to_json,
    parse_hub_event,
)
from streams.kafka import KafkaConnection
from streams.network import Network
from streams.topics import Topics

log = logging.getLogger("packloop.gateway")


# -- configuration -------------------------------------------------------------------------


@dataclass
class GatewayConfig:
    kafka: KafkaConnection
    topics: Topics
    network: Network
    tokens: TokenStore
    max_request_bytes: int = 4 * 1024 * 1024
    max_batch: int = 500
    rate_per_s: float = 20.0
    rate_burst: int = 40
    produce_timeout_s: float = 5.0
    worker_url: str = "http://127.0.0.1:6066"
    worker_transport: httpx.AsyncBaseTransport | None = None
    webhooks: bool = True
    webhook_timeout_s: float = 5.0
    webhook_max_attempts: int = 6
    webhook_backoff_s: float = 0.5
    webhook_allow_private: bool = True
    webhook_transport: httpx.BaseTransport | None = None
    probe_interval_s: float = 2.0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> GatewayConfig:
        from streams.network import load_network

        pepper = settings.token_pepper.get_secret_value() if settings.token_pepper else None
        values: dict[str, Any] = dict(
            kafka=settings.kafka(),
            topics=settings.topics(),
            network=load_network(settings.network),
            max_request_bytes=settings.gateway_max_request_bytes,
            max_batch=settings.gateway_max_batch,
            rate_per_s=settings.gateway_rate_per_s,
            rate_burst=settings.gateway_rate_burst,
            produce_timeout_s=settings.gateway_produce_timeout_s,
            worker_url=settings.worker_url,
            webhooks=settings.gateway_webhooks,
            webhook_timeout_s=settings.webhook_timeout_s,
            webhook_max_attempts=settings.webhook_max_attempts,
            webhook_backoff_s=settings.webhook_backoff_s,
            webhook_allow_private=settings.webhook_allow_private,
        )
        values.update(overrides)
        if "tokens" not in values:
            values["tokens"] = TokenStore(settings.token_db_url, pepper)
        return cls(**values)


# -- API models (they are the OpenAPI document) --------------------------------------------


class ErrorBody(BaseModel):
    error: str = Field(description="Machine-readable code, e.g. 'forbidden', 'rate_limited'.")
    message: str = Field(description="What went wrong, for a person.")
    results: list[EventOutcome] | None = Field(
        default=None, description="503 on POST /v1/events: per event, which ones were written "
        "before Kafka stopped answering (status accepted) and which were not (unavailable).",
    )


class EventOutcome(BaseModel):
    index: int = Field(description="Position in the request (0 for a single event).")
    event_id: str | None = Field(description="The event's event_id, when it has one.")
    status: Literal["accepted", "rejected", "unavailable"]
    reason: str | None = Field(
        default=None, description="Rejection code, e.g. missing_field, unknown_village."
    )
    field: str | None = Field(default=None, description="Dotted path of the field at fault.")
    message: str | None = None


class IngestResult(BaseModel):
    accepted: int
    rejected: int
    results: list[EventOutcome]


class PickupRow(BaseModel):
    pickup_id: str
    village_id: str
    hub_id: str
    requested_at: str | None = None
    reasons: list[str] = Field(default_factory=list)
    overdue: bool = False
    outstanding_grams: dict[str, int] = Field(default_factory=dict)


class PickupList(BaseModel):
    hub: str
    status: Literal["open", "overdue"]
    count: int
    pickups: list[PickupRow]


class CancelRequest(BaseModel):
    reason: str = Field(
        default="cancelled by the hub", min_length=1, max_length=2000,
        description="Why the pickup is cancelled (kept on the pickup_cancelled event).",
    )


class CancelResult(BaseModel):
    pickup_id: str
    village_id: str
    hub_id: str
    event_id: str
    status: Literal["cancel_requested"]


class WebhookRequest(BaseModel):
    url: str = Field(
        min_length=8, max_length=2000, pattern=r"^https?://",
        description="http(s) URL that receives pickup_requested and pickup_overdue notices.",
    )


class WebhookRegistered(BaseModel):
    hub_id: str
    url: str
    secret: str = Field(description="Shown once: the key of the X-Packloop-Signature HMAC.")
    signature: str = Field(description="How to verify a delivery.")


class WebhookInfo(BaseModel):
    hub_id: str
    url: str
    created_at: str | None


class Health(BaseModel):
    status: str
    kafka: str | None = None
    database: str | None = None


ErrorBody.model_rebuild()

SIGNATURE_HELP = (
    "Each delivery is a POST of the notice's JSON; header X-Packloop-Signature is "
    "'sha256=' + hex(HMAC-SHA256(secret, raw body)), X-Packloop-Event-Id the notice's "
    "event_id (deliveries are at least once: deduplicate by it)."
)


def _err(status: int, description: str) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody, "description": description}}


AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    **_err(400, "Malformed request (e.g. a body that is not JSON)."),
    **_err(401, "Missing or invalid hub token."),
    **_err(422, "Invalid parameters."),
}


def event_id_of(item: Any) -> str | None:
    value = item.get("event_id") if isinstance(item, dict) else None
    return value if isinstance(value, str) else None


def _now_ms() -> datetime:
    """Whole milliseconds: the precision of the events the gateway stamps itself."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


# -- the app -------------------------------------------------------------------------------


class Gateway:
    """State shared by the routes: producer, probe, limiter, metrics, worker client."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.metrics = GatewayMetrics()
        self.limiter = RateLimiter(config.rate_per_s, config.rate_burst)
        self.producer = SafeProducer(config.kafka, config.produce_timeout_s)
        self.probe = KafkaProbe(config.kafka, interval_s=config.probe_interval_s)
        self.webhooks: Any = None
        self._started = False

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.probe.start()
        if self.config.webhooks:
            from services.gateway.webhooks import WebhookDispatcher

            self.webhooks = WebhookDispatcher(self.config, self.metrics).start()

    def stop(self) -> None:
        if self.webhooks is not None:
            self.webhooks.stop()
            self.webhooks = None
        self.probe.stop()
        self.producer.close()
        self._started = False

    def kafka_down(self) -> str | None:
        """Why Kafka is known to be down (from the probe), or None."""
        probe = self.probe
        if not probe.checked.is_set():
            probe.checked.wait(timeout=self.config.kafka.connect_timeout_ms / 1000 + 1.0)
        self.metrics.kafka_ready.set(1 if probe.ok else 0)
        return None if probe.ok else probe.reason

    def produce(self, records: list[Record]) -> list[BaseException | None]:
        started = time.perf_counter()
        try:
            outcome = self.producer.produce(records)
        except KafkaUnavailable as exc:
            self.probe.mark_failed(str(exc))
            raise
        self.metrics.produce_duration.observe(time.perf_counter() - started)
        if any(e is not None and is_unavailable(e) for e in outcome):
            first = next(e for e in outcome if e is not None)
            self.probe.mark_failed(f"produce failed: {type(first).__name__}: {first}")
        return outcome


def create_app(config: GatewayConfig) -> FastAPI:
    gw = Gateway(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> Any:
        gw.start()
        try:
            yield
        finally:
            gw.stop()

    app = FastAPI(
        title="packloop hub ingestion gateway",
        version="1.0.0",
        description=(
            "Hubs send their events here; accepted events are on Kafka's hub-events topic "
            "(acks=all) before the answer is sent. Authenticate with "
            "`Authorization: Bearer <hub token>` (`packloop hubs add-token HUB`). Event "
            "formats: components HubEvent (JSON Schemas also in streams/schemas/)."
        ),
        lifespan=lifespan,
    )
    app.state.gateway = gw
    metrics = gw.metrics

    install_error_handlers(app)

    @app.middleware("http")
    async def _count(request: Request, call_next: Any) -> Response:
        gw.start()  # no-op after the first request (servers that skip the lifespan)
        started = time.perf_counter()
        status = 500
        try:
            response: Response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            template = getattr(route, "path", "unmatched")
            hub = getattr(request.state, "hub", "") or ""
            metrics.requests.labels(template, request.method, str(status), hub).inc()
            metrics.request_duration.labels(template).observe(time.perf_counter() - started)

    async def hub_auth(request: Request) -> TokenInfo:
        info = await require_token(request, config.tokens, "hub",
                                   "packloop hubs add-token HUB", "packloop-gateway")
        request.state.hub = info.owner
        return info

    def rate_limit(hub: str) -> None:
        wait = gw.limiter.acquire(hub)
        if wait > 0:
            raise ApiError(
                429, "rate_limited",
                f"hub {hub} is over its rate of {config.rate_per_s:g} requests/s "
                f"(burst {config.rate_burst}); retry after the Retry-After seconds",
                headers={"Retry-After": RateLimiter.retry_after(wait)},
            )

    async def read_body(request: Request, limit: int) -> bytes:
        declared = request.headers.get("content-length")
        if declared is not None:
            try:
                if int(declared) > limit:
                    raise ApiError(413, "too_large",
                                   f"request body of {declared} bytes is over the {limit}-byte "
                                   "limit; send fewer events per request")
            except ValueError:
                raise ApiError(400, "bad_request", "invalid Content-Length") from None
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, "too_large",
                               f"request body is over the {limit}-byte limit; send fewer "
                               "events per request")
            chunks.append(chunk)
        return b"".join(chunks)

    def ownership_problem(item: Any, hub: str) -> str | None:
        """Why ``item`` is not this hub's to send (403), from its raw fields."""
        if not isinstance(item, dict):
            return None
        claimed = item.get("hub_id")
        if isinstance(claimed, str) and claimed != hub:
            return f"event for hub {claimed[:64]!r}"
        village_id = item.get("village_id")
        if isinstance(village_id, str):
            village = config.network.villages.get(village_id)
            if village is not None and village.hub_id != hub:
                return f"village {village_id!r} belongs to hub {village.hub_id!r}"
        return None

    events_body_schema = {
        "oneOf": [
            {"type": "object", "description": "One event (see components HubEvent)."},
            {
                "type": "array",
                "items": {"type": "object"},
                "minItems": 1,
                "maxItems": config.max_batch,
                "description": f"A batch of up to {config.max_batch} events.",
            },
        ]
    }

    @app.post(
        "/v1/events",
        response_model=IngestResult,
        summary="Send one event or a batch",
        description=(
            "Body: one event object, or a JSON array of events. Each event is answered "
            "accepted (written to Kafka, acks=all) or rejected with its reason. Events must "
            "carry the token's hub_id and a village of that hub (403 otherwise, nothing is "
            "written). Resending an event with the same event_id is safe: the stream "
            "deduplicates by it."
        ),
        responses={
            **AUTH_ERRORS,
            **_err(400, "Body is not a JSON object or array."),
            **_err(403, "An event belongs to another hub; nothing was written."),
            **_err(413, "Request or batch too large."),
            **_err(429, "Over the hub's rate limit (see Retry-After)."),
            **_err(503, "Kafka did not acknowledge in time; events marked unavailable were "
                        "not written (retry them; see Retry-After)."),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": events_body_schema}},
            }
        },
    )
    async def post_events(request: Request,
                          auth: TokenInfo = Depends(hub_auth)) -> Response:  # noqa: B008
        hub = auth.owner
        rate_limit(hub)
        body = await read_body(request, config.max_request_bytes)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ApiError(400, "malformed_json", f"body is not valid JSON: {exc}") from None
        if isinstance(data, dict):
            items: list[Any] = [data]
        elif isinstance(data, list):
            items = data
        else:
            raise ApiError(400, "bad_request", "body must be an event object or an array")
        if not items:
            raise ApiError(400, "bad_request", "empty batch")
        if len(items) > config.max_batch:
            raise ApiError(413, "batch_too_large",
                           f"{len(items)} events in one request; at most {config.max_batch}")
        for i, item in enumerate(items):
            problem = ownership_problem(item, hub)
            if problem is not None:
                log.warning(
                    "403: hub %s (token %s) sent %s at index %d; nothing written",
                    hub, auth.token_id, problem, i,
                )
                metrics.events.labels(hub, "forbidden", "other_hub").inc(len(items))
                raise ApiError(
                    403, "forbidden",
                    f"events[{i}]: {problem}; a hub token may only send its own hub's "
                    "events for its own villages (nothing in this request was written)",
                )
        outcomes: list[EventOutcome | None] = [None] * len(items)
        records: list[Record] = []
        record_index: list[int] = []
        for i, item in enumerate(items):
            event_id = event_id_of(item)
            try:
                if not isinstance(item, dict):
                    raise EventError("an event must be a JSON object", code="not_an_object")
                event = parse_hub_event(item)
                invalid = config.network.check_event(event)
                if invalid is not None:
                    raise invalid
            except EventError as exc:
                outcomes[i] = EventOutcome(index=i, event_id=event_id, status="rejected",
                                           reason=exc.code, field=exc.field, message=str(exc))
                metrics.events.labels(hub, "rejected", exc.code).inc()
                continue
            except (TypeError, ValueError) as exc:  # e.g. an unhashable "type" value
                outcomes[i] = EventOutcome(index=i, event_id=event_id, status="rejected",
                                           reason="invalid", message=f"invalid event: {exc}")
                metrics.events.labels(hub, "rejected", "invalid").inc()
                continue
            value = event_to_json(event)
            if len(value) > MAX_EVENT_BYTES:
                outcomes[i] = EventOutcome(
                    index=i, event_id=event_id, status="rejected", reason="too_large",
                    message=f"event is {len(value)} bytes, over the {MAX_EVENT_BYTES}-byte limit")
                metrics.events.labels(hub, "rejected", "too_large").inc()
                continue
            records.append(Record(config.topics.hub_events, event.village_id.encode(), value))
            record_index.append(i)
        if records:
            down = await run_in_threadpool(gw.kafka_down)
            if down is not None:
                metrics.events.labels(hub, "unavailable", "kafka").inc(len(records))
                raise ApiError(503, "kafka_unavailable", f"Kafka is not available: {down}",
                               headers={"Retry-After": "5"})
            try:
                results = await run_in_threadpool(gw.produce, records)
            except KafkaUnavailable as exc:
                metrics.events.labels(hub, "unavailable", "kafka").inc(len(records))
                raise ApiError(503, "kafka_unavailable", str(exc),
                               headers={"Retry-After": "5"}) from None
            failed = False
            for i, error in zip(record_index, results, strict=True):
                ev_id = event_id_of(items[i])
                if error is None:
                    outcomes[i] = EventOutcome(index=i, event_id=ev_id, status="accepted")
                    metrics.events.labels(hub, "accepted", "").inc()
                elif is_unavailable(error):
                    failed = True
                    outcomes[i] = EventOutcome(
                        index=i, event_id=ev_id, status="unavailable", reason="kafka_unavailable",
                        message=f"not written: {type(error).__name__}: {error}")
                    metrics.events.labels(hub, "unavailable", "kafka").inc()
                else:
                    outcomes[i] = EventOutcome(
                        index=i, event_id=ev_id, status="rejected", reason="kafka_rejected",
                        message=f"Kafka refused the record: {type(error).__name__}: {error}")
                    metrics.events.labels(hub, "rejected", "kafka_rejected").inc()
            if failed:
                written = sum(1 for o in outcomes if o is not None and o.status == "accepted")
                raise ApiError(
                    503, "kafka_unavailable",
                    f"Kafka did not acknowledge {len(records) - written} event(s) in time; "
                    "retry the events marked unavailable",
                    headers={"Retry-After": "5"},
                    results=[o.model_dump() for o in outcomes if o is not None],
                )
        final = [o for o in outcomes if o is not None]
        accepted = sum(1 for o in final if o.status == "accepted")
        return JSONResponse(
            {"accepted": accepted, "rejected": len(final) - accepted,
             "results": [o.model_dump() for o in final]}
        )

    # -- pickups ---------------------------------------------------------------------------

    worker_client = httpx.AsyncClient(
        base_url=config.worker_url.rstrip("/"), timeout=5.0, transport=config.worker_transport
    )
    app.state.worker_client = worker_client

    async def open_pickups(status: str) -> list[dict[str, Any]]:
        try:
            resp = await worker_client.get("/pickups", params={"status": status})
            resp.raise_for_status()
            rows = resp.json().get("pickups", [])
            return [r for r in rows if isinstance(r, dict)]
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            raise ApiError(
                503, "worker_unavailable",
                f"the stream worker at {config.worker_url} did not answer: "
                f"{type(exc).__name__}: {exc}",
                headers={"Retry-After": "5"},
            ) from None

    def _row(r: dict[str, Any]) -> PickupRow:
        og = r.get("outstanding_grams") or {}
        return PickupRow(
            pickup_id=str(r.get("pickup_id", "")),
            village_id=str(r.get("village_id", "")),
            hub_id=str(r.get("hub_id", "")),
            requested_at=r.get("requested_at"),
            reasons=[str(x) for x in r.get("reasons") or []],
            overdue=bool(r.get("overdue", False)),
            outstanding_grams={str(k): int(v) for k, v in og.items()} if isinstance(og, dict)
            else {},
        )

    @app.get(
        "/v1/pickups",
        response_model=PickupList,
        summary="A hub's open (or overdue) pickups",
        responses={**AUTH_ERRORS, **_err(403, "hub is not the token's hub."),
                   **_err(429, "Over the hub's rate limit (see Retry-After)."),
                   **_err(503, "The stream worker is not reachable.")},
    )
    async def list_pickups(
        request: Request,
        auth: TokenInfo = Depends(hub_auth),  # noqa: B008
        hub: Annotated[str | None, Query(max_length=128,
                                         description="Hub id (default: the token's hub).")] = None,
        status: Annotated[Literal["open", "overdue"], Query()] = "open",
    ) -> Response:
        rate_limit(auth.owner)
        hub = hub or auth.owner
        if hub != auth.owner:
            log.warning("403: hub %s (token %s) asked for hub %r's pickups",
                        auth.owner, auth.token_id, hub)
            raise ApiError(403, "forbidden", f"a {auth.owner} token cannot read hub {hub}'s "
                                             "pickups")
        rows = [_row(r) for r in await open_pickups(status) if r.get("hub_id") == hub]
        rows.sort(key=lambda r: r.pickup_id)
        return JSONResponse(PickupList(hub=hub, status=status, count=len(rows),
                                       pickups=rows).model_dump())

    @app.post(
        "/v1/pickups/{pickup_id}/cancel",
        response_model=CancelResult,
        status_code=202,
        summary="Cancel an open pickup (emits pickup_cancelled)",
        responses={**AUTH_ERRORS, **_err(403, "The pickup belongs to another hub."),
                   **_err(404, "No open pickup with this id."),
                   **_err(429, "Over the hub's rate limit."),
                   **_err(503, "Worker or Kafka not available.")},
    )
    async def cancel_pickup(
        request: Request,
        pickup_id: Annotated[str, Path(min_length=1, max_length=128)],
        auth: TokenInfo = Depends(hub_auth),  # noqa: B008
        body: CancelRequest | None = None,
    ) -> Response:
        hub = auth.owner
        rate_limit(hub)
        reason = (body or CancelRequest()).reason
        rows = await open_pickups("open")
        row = next((r for r in rows if r.get("pickup_id") == pickup_id), None)
        if row is None:
            raise ApiError(404, "not_found", f"no open pickup {pickup_id!r} (collected or "
                                             "cancelled already, or not requested yet)")
        if row.get("hub_id") != hub:
            log.warning("403: hub %s (token %s) tried to cancel pickup %r of hub %r",
                        hub, auth.token_id, pickup_id, row.get("hub_id"))
            raise ApiError(403, "forbidden", f"pickup {pickup_id!r} belongs to another hub")
        event = PickupCancelled(
            event_id=f"cancel-{pickup_id}",
            occurred_at=_now_ms(),
            hub_id=hub,
            village_id=str(row["village_id"]),
            pickup_id=pickup_id,
            reason=reason,
        )
        down = await run_in_threadpool(gw.kafka_down)
        if down is not None:
            raise ApiError(503, "kafka_unavailable", f"Kafka is not available: {down}",
                           headers={"Retry-After": "5"})
        try:
            [error] = await run_in_threadpool(
                gw.produce,
                [Record(config.topics.hub_events, event.village_id.encode(),
                        event_to_json(event))],
            )
        except KafkaUnavailable as exc:
            raise ApiError(503, "kafka_unavailable", str(exc),
                           headers={"Retry-After": "5"}) from None
        if error is not None:
            raise ApiError(503, "kafka_unavailable",
                           f"pickup_cancelled not written: {type(error).__name__}: {error}",
                           headers={"Retry-After": "5"})
        metrics.events.labels(hub, "accepted", "").inc()
        return JSONResponse(
            CancelResult(pickup_id=pickup_id, village_id=event.village_id, hub_id=hub,
                         event_id=event.event_id, status="cancel_requested").model_dump(),
            status_code=202,
        )

    # -- webhooks --------------------------------------------------------------------------

    @app.put(
        "/v1/webhook",
        response_model=WebhookRegistered,
        summary="Register (or replace) the hub's webhook",
        description="Every pickup_requested and pickup_overdue for the hub's villages is "
        "POSTed there, retried with back-off. " + SIGNATURE_HELP,
        responses={**AUTH_ERRORS, **_err(400, "URL not allowed.")},
    )
    async def put_webhook(body: WebhookRequest,
                          auth: TokenInfo = Depends(hub_auth)) -> Response:  # noqa: B008
        from services.gateway.webhooks import check_url

        problem = check_url(body.url, allow_private=config.webhook_allow_private)
        if problem:
            raise ApiError(400, "bad_url", problem)
        url, secret = await run_in_threadpool(config.tokens.set_webhook, auth.owner, body.url)
        log.info("hub %s registered a webhook (token %s)", auth.owner, auth.token_id)
        return JSONResponse(WebhookRegistered(hub_id=auth.owner, url=url, secret=secret,
                                              signature=SIGNATURE_HELP).model_dump())

    @app.get("/v1/webhook", response_model=WebhookInfo, summary="The hub's webhook",
             responses={**AUTH_ERRORS, **_err(404, "No webhook registered.")})
    async def get_webhook(auth: TokenInfo = Depends(hub_auth)) -> Response:  # noqa: B008
        hook = await run_in_threadpool(config.tokens.get_webhook, auth.owner)
        if hook is None:
            raise ApiError(404, "not_found", f"hub {auth.owner} has no webhook")
        return JSONResponse(WebhookInfo(hub_id=auth.owner, url=hook["url"],
                                        created_at=hook["created_at"]).model_dump())

    @app.delete("/v1/webhook", status_code=204, summary="Remove the hub's webhook",
                responses={**AUTH_ERRORS, **_err(404, "No webhook registered.")})
    async def delete_webhook(auth: TokenInfo = Depends(hub_auth)) -> Response:  # noqa: B008
        if not await run_in_threadpool(config.tokens.delete_webhook, auth.owner):
            raise ApiError(404, "not_found", f"hub {auth.owner} has no webhook")
        return Response(status_code=204)

    # -- operations ------------------------------------------------------------------------

    @app.get("/healthz", response_model=Health, summary="Liveness (the process answers)")
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", response_model=Health, summary="Readiness (Kafka and token DB reachable)",
             responses={503: {"model": Health, "description": "Not ready."}})
    async def readyz() -> Response:
        down = await run_in_threadpool(gw.kafka_down)
        db = "ok"
        try:
            await run_in_threadpool(config.tokens.list, "hub", "\x00")
        except Exception as exc:  # noqa: BLE001
            db = f"{type(exc).__name__}: {exc}"
        ready = down is None and db == "ok"
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "kafka": down or "ok", "database": db},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        metrics.kafka_ready.set(1 if gw.probe.ok else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})["hubToken"] = {
            "type": "http", "scheme": "bearer",
            "description": "Hub token from `packloop hubs add-token HUB`.",
        }
        # an annotated union is a type form, which mypy checks only with its incomplete
        # TypeForm feature
        event_schema = TypeAdapter(cast(Any, HubEvent)).json_schema(
            ref_template="#/components/schemas/{model}"
        )
        for name, definition in event_schema.pop("$defs", {}).items():
            components.setdefault("schemas", {}).setdefault(name, definition)
        components["schemas"]["HubEvent"] = event_schema
        for path, ops in schema.get("paths", {}).items():
            if path.startswith("/v1/"):
                for op in ops.values():
                    op["security"] = [{"hubToken": []}]
        app.openapi_schema = schema
        return schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
    return app
