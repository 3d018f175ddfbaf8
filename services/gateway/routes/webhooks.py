"""``/v1/webhook``: a hub registers, reads or removes the URL its pickup notices go to."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from services.auth.tokens import TokenInfo
from services.gateway.service import AUTH_ERRORS, Gateway
from services.gateway.webhook_delivery import check_url
from services.http.body import BODY_ERRORS, read_json, validate_body
from services.http.errors import ApiError
from services.http.openapi import error

log = logging.getLogger("packloop.gateway")

RATE_LIMITED = error(429, "Over the hub's rate limit (see Retry-After).")

#: threads that look up webhook hosts (apart from the request threads)
LOOKUP_THREADS = 4
#: how long registering a webhook waits for its host's address
CHECK_URL_WAIT_S = 2.0

SIGNATURE_HELP = (
    "Each delivery is a POST of the notice's JSON; header X-Packloop-Signature is "
    "'sha256=' + hex(HMAC-SHA256(secret, raw body)), X-Packloop-Event-Id the notice's "
    "event_id (deliveries are at least once: deduplicate by it)."
)


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


def router(gw: Gateway) -> APIRouter:
    lookups = ThreadPoolExecutor(max_workers=LOOKUP_THREADS,
                                 thread_name_prefix="webhook-url-check")
    router = APIRouter()
    config = gw.config

    @router.put(
        "/v1/webhook",
        response_model=WebhookRegistered,
        summary="Register (or replace) the hub's webhook",
        description="Every pickup_requested and pickup_overdue for the hub's villages is "
        "POSTed there, retried with back-off. " + SIGNATURE_HELP,
        responses={**AUTH_ERRORS, **BODY_ERRORS, **RATE_LIMITED,
                   **error(400, "URL not allowed (bad_url), or the body is not valid JSON "
                                   "(malformed_json) or not an object (bad_request).")},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": WebhookRequest.model_json_schema()}}}},
    )
    async def put_webhook(request: Request,
                          auth: TokenInfo = Depends(gw.hub_auth)) -> Response:  # noqa: B008
        gw.rate_limit(auth.owner)
        _, data = await read_json(request, config.max_request_bytes)
        body = validate_body(WebhookRequest, data)
        # the host's DNS lookup off the event loop, and not waited for past
        # CHECK_URL_WAIT_S: in line, a slow resolver held every hub's requests for its 5 s
        # (an outside audit); a name not resolved in time passes as one not resolving yet
        # does: every delivery checks its address again
        # in threads of their own: lookups a resolver never answers filled the shared
        # pool the token checks run in (a review)
        try:
            problem = await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(
                lookups, check_url, body.url, config.webhook_allow_private),
                CHECK_URL_WAIT_S)
        except TimeoutError:
            problem = None
        if problem:
            raise ApiError(400, "bad_url", problem)
        url, secret = await run_in_threadpool(gw.hooks.set, auth.owner, body.url)
        log.info("hub %s registered a webhook (token %s)", auth.owner, auth.token_id)
        return JSONResponse(WebhookRegistered(hub_id=auth.owner, url=url, secret=secret,
                                              signature=SIGNATURE_HELP).model_dump())

    @router.get("/v1/webhook", response_model=WebhookInfo, summary="The hub's webhook",
                responses={**AUTH_ERRORS, **RATE_LIMITED,
                           **error(404, "No webhook registered.")})
    async def get_webhook(auth: TokenInfo = Depends(gw.hub_auth)) -> Response:  # noqa: B008
        gw.rate_limit(auth.owner)
        hook = await run_in_threadpool(gw.hooks.get, auth.owner)
        if hook is None:
            raise ApiError(404, "not_found", f"hub {auth.owner} has no webhook")
        return JSONResponse(WebhookInfo(hub_id=auth.owner, url=hook["url"],
                                        created_at=hook["created_at"]).model_dump())

    @router.delete("/v1/webhook", status_code=204, summary="Remove the hub's webhook",
                   responses={**AUTH_ERRORS, **RATE_LIMITED,
                           **error(404, "No webhook registered.")})
    async def delete_webhook(auth: TokenInfo = Depends(gw.hub_auth)) -> Response:  # noqa: B008
        gw.rate_limit(auth.owner)
        if not await run_in_threadpool(gw.hooks.delete, auth.owner):
            raise ApiError(404, "not_found", f"hub {auth.owner} has no webhook")
        return Response(status_code=204)

    return router
