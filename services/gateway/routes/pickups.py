"""``/v1/pickups``: a hub's open pickups (from the stream worker) and cancelling one (a
``pickup_cancelled`` event on hub-events).

A cancel may carry ``snooze_hours``: how long the worker must not request a new pickup
for the village (unless new waste of at least the threshold arrives), so a cancelled
pickup is not requested again a second later for the same waste. Without it the
network file's default applies (the worker's side). Its range and type are those of the
event's field (:class:`streams.PickupCancelled`), taken from the model itself so the route
cannot refuse a snooze the event format allows or pass one on that it does not.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, cast

import httpx
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, TypeAdapter

from services.auth.tokens import TokenInfo
from services.gateway.service import AUTH_ERRORS, Gateway
from services.http.body import BODY_ERRORS, read_json, validate_body
from services.http.errors import ApiError
from services.http.kafka_io import KafkaUnavailable, Record
from services.http.openapi import error
from streams import PickupCancelled, event_to_json
from streams.state.pickups import pickup_village_id

log = logging.getLogger("packloop.gateway")


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


if TYPE_CHECKING:
    SnoozeHours = float | None
else:  # the event's own type: a JSON number of hours in its range, or null
    SnoozeHours = PickupCancelled.model_fields["snooze_hours"].annotation

_SNOOZE_RANGE = next(s for s in TypeAdapter(cast(Any, SnoozeHours)).json_schema()["anyOf"]
                     if s.get("type") == "number")
#: the snooze a cancel may ask for (hours), as pickup_cancelled takes it
MIN_SNOOZE_HOURS: float = _SNOOZE_RANGE["minimum"]
MAX_SNOOZE_HOURS: float = _SNOOZE_RANGE["maximum"]


class CancelRequest(BaseModel):
    reason: str = Field(
        default="cancelled by the hub", min_length=1, max_length=2000,
        description="Why the pickup is cancelled (kept on the pickup_cancelled event).",
    )
    snooze_hours: SnoozeHours = Field(
        default=None,
        description="No new pickup for the village for this many hours, unless new waste "
        "of at least the threshold arrives (default: the network file's; 0: ask again at "
        "once if still over a threshold). Also accepted as the query parameter "
        "snooze_hours.",
    )


class CancelResult(BaseModel):
    pickup_id: str
    village_id: str
    hub_id: str
    event_id: str
    status: Literal["cancel_requested"]
    snooze_hours: float | None = Field(
        default=None, description="The snooze put on the event (null: the network's default).")


def _now_ms() -> datetime:
    """Whole milliseconds: the precision of the events the gateway stamps itself."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def cancel_event(pickup_id: str, hub: str, village_id: str, reason: str,
                 snooze_hours: float | None) -> PickupCancelled:
    """The pickup_cancelled event of a cancel; without a snooze the worker applies the
    network's default (``pickup_snooze_hours``)."""
    return PickupCancelled(event_id=f"cancel-{pickup_id}", occurred_at=_now_ms(), hub_id=hub,
                           village_id=village_id, pickup_id=pickup_id, reason=reason,
                           snooze_hours=snooze_hours)


class SentCancels:
    """The cancels this gateway produced lately, so that a second click, or a retry after
    a 503, re-sends the very event (the worker counts it once) instead of one with the
    same id and another time, which the worker dead-letters as ``event_id_conflict``.

    Keyed by pickup and the time it was requested (a pickup id is the village's count,
    so a later life of the village could give it again). A cancel with another reason or
    snooze after one was sent is a 409 (its event would have the same id, and be
    dead-lettered). Bounded in size and age; each gateway process keeps its own
    (replicas behind a balancer may still send two)."""

    def __init__(self, size: int = 4096, ttl_s: float = 86_400.0) -> None:
        self._size = size
        self._ttl_s = ttl_s
        self._events: OrderedDict[tuple[str, str], tuple[float, PickupCancelled]] = (
            OrderedDict())

    def sent(self, key: tuple[str, str]) -> PickupCancelled | None:
        """The event sent for ``key`` lately, if any."""
        hit = self._events.get(key)
        if hit is None or time.monotonic() - hit[0] > self._ttl_s:
            return None
        return hit[1]

    def put(self, key: tuple[str, str], event: PickupCancelled) -> None:
        self._events[key] = (time.monotonic(), event)
        self._events.move_to_end(key)
        while len(self._events) > self._size:
            self._events.popitem(last=False)


