"""The gateway's own Prometheus metrics (one registry per app, so tests can build several)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class GatewayMetrics:
    def __init__(self) -> None:
        # no _created series beside each counter and histogram, as on the worker: they
        # doubled the gateway's series, and no rule or dashboard reads them
        disable_created_metrics()
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "packloop_gateway_requests_total",
            "HTTP requests answered, by route template, method, status code and hub "
            "(hub is empty when the request was not authenticated).",
            ["route", "method", "status", "hub"],
            registry=r,
        )
        self.request_duration = Histogram(
            "packloop_gateway_request_duration_seconds",
            "Time to answer an HTTP request.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.events = Counter(
            "packloop_gateway_events_total",
            "Events received, by hub and outcome (accepted, rejected, forbidden, unavailable) "
            "and rejection reason.",
            ["hub", "outcome", "reason"],
            registry=r,
        )
        self.produce_duration = Histogram(
            "packloop_gateway_produce_duration_seconds",
            "Time from the first send of a request's events to the broker's last "
            "acknowledgement (acks=all).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.kafka_ready = Gauge(
            "packloop_gateway_kafka_ready",
            "1 when the last Kafka probe succeeded, else 0.",
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "packloop_gateway_webhook_deliveries_total",
            "Pickup notices delivered to hub webhooks, by hub and outcome "
            "(delivered, failed = given up after all attempts, skipped = no webhook, "
            "refused = the URL's host resolves to a private address).",
            ["hub", "outcome"],
            registry=r,
        )
        self.dispatches = Counter(
            "packloop_gateway_dispatches_total",
            "Run sheets read from the dispatch topic, by hub and outcome (stored; same = a "
            "redelivery of one stored; rejected = a different sheet for a hub and date already "
            "published, which the gateway refuses; invalid = not a run sheet, hub empty).",
            ["hub", "outcome"],
            registry=r,
        )
        self.webhook_attempts = Counter(
            "packloop_gateway_webhook_attempts_total",
            "Webhook HTTP attempts, by hub and result (ok, error).",
            ["hub", "result"],
            registry=r,
        )
        self.webhook_duration = Histogram(
            "packloop_gateway_webhook_attempt_duration_seconds",
            "Duration of one webhook HTTP attempt.",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
