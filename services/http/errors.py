"""The error shape both HTTP services answer with: ``{"error": code, "message": text}``.

One place, so the gateway and the planner fail the same way; the body's OpenAPI model is
:class:`services.http.openapi.ErrorBody`.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.auth.guard import AuthGuard
from services.auth.tokens import (
    MAX_TOKEN_LENGTH,
    Kind,
    TokenCheck,
    TokenInfo,
    TokenStore,
    bearer_token,
    token_id_of,
)

log = logging.getLogger("packloop.http")

#: seconds a caller is asked to wait when the database cannot be reached
DATABASE_RETRY_S = 10


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.extra = extra


async def require_token(request: Request, tokens: TokenStore, kind: Kind, create_hint: str,
                        realm: str) -> TokenInfo:
    """The caller's token record, or 401 naming how to get a token (never echoing one).

    When the app has an :class:`~services.auth.guard.AuthGuard` (``app.state.auth_guard``)
    every check is audited and counted, and a peer over a failure limit gets 429 before
    its token is looked at (`services.auth.guard`).
    """
    guard: AuthGuard | None = getattr(request.app.state, "auth_guard", None)
    peer = request.client.host if request.client else "unknown"
    token = bearer_token(request.headers.get("authorization"))
    if guard is not None and token is not None:
        wait = guard.blocked_for(
            peer, token_id_of(token) if len(token) <= MAX_TOKEN_LENGTH else None)
        if wait > 0:
            raise ApiError(
                429, "too_many_auth_failures",
                f"too many refused tokens from {peer}; retry after the Retry-After seconds",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
    check: TokenCheck = (TokenCheck(None, "missing") if token is None
                         else await run_in_threadpool(tokens.check, kind, token))
    if guard is not None:
        guard.record(peer, check)
    if check.outcome == "expired":  # only the holder of the secret learns it
        raise ApiError(
            401, "token_expired",
            f"this {kind} token has expired: create a new one with `{create_hint}`",
            headers={"WWW-Authenticate": f'Bearer realm="{realm}", error="invalid_token", '
                                         'error_description="the token expired"'},
        )
    if check.info is None:
        raise ApiError(
            401, "unauthorized",
            f"a valid {kind} token is required: Authorization: Bearer <token> "
            f"(create one with `{create_hint}`)",
            headers={"WWW-Authenticate": f'Bearer realm="{realm}"'},
        )
    return check.info


def install_error_handlers(app: FastAPI) -> None:
    """Answer ApiError, HTTP errors and request validation errors in the common shape."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        body: dict[str, Any] = {"error": exc.code, "message": exc.message}
        body.update(exc.extra)
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse({"error": f"http_{exc.status_code}", "message": str(exc.detail)},
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(OperationalError)
    async def _database_down(request: Request, exc: OperationalError) -> JSONResponse:
        # the job store or token database unreachable (PostgreSQL stopped, SQLite locked):
        # a bare "Internal Server Error" and a traceback before; now what Kafka being down
        # gets, 503 with Retry-After (the driver's text can name hosts, never a password,
        # but the body says only what a caller can act on)
        log.warning("%s %s: the database is unavailable (%s)", request.method,
                    request.url.path, type(exc.orig).__name__ if exc.orig else "OperationalError")
        return JSONResponse(
            {"error": "database_unavailable",
             "message": "the service's database cannot be reached now; retry after the "
                        "Retry-After seconds (a submission retried with its Idempotency-Key "
                        "makes no second job)"},
            status_code=503, headers={"Retry-After": str(DATABASE_RETRY_S)})

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return JSONResponse(
            {"error": "invalid_request", "message": f"{where}: {first.get('msg', 'invalid')}"},
            status_code=422,
        )
