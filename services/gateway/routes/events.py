"""``POST /v1/events``: one event or a batch from a hub, each answered accepted or rejected.

Order of checks: token (401) → per-hub rate (429) → the body's Content-Type (415) →
request size (413) → JSON (400, :mod:`services.http.body`) → JSON shape (400) →
batch size (413) → ownership of every event (403, nothing is produced) →
per-event validation, the 1 MiB event limit and the worker's time rules (rejected,
answered) → produce with acks=all (503 if Kafka does not acknowledge in time).

An event is measured as received, unknown fields and all (the body of a single event, or
an event's compact JSON in a batch), by the rule ``packloop emit`` applies to a line
(:func:`streams.events.size_problem`), so the two accept the same events.

An event counts as accepted only when Kafka acknowledged it before the answer was sent,
and only if the stream worker will apply it (:mod:`services.acceptance`). Rejected events
are answered synchronously and counted in metrics, never dead-lettered: the hub has the
answer and its own copy. A request none of whose events was accepted is answered 422, so
a client that only looks at the status code does not take it for a success. A 503 lists
every event as well (accepted, rejected, or unavailable: resend it), whether Kafka was
known to be down before anything was sent (then nothing was written) or stopped answering
part-way, so a client has one answer to read and resends only what may be missing. An
event sent but not acknowledged in time may still be written when the broker wakes up:
its answer says so, and that a resend is safe (the worker counts an event_id once).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any, Literal, NoReturn

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from services.auth.tokens import TokenInfo
from services.gateway.service import AUTH_ERRORS, Gateway
from services.http.body import BODY_ERRORS, read_json
from services.http.errors import ApiError
from services.http.kafka_io import KafkaUnavailable, Record, is_unavailable
from services.http.openapi import ErrorBody, error
from streams import (
    MAX_EVENT_BYTES,
    EventError,
    Network,
    check_occurred_at,
    event_to_json,
    parse_hub_event,
)
from streams.events import size_problem

#: a batch of more events than this is checked in a worker thread
INLINE_EVENTS = 20

log = logging.getLogger("packloop.gateway")


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


class IngestRejected(ErrorBody):
    accepted: int = Field(description="Always 0: nothing was written.")
    rejected: int
    results: list[EventOutcome] = Field(description="Each event's reason.")


class IngestUnavailable(ErrorBody):
    accepted: int = Field(description="Events written before Kafka stopped answering.")
    rejected: int
    results: list[EventOutcome] = Field(
        description="Every event: accepted (written before Kafka stopped answering), "
        "unavailable (not written, or not acknowledged in time and perhaps written: resend "
        "it, the worker counts an event_id once) or rejected (its reason; do not resend).",
    )


def event_id_of(item: Any) -> str | None:
    value = item.get("event_id") if isinstance(item, dict) else None
    return value if isinstance(value, str) else None


def ownership_problem(item: Any, hub: str, network: Network) -> str | None:
    """Why ``item`` is not this hub's to send (403), from its raw fields."""
    if not isinstance(item, dict):
        return None
    claimed = item.get("hub_id")
    if isinstance(claimed, str) and claimed != hub:
        return f"event for hub {claimed[:64]!r}"
    village_id = item.get("village_id")
    if isinstance(village_id, str):
        village = network.villages.get(village_id)
        if village is not None and village.hub_id != hub:
            return f"village {village_id!r} belongs to hub {village.hub_id!r}"
    return None


def raise_unavailable(final: list[EventOutcome], message: str) -> NoReturn:
    accepted = sum(1 for o in final if o.status == "accepted")
    rejected = sum(1 for o in final if o.status == "rejected")
    raise ApiError(503, "kafka_unavailable", message, headers={"Retry-After": "5"},
                   accepted=accepted, rejected=rejected,
                   results=[o.model_dump() for o in final])


