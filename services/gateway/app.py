"""The hub ingestion gateway: an HTTP front door to the hub-events topic.

:func:`create_app` builds the shared :class:`~services.gateway.service.Gateway` and mounts
the routes (events, pickups, webhooks), health, ``/metrics`` and the OpenAPI document,
whose ``HubEvent`` component is the event contract of :mod:`streams.events`.
"""

from __future__ import annotations

import time
from contextlib import asynccontextmanager
from typing import Any, cast

from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import TypeAdapter

from services.auth.guard import AuthGuard
from services.gateway.config import GatewayConfig
from services.gateway.routes import dispatch, events, hubs, pickups, webhooks
from services.gateway.service import Gateway
from services.http.access_log import redact_access_log
from services.http.errors import install_error_handlers
from services.http.headers import install_security_headers
from services.http.openapi import add_health_routes, add_metrics_route, use_bearer_scheme
from streams import HubEvent


def _add_hub_event_schemas(schema: dict[str, Any]) -> None:
    """The event formats as components (HubEvent and the event types it is a union of)."""
    components = schema.setdefault("components", {})
    # an annotated union is a type form, which mypy checks only with its incomplete
    # TypeForm feature
    event_schema = TypeAdapter(cast(Any, HubEvent)).json_schema(
        ref_template="#/components/schemas/{model}"
    )
    for name, definition in event_schema.pop("$defs", {}).items():
        components.setdefault("schemas", {}).setdefault(name, definition)
    components["schemas"]["HubEvent"] = event_schema


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
    app.state.auth_guard = AuthGuard("gateway", "hub", metrics.registry)

    install_error_handlers(app)
    install_security_headers(app)
    redact_access_log()

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

    for module in (events, pickups, webhooks, hubs, dispatch):
        app.include_router(module.router(gw))

    add_health_routes(
        app, liveness="Liveness (the process answers)",
        readiness="Readiness (Kafka and token DB reachable)",
        kafka_unavailable=gw.kafka_down,
        check_database=lambda: config.tokens.list("hub", "\x00"),
    )
    add_metrics_route(
        app, metrics.registry,
        refresh=lambda: metrics.kafka_ready.set(0 if gw.kafka_io.unavailable(0) else 1),
    )
    use_bearer_scheme(app, "hubToken", "Hub token from `packloop hubs add-token HUB`.",
                      extend=_add_hub_event_schemas)
    return app
