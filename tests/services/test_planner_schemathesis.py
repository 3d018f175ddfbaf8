"""Schemathesis against the planner's OpenAPI document (bounded examples, in-memory Kafka).

No planner worker runs here: submitted jobs stay queued. ``from_state`` requests read a
stub stream worker (its /status and /pickups contract) and an empty hub-events topic.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from fastapi import FastAPI

from services.auth.tokens import TokenStore
from services.planner import JobStore, PlannerConfig, create_app
from streams.kafka import KafkaConnection
from streams.topics import Topics
from tests.services.helpers import NETWORK, FakeKafkaIO, auth, run_schemathesis

TOKENS: dict[str, str] = {}
EXAMPLES = int(os.environ.get("PACKLOOP_SCHEMATHESIS_EXAMPLES", "15"))


def stub_worker(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/status":
        return httpx.Response(200, json={
            "villages": {"H01-V001": {"generated_grams": {"cardboard": 9000},
                                      "recovered_grams": {}, "outstanding_grams":
                                      {"cardboard": 9000}, "over_collected_grams": {},
                                      "open_pickup": None}},
            "hubs": {"H01": {"containers": {"insulated_box": {
                "issued": 10, "returned": 4, "in_circulation": 6, "damaged": 1, "lost": 0,
                "overdue": 0}}}},
            "pickups": {}, "events": {}})
    return httpx.Response(200, json={"status": "open", "count": 0, "pickups": []})


@pytest.fixture(scope="module")
def planner_app(tmp_path_factory) -> Iterator[FastAPI]:
    d = tmp_path_factory.mktemp("stp")
    tokens = TokenStore(f"sqlite:///{d}/tokens.db")
    jobs = JobStore(f"sqlite:///{d}/plans.db")
    _, TOKENS["planner"] = tokens.add("planner", "ops")
    app = create_app(PlannerConfig(kafka=KafkaConnection(), topics=Topics("stp-"),
                                   network=NETWORK, tokens=tokens, jobs=jobs,
                                   kafka_io=FakeKafkaIO(),
                                   worker_transport=httpx.MockTransport(stub_worker),
                                   max_request_bytes=512 * 1024))
    yield app
    jobs.close()
    tokens.close()


@pytest.mark.slow
def test_planner_conforms_to_its_openapi_document(planner_app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", planner_app)
    failures = run_schemathesis(schema, auth(TOKENS["planner"]), examples=EXAMPLES)
    assert not failures, "\n\n".join(failures)