def router(gw: Gateway) -> APIRouter:
    router = APIRouter()
    config = gw.config
    metrics = gw.metrics

    def unavailable(outcomes: list[EventOutcome | None], record_index: list[int],
                    items: list[Any], hub: str, why: str) -> NoReturn:
        """503 before anything was sent: every valid event unavailable, the rest as
        they were answered."""
        for i in record_index:
            outcomes[i] = EventOutcome(index=i, event_id=event_id_of(items[i]),
                                       status="unavailable", reason="kafka_unavailable",
                                       message=f"not written: {why}")
        metrics.events.labels(hub, "unavailable", "kafka").inc(len(record_index))
        raise_unavailable([o for o in outcomes if o is not None],
                          f"{why}; nothing was written, resend the events marked "
                          "unavailable")

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

    @router.post(
        "/v1/events",
        response_model=IngestResult,
        summary="Send one event or a batch",
        description=(
            "Body: one event object, or a JSON array of events. Each event is answered "
            "accepted (written to Kafka, acks=all) or rejected with its reason. Events must "
            "carry the token's hub_id and a village of that hub (403 otherwise, nothing is "
            "written). Resending an event with the same event_id is safe: the stream "
            "deduplicates by it.\n\n"
            f"Each event, as sent (unknown fields included; in a batch, its compact JSON), "
            f"may be at most {MAX_EVENT_BYTES} bytes ({MAX_EVENT_BYTES // 1024 // 1024} MiB; "
            "reason too_large), and so may the event as written to Kafka; the whole request "
            f"at most {config.max_request_bytes} bytes (413). An event dated more than "
            f"{config.acceptance.future_tolerance_hours:g} h ahead of the clock (reason "
            "future_timestamp) or more than "
            f"{config.acceptance.max_lateness_days:g} days behind it (reason too_late) is "
            "rejected: the stream could not count it.\n\n"
            "200 when at least one event was accepted (the others carry their reasons); "
            "422 when every event was rejected."
        ),
        responses={
            **AUTH_ERRORS,
            **BODY_ERRORS,
            **error(400, "Body is not valid JSON, or not a JSON object or array."),
            **error(403, "An event belongs to another hub; nothing was written."),
            **error(413, "Request or batch too large."),
            **error(422, "Every event was rejected; nothing was written.", IngestRejected),
            **error(429, "Over the hub's rate limit (see Retry-After)."),
            **error(503, "Kafka is down or did not acknowledge in time; events marked "
                         "unavailable may not have been written: resend them after "
                         "Retry-After (safe: an event_id is counted once).",
                    IngestUnavailable),
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": events_body_schema}},
            }
        },
    )
    async def post_events(request: Request,
                          auth: TokenInfo = Depends(gw.hub_auth)) -> Response:  # noqa: B008
        hub = auth.owner
        gw.rate_limit(hub)
        body, data = await read_json(request, config.max_request_bytes,
                                     "send fewer events per request")
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
            problem = ownership_problem(item, hub, config.network)
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
        def checked() -> tuple[list[EventOutcome | None], list[Record], list[int]]:
            outcomes: list[EventOutcome | None] = [None] * len(items)
            records: list[Record] = []
            record_index: list[int] = []
            for i, item in enumerate(items):
                event_id = event_id_of(item)
                try:
                    if not isinstance(item, dict):
                        raise EventError("an event must be a JSON object", code="not_an_object")
                    # as received: the body of a single event, an event's compact JSON in a batch
                    received = len(body.strip()) if isinstance(data, dict) \
                        else len(orjson.dumps(item))
                    invalid = size_problem(received)
                    if invalid is not None:
                        raise invalid
                    event = parse_hub_event(item)
                    value = event_to_json(event)
                    invalid = (config.network.check_event(event)
                               or check_occurred_at(event.occurred_at, datetime.now(UTC),
                                                    config.acceptance)
                               or size_problem(received, value))
                    if invalid is not None:
                        raise invalid
                except EventError as exc:
                    outcomes[i] = EventOutcome(index=i, event_id=event_id, status="rejected",
                                               reason=exc.code, field=exc.field, message=str(exc))
                    metrics.events.labels(hub, "rejected", exc.code).inc()
                    continue
                except (ArithmeticError, TypeError, ValueError) as exc:  # never a 500 for one event
                    outcomes[i] = EventOutcome(index=i, event_id=event_id, status="rejected",
                                               reason="invalid", message=f"invalid event: {exc}")
                    metrics.events.labels(hub, "rejected", "invalid").inc()
                    continue
                records.append(Record(config.topics.hub_events, event.village_id.encode(), value))
                record_index.append(i)
            return outcomes, records, record_index

        # a batch is checked off the event loop: 20 batches of 500 events in line held
        # every other hub's requests for up to 3.25 s (an outside audit)
        outcomes, records, record_index = (
            checked() if len(items) <= INLINE_EVENTS else await run_in_threadpool(checked))
        if records:
            down = await run_in_threadpool(gw.kafka_down)
            if down is not None:
                unavailable(outcomes, record_index, items, hub,
                            f"Kafka is not available: {down}")
            try:
                results = await run_in_threadpool(gw.produce, records)
            except KafkaUnavailable as exc:
                unavailable(outcomes, record_index, items, hub, str(exc))
            for i, failure in zip(record_index, results, strict=True):
                ev_id = event_id_of(items[i])
                if failure is None:
                    outcomes[i] = EventOutcome(index=i, event_id=ev_id, status="accepted")
                    metrics.events.labels(hub, "accepted", "").inc()
                elif is_unavailable(failure):
                    outcomes[i] = EventOutcome(
                        index=i, event_id=ev_id, status="unavailable", reason="kafka_unavailable",
                        message=f"may not have been written (not acknowledged: "
                                f"{type(failure).__name__}: {failure}); resending it is safe, "
                                "an event_id is counted once")
                    metrics.events.labels(hub, "unavailable", "kafka").inc()
                else:
                    outcomes[i] = EventOutcome(
                        index=i, event_id=ev_id, status="rejected", reason="kafka_rejected",
                        message=f"Kafka refused the record: {type(failure).__name__}: {failure}")
                    metrics.events.labels(hub, "rejected", "kafka_rejected").inc()
            final = [o for o in outcomes if o is not None]
            missing = sum(1 for o in final if o.status == "unavailable")
            if missing:
                raise_unavailable(final, f"Kafka did not acknowledge {missing} event(s) in "
                                         "time; they may have been written all the same: "
                                         "resend the events marked unavailable, which is "
                                         "safe (an event_id is counted once)")
        final = [o for o in outcomes if o is not None]
        accepted = sum(1 for o in final if o.status == "accepted")
        answer: dict[str, Any] = {"accepted": accepted, "rejected": len(final) - accepted,
                                  "results": [o.model_dump() for o in final]}
        if accepted == 0:
            reasons = sorted({o.reason or "invalid" for o in final})
            raise ApiError(422, "all_rejected",
                           f"none of the {len(final)} event(s) was accepted "
                           f"({', '.join(reasons)}); see results", **answer)
        return JSONResponse(answer)

    return router
