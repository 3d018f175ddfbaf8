"""``GET /v1/hubs/{hub_id}/dispatch?date=YYYY-MM-DD``: the hub's run sheet for a date, as
the planner published it (only to the hub's own token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response

from services.auth.tokens import TokenInfo
from services.gateway.service import AUTH_ERRORS, Gateway
from services.http.errors import ApiError
from services.http.openapi import error
from services.planner.dispatch import CalendarDate, Dispatch


def router(gw: Gateway) -> APIRouter:
    router = APIRouter()

    @router.get(
        "/v1/hubs/{hub_id}/dispatch",
        response_model=Dispatch,
        summary="The hub's dispatch (run sheet) for a date",
        description=(
            "Trips in stop order, each on a van with its planned times; per stop the "
            "parcels to deliver and to take back by temperature class, the reusable boxes "
            "to drop, and the empties and recyclables to collect. Published by the planner "
            "service's daily dispatch plan (PACKLOOP_DISPATCH_AT)."
        ),
        responses={**AUTH_ERRORS, **error(403, "hub_id is not the token's hub."),
                   **error(404, "Unknown hub, or no dispatch for that hub and date."),
                   **error(429, "Over the hub's rate limit (see Retry-After).")},
    )
    async def hub_dispatch(
        hub_id: Annotated[str, Path(min_length=1, max_length=128)],
        day: Annotated[CalendarDate, Query(alias="date", description="YYYY-MM-DD (local).")],
        auth: TokenInfo = Depends(gw.hub_auth),  # noqa: B008
    ) -> Response:
        gw.rate_limit(auth.owner)
        gw.own_hub(hub_id, auth, "dispatch")
        found = await run_in_threadpool(gw.dispatches.get, hub_id, day.isoformat())
        if found is None:
            raise ApiError(404, "not_found", f"no dispatch for hub {hub_id} on {day} (the "
                           "planner publishes tomorrow's at PACKLOOP_DISPATCH_AT)")
        return JSONResponse(found)

    return router
