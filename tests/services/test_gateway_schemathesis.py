"""Schemathesis against the gateway's OpenAPI document (bounded examples, real broker).

Checks: no 5xx, documented status codes, content types, headers and response schemas.
``PACKLOOP_SCHEMATHESIS_EXAMPLES`` raises the bound (CI default: 25 per operation).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.auth.tokens import TokenStore
from services.gateway import GatewayConfig, create_app
from streams.network import load_network
from streams.topics import Topics, create_topics
from tests.services.test_gateway import FakeWorker

EXAMPLES = int(os.environ.get("PACKLOOP_SCHEMATHESIS_EXAMPLES", "25"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
TOKENS: dict[str, str] = {}


@pytest.fixture(scope="module")
def gateway_app(kafka, tmp_path_factory) -> Iterator[FastAPI]:
    topics = Topics(f"st-{uuid.uuid4().hex[:6]}-")
    create_topics(kafka, topics)
    store = TokenStore(f"sqlite:///{tmp_path_factory.mktemp('st')}/tokens.db")
    _, TOKENS["hub"] = store.add("hub", "H01")
    worker = FakeWorker()
    worker.pickups = [{"pickup_id": "P-H01-V007-1", "village_id": "H01-V007", "hub_id": "H01",
                       "requested_at": "2026-11-11T08:00:00Z", "reasons": ["age"],
                       "overdue": False, "outstanding_grams": {"cardboard": 60000}}]
    app = create_app(GatewayConfig(
        kafka=kafka, topics=topics, network=load_network(), tokens=store, webhooks=False,
        worker_transport=httpx.MockTransport(worker.handler), rate_per_s=10_000,
        rate_burst=10_000, max_request_bytes=256 * 1024, max_batch=50))
    yield app
    app.state.gateway.stop()
    store.close()


@pytest.fixture(scope="module")
def gateway_schema(gateway_app: FastAPI) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_asgi("/openapi.json", gateway_app)


def run_schemathesis(schema: schemathesis.BaseSchema, headers: dict[str, str],
                     examples: int = EXAMPLES) -> list[str]:
    """Every operation, positive and negative data; returns one line per failing operation.

    (Schemathesis' own pytest plugin does not load under pytest 9, so the operations'
    Hypothesis strategies are driven directly.)
    """
    from hypothesis import given
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=examples, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            def check(case: schemathesis.Case) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                check()
            except Unsatisfiable:  # nothing to make invalid (an operation without inputs)
                continue
            except Exception as exc:  # noqa: BLE001 - collect, report all operations
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


def test_gateway_conforms_to_its_openapi_document(gateway_schema) -> None:
    failures = run_schemathesis(gateway_schema, {"Authorization": f"Bearer {TOKENS['hub']}"})
    assert not failures, "\n\n".join(failures)
