"""The gateway's configuration: what ``packloop gateway`` builds from the settings, and
what a test builds by hand (with an in-memory :class:`KafkaIO` and mock transports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from services.auth.tokens import TokenStore
from services.http.kafka_io import KafkaIO
from streams import AcceptanceLimits, KafkaConnection, Network, Topics


@dataclass
class GatewayConfig:
    kafka: KafkaConnection
    topics: Topics
    network: Network
    tokens: TokenStore
    max_request_bytes: int = 4 * 1024 * 1024
    max_batch: int = 500
    #: the worker's time rules, applied before an event is answered accepted
    acceptance: AcceptanceLimits = field(default_factory=AcceptanceLimits)
    rate_per_s: float = 20.0
    rate_burst: int = 40
    produce_timeout_s: float = 5.0
    worker_url: str = "http://127.0.0.1:6066"
    worker_transport: httpx.AsyncBaseTransport | None = None
    webhooks: bool = True
    webhook_timeout_s: float = 5.0
    webhook_max_attempts: int = 6
    webhook_backoff_s: float = 0.5
    webhook_allow_private: bool = False
    webhook_transport: httpx.BaseTransport | None = None
    probe_interval_s: float = 2.0
    #: consume the dispatch topic into the token database (from_settings: on by default;
    #: off here, so a gateway built by hand starts no consumer it was not asked for)
    dispatches: bool = False
    #: None: a LiveKafkaIO on ``kafka`` (producer and probe)
    kafka_io: KafkaIO | None = None
    #: the server secret the dispatch records must be signed with (`services.auth.signing`);
    #: None: unsigned records are taken (no pepper, nothing signs them)
    signing_pepper: str | None = None

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> GatewayConfig:
        from streams import load_network

        values: dict[str, Any] = dict(
            kafka=settings.kafka(),
            topics=settings.topics(),
            network=load_network(settings.network),
            max_request_bytes=settings.gateway_max_request_bytes,
            max_batch=settings.gateway_max_batch,
            acceptance=settings.acceptance(),
            rate_per_s=settings.gateway_rate_per_s,
            rate_burst=settings.gateway_rate_burst,
            produce_timeout_s=settings.gateway_produce_timeout_s,
            worker_url=settings.worker_url,
            webhooks=settings.gateway_webhooks,
            webhook_timeout_s=settings.webhook_timeout_s,
            webhook_max_attempts=settings.webhook_max_attempts,
            webhook_backoff_s=settings.webhook_backoff_s,
            webhook_allow_private=settings.webhook_allow_private,
            dispatches=settings.gateway_dispatch,
            signing_pepper=settings.pepper(),
        )
        values.update(overrides)
        if "tokens" not in values:
            values["tokens"] = settings.token_store()
        return cls(**values)
