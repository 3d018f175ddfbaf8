"""Schemathesis against the gateway's OpenAPI document (bounded examples, in-memory Kafka).

Checks: no 5xx, documented status codes, content types, headers and response schemas.
``PACKLOOP_SCHEMATHESIS_EXAMPLES`` raises the bound (CI default: 25 per operation).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from fastapi import FastAPI

from services.auth.tokens import TokenStore
from services.gateway import GatewayConfig, create_app
from streams.kafka import KafkaConnection
from streams.topics import Topics
from tests.services.helpers import NETWORK, FakeKafkaIO, FakeWorker, auth, run_schemathesis

EXAMPLES = int(os.environ.get("PACKLOOP_SCHEMATHESIS_EXAMPLES", "25"))
TOKENS: dict[str, str] = {}


@pytest.fixture(scope="module")
def gateway_app(tmp_path_factory) -> Iterator[FastAPI]:
    store = TokenStore(f"sqlite:///{tmp_path_factory.mktemp('st')}/tokens.db")
    _, TOKENS["hub"] = store.add("hub", "H01")
    worker = FakeWorker()
    worker.pickups = [{"pickup_id": "P-H01-V007-1", "village_id": "H01-V007", "hub_id": "H01",
                       "requested_at": "2026-11-11T08:00:00Z", "reasons": ["age"],
                       "overdue": False, "outstanding_grams": {"cardboard": 60000}}]
    app = create_app(GatewayConfig(
        kafka=KafkaConnection(), topics=Topics("st-"), network=NETWORK, tokens=store,
        kafka_io=FakeKafkaIO(), webhooks=False,
        worker_transport=httpx.MockTransport(worker.handler), rate_per_s=10_000,
        rate_burst=10_000, max_request_bytes=256 * 1024, max_batch=50))
    yield app
    app.state.gateway.stop()
    store.close()


@pytest.mark.slow
def test_gateway_conforms_to_its_openapi_document(gateway_app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", gateway_app)
    failures = run_schemathesis(schema, auth(TOKENS["hub"]), examples=EXAMPLES)
    assert not failures, "\n\n".join(failures)
