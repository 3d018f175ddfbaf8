"""Schemathesis against the planner's OpenAPI document (bounded examples, real broker).

No planner worker runs here: submitted jobs stay queued. ``from_state`` requests read a
stub stream worker (its /status and /pickups contract) and the real, empty hub-events topic.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from fastapi import FastAPI

from services.auth.tokens import TokenStore
from services.planner import JobStore, PlannerConfig, create_app
from streams.network import load_network
from streams.topics import Topics, create_topics
from tests.services.test_gateway_schemathesis import run_schemathesis

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
def planner_app(kafka, tmp_path_factory) -> Iterator[FastAPI]:
    topics = Topics(f"stp-{uuid.uuid4().hex[:6]}-")
    create_topics(kafka, topics)
    d = tmp_path_factory.mktemp("stp")
    tokens = TokenStore(f"sqlite:///{d}/tokens.db")
    jobs = JobStore(f"sqlite:///{d}/plans.db")
    _, TOKENS["planner"] = tokens.add("planner", "ops")
    app = create_app(PlannerConfig(kafka=kafka, topics=topics, network=load_network(),
                                   tokens=tokens, jobs=jobs,
                                   worker_transport=httpx.MockTransport(stub_worker),
                                   max_request_bytes=512 * 1024))
    yield app
    jobs.close()
    tokens.close()


def test_planner_conforms_to_its_openapi_document(planner_app: FastAPI) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", planner_app)
    failures = run_schemathesis(schema, {"Authorization": f"Bearer {TOKENS['planner']}"},
                                examples=EXAMPLES)
    assert not failures, "\n\n".join(failures)
