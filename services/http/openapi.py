"""The parts of an HTTP service's API that the gateway and the planner share: the error
body and health models, the liveness and readiness routes, ``/metrics``, and the bearer
token scheme on every ``/v1/`` operation of the OpenAPI document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from pydantic import BaseModel, Field

Responses = dict[int | str, dict[str, Any]]


class ErrorBody(BaseModel):
    error: str = Field(description="Machine-readable code, e.g. 'forbidden', 'rate_limited'.")
    message: str = Field(description="What went wrong, for a person.")


class Health(BaseModel):
    status: str
    kafka: str | None = None
    database: str | None = None


def error(status: int, description: str, model: type[BaseModel] = ErrorBody) -> Responses:
    """One documented error answer, for a route's ``responses``."""
    return {status: {"model": model, "description": description}}


def add_health_routes(app: FastAPI, *, liveness: str, readiness: str,
                      kafka_unavailable: Callable[[], str | None],
                      check_database: Callable[[], object]) -> None:
    """``/healthz`` (the process answers) and ``/readyz`` (Kafka and the database answer;
    503 naming what does not)."""

    @app.get("/healthz", response_model=Health, summary=liveness)
    async def healthz() -> Response:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", response_model=Health, summary=readiness,
             responses={503: {"model": Health, "description": "Not ready."}})
    async def readyz() -> Response:
        down = await run_in_threadpool(kafka_unavailable)
        db = "ok"
        try:
            await run_in_threadpool(check_database)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            db = f"{type(exc).__name__}: {exc}"
        ready = down is None and db == "ok"
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "kafka": down or "ok", "database": db},
            status_code=200 if ready else 503,
        )


def add_metrics_route(app: FastAPI, registry: CollectorRegistry,
                      refresh: Callable[[], None] | None = None) -> None:
    """``/metrics`` in Prometheus' text format (not in the OpenAPI document); collected in a
    thread, since a collector may read a database."""

    @app.get("/metrics", include_in_schema=False)
    async def prometheus_metrics() -> Response:
        if refresh is not None:
            refresh()
        data = await run_in_threadpool(generate_latest, registry)
        return Response(data, media_type=CONTENT_TYPE_LATEST)


AUTH_LIMIT = "Too many refused tokens from this address (see Retry-After)."


def _document_auth_limit(responses: dict[str, Any]) -> None:
    """Every authenticated operation may answer 429 when its caller's address is blocked
    (:mod:`services.auth.guard`)."""
    headers = {"Retry-After": {"schema": {"type": "integer"},
                               "description": "Seconds until the address may try again."}}
    if "429" in responses:
        responses["429"]["description"] += " Or: too many refused tokens from this address."
        responses["429"].setdefault("headers", headers)
        return
    responses["429"] = {
        "description": AUTH_LIMIT,
        "headers": headers,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
    }


def use_bearer_scheme(app: FastAPI, name: str, description: str,
                      extend: Callable[[dict[str, Any]], None] | None = None) -> None:
    """Generate the OpenAPI document once, with the bearer scheme ``name`` required by every
    ``/v1/`` operation; ``extend`` may add to the document first."""

    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version,
                             description=app.description, routes=app.routes)
        components = schema.setdefault("components", {})
        components.setdefault("securitySchemes", {})[name] = {
            "type": "http", "scheme": "bearer", "description": description,
        }
        if extend is not None:
            extend(schema)
        for path, ops in schema.get("paths", {}).items():
            if path.startswith("/v1/"):
                for op in ops.values():
                    op["security"] = [{name: []}]
                    _document_auth_limit(op.setdefault("responses", {}))
        app.openapi_schema = schema
        return schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
