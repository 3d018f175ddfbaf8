"""The gateway's shared state, which every route module is handed: Kafka, the per-hub rate
limiter, metrics, hub webhooks and their delivery, the hubs' dispatches and their intake,
and the hub-token check."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from fastapi import Request

from services.auth.tokens import TokenInfo
from services.gateway.config import GatewayConfig
from services.gateway.dispatch_intake import DispatchIntake
from services.gateway.dispatch_store import DispatchStore
from services.gateway.metrics import GatewayMetrics
from services.gateway.ratelimit import RateLimiter
from services.gateway.webhook_delivery import WebhookDispatcher
from services.gateway.webhook_store import WebhookStore
from services.http.errors import ApiError, require_token
from services.http.kafka_io import KafkaIO, LiveKafkaIO, Record
from services.http.openapi import Responses, error

log = logging.getLogger("packloop.gateway")

#: What any authenticated route may answer before it does its own work.
AUTH_ERRORS: Responses = {
    **error(400, "Malformed request (e.g. a body that is not JSON)."),
    **error(401, "Missing or invalid hub token."),
    **error(422, "Invalid parameters."),
}


def unknown_hub(hub_id: str, known: Iterable[str]) -> str:
    """Why ``hub_id`` names no hub, with the hub it differs from only in case: hub ids are
    case-sensitive, as in the network reference data and the hub tokens."""
    alike = sorted(h for h in known if h.casefold() == hub_id.casefold())
    hint = f" (hub ids are case-sensitive: did you mean {alike[0]!r}?)" if alike else ""
    return f"unknown hub {hub_id!r}{hint}"


class Gateway:
    """State shared by the routes: Kafka, limiter, metrics, webhooks."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.metrics = GatewayMetrics()
        self.limiter = RateLimiter(config.rate_per_s, config.rate_burst)
        self.kafka_io: KafkaIO = config.kafka_io or LiveKafkaIO(
            config.kafka, config.produce_timeout_s, client_id="packloop-gateway",
            probe_interval_s=config.probe_interval_s)
        self.hooks = WebhookStore(config.tokens.engine)
        self.webhooks: WebhookDispatcher | None = None
        self.dispatches = DispatchStore(config.tokens.engine)
        self.dispatch_intake: DispatchIntake | None = None
        self._started = False

    def start(self) -> None:
        if self._started:
            return
        self._started = True
        self.kafka_io.start()
        if self.config.webhooks:
            self.webhooks = WebhookDispatcher(self.config, self.metrics, self.hooks).start()
        if self.config.dispatches:
            self.dispatch_intake = DispatchIntake(self.config, self.dispatches,
                                                  metrics=self.metrics).start()

    def stop(self) -> None:
        if self.webhooks is not None:
            self.webhooks.stop()
            self.webhooks = None
        if self.dispatch_intake is not None:
            self.dispatch_intake.stop()
            self.dispatch_intake = None
        self.kafka_io.stop()
        self._started = False

    def kafka_down(self) -> str | None:
        """Why Kafka is known to be down (from the probe), or None."""
        down = self.kafka_io.unavailable(self.config.kafka.connect_timeout_ms / 1000 + 1.0)
        self.metrics.kafka_ready.set(0 if down else 1)
        return down

    def produce(self, records: list[Record]) -> list[BaseException | None]:
        started = time.perf_counter()
        outcome = self.kafka_io.produce(records)
        self.metrics.produce_duration.observe(time.perf_counter() - started)
        return outcome

    async def hub_auth(self, request: Request) -> TokenInfo:
        """The caller's hub token (401 otherwise); the hub labels the request's metrics."""
        info: TokenInfo = await require_token(request, self.config.tokens, "hub",
                                              "packloop hubs add-token HUB", "packloop-gateway")
        request.state.hub = info.owner
        return info

    def own_hub(self, hub_id: str, auth: TokenInfo, what: str) -> None:
        """A hub token reads only its own hub's ``what``. A hub the network does not know is
        a 404 that says so (a mistyped id, ``h01`` for ``H01``, is not another hub's); a
        known hub that is not the token's is a 403, logged."""
        if hub_id == auth.owner:
            return
        if hub_id not in self.config.network.hubs:
            raise ApiError(404, "not_found", unknown_hub(hub_id, self.config.network.hubs))
        log.warning("403: hub %s (token %s) asked for hub %r's %s",
                    auth.owner, auth.token_id, hub_id, what)
        raise ApiError(403, "forbidden", f"a {auth.owner} token cannot read hub {hub_id}'s "
                                         f"{what}")

    def rate_limit(self, hub: str) -> None:
        wait = self.limiter.acquire(hub)
        if wait > 0:
            raise ApiError(
                429, "rate_limited",
                f"hub {hub} is over its rate of {self.config.rate_per_s:g} requests/s "
                f"(burst {self.config.rate_burst}); retry after the Retry-After seconds",
                headers={"Retry-After": RateLimiter.retry_after(wait)},
            )