def router(gw: Gateway) -> APIRouter:
    router = APIRouter()
    config = gw.config
    metrics = gw.metrics
    sent = SentCancels()

    worker_client = httpx.AsyncClient(
        base_url=config.worker_url.rstrip("/"), timeout=5.0, transport=config.worker_transport
    )

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

    @router.get(
        "/v1/pickups",
        response_model=PickupList,
        summary="A hub's open (or overdue) pickups",
        responses={**AUTH_ERRORS, **error(403, "hub is not the token's hub."),
                   **error(404, "Unknown hub."),
                   **error(429, "Over the hub's rate limit (see Retry-After)."),
                   **error(503, "The stream worker is not reachable.")},
    )
    async def list_pickups(
        request: Request,
        auth: TokenInfo = Depends(gw.hub_auth),  # noqa: B008
        hub: Annotated[str | None, Query(max_length=128,
                                         description="Hub id (default: the token's hub).")] = None,
        status: Annotated[Literal["open", "overdue"], Query()] = "open",
    ) -> Response:
        gw.rate_limit(auth.owner)
        hub = hub or auth.owner
        gw.own_hub(hub, auth, "pickups")
        rows = [_row(r) for r in await open_pickups(status) if r.get("hub_id") == hub]
        rows.sort(key=lambda r: r.pickup_id)
        return JSONResponse(PickupList(hub=hub, status=status, count=len(rows),
                                       pickups=rows).model_dump())

    @router.post(
        "/v1/pickups/{pickup_id}/cancel",
        response_model=CancelResult,
        status_code=202,
        summary="Cancel an open pickup (emits pickup_cancelled)",
        responses={**AUTH_ERRORS, **BODY_ERRORS,
                   **error(403, "The pickup belongs to another hub."),
                   **error(404, "No open pickup with this id."),
                   **error(409, "A cancel with another reason or snooze was sent already "
                                "(cancel_pending)."),
                   **error(429, "Over the hub's rate limit."),
                   **error(503, "Worker or Kafka not available.")},
        openapi_extra={"requestBody": {"required": False, "content": {
            "application/json": {"schema": CancelRequest.model_json_schema()}}}},
    )
    async def cancel_pickup(
        request: Request,
        pickup_id: Annotated[str, Path(min_length=1, max_length=128)],
        auth: TokenInfo = Depends(gw.hub_auth),  # noqa: B008
        snooze_hours: Annotated[float | None, Query(
            ge=MIN_SNOOZE_HOURS, le=MAX_SNOOZE_HOURS,
            description="As the body's snooze_hours (give it in one place).")] = None,
    ) -> Response:
        hub = auth.owner
        gw.rate_limit(hub)
        _, data = await read_json(request, config.max_request_bytes, optional=True)
        request_body = CancelRequest() if data is None else validate_body(CancelRequest, data)
        if (snooze_hours is not None and request_body.snooze_hours is not None
                and snooze_hours != request_body.snooze_hours):
            raise ApiError(422, "invalid_request",
                           f"snooze_hours: given twice with different values "
                           f"({snooze_hours:g} in the query, {request_body.snooze_hours:g} in "
                           "the body)")
        snooze = request_body.snooze_hours if snooze_hours is None else snooze_hours
        # another hub's pickup is refused by its id, open or not: refused only while open
        # (404 once it was not), the answer told a hub whether another hub's was (an audit)
        named = config.network.villages.get(pickup_village_id(pickup_id) or "")
        if named is not None and named.hub_id != hub:
            log.warning("403: hub %s (token %s) tried to cancel pickup %r of hub %r",
                        hub, auth.token_id, pickup_id, named.hub_id)
            raise ApiError(403, "forbidden", f"pickup {pickup_id!r} belongs to another hub")
        rows = await open_pickups("open")
        row = next((r for r in rows if r.get("pickup_id") == pickup_id), None)
        if row is None:
            raise ApiError(404, "not_found", f"no open pickup {pickup_id!r} (collected or "
                                             "cancelled already, or not requested yet)")
        if row.get("hub_id") != hub:
            log.warning("403: hub %s (token %s) tried to cancel pickup %r of hub %r",
                        hub, auth.token_id, pickup_id, row.get("hub_id"))
            raise ApiError(403, "forbidden", f"pickup {pickup_id!r} belongs to another hub")
        key = (pickup_id, str(row.get("requested_at")))
        event = sent.sent(key)
        if event is not None and (event.reason, event.snooze_hours) != (
                request_body.reason, snooze):
            raise ApiError(409, "cancel_pending",
                           f"pickup {pickup_id!r} has a cancel requested already (reason "
                           f"{event.reason!r}, snooze_hours {event.snooze_hours}); it is "
                           "applied once, as sent")
        if event is None:
            event = cancel_event(pickup_id, hub, str(row["village_id"]),
                                 request_body.reason, snooze)
            # kept before any await: two clicks at once both missed it, and the second
            # event (same id, another time) was dead-lettered (a review)
            sent.put(key, event)
        down = await run_in_threadpool(gw.kafka_down)
        if down is not None:
            raise ApiError(503, "kafka_unavailable", f"Kafka is not available: {down}",
                           headers={"Retry-After": "5"})
        try:
            [failure] = await run_in_threadpool(
                gw.produce,
                [Record(config.topics.hub_events, event.village_id.encode(),
                        event_to_json(event))],
            )
        except KafkaUnavailable as exc:
            raise ApiError(503, "kafka_unavailable", str(exc),
                           headers={"Retry-After": "5"}) from None
        if failure is not None:
            raise ApiError(503, "kafka_unavailable",
                           f"pickup_cancelled may not have been written (not acknowledged: "
                           f"{type(failure).__name__}: {failure}); cancelling again is safe: it "
                           "is applied once (404 if the first one was)",
                           headers={"Retry-After": "5"})
        metrics.events.labels(hub, "accepted", "").inc()
        return JSONResponse(
            CancelResult(pickup_id=pickup_id, village_id=event.village_id, hub_id=hub,
                         event_id=event.event_id, status="cancel_requested",
                         snooze_hours=getattr(event, "snooze_hours", None)).model_dump(),
            status_code=202,
        )

    return router
