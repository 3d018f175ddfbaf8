"""Fuzzing the event parser and the gateway's POST /v1/events: whatever arrives, a reason
(naming the field at fault where there is one), never an uncaught exception or a 5xx."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from services.auth.tokens import TokenStore
from services.gateway import GatewayConfig, create_app
from streams.events import EventError, parse_hub_event
from streams.kafka import KafkaConnection
from streams.topics import Topics
from tests.services.fuzz import fuzz_settings, json_values, mutated_events
from tests.services.helpers import NETWORK, FakeKafkaIO, FakeWorker, auth

TOPICS = Topics("fz-")


def parsed_or_reason(raw: Any) -> EventError | None:
    """None when ``raw`` parses; the EventError otherwise (anything else fails the test)."""
    try:
        parse_hub_event(raw)
    except EventError as exc:
        assert exc.reason and exc.code, exc
        return exc
    return None


@fuzz_settings
@given(raw=st.binary(max_size=400))
def test_the_parser_gives_a_reason_for_any_bytes(raw: bytes) -> None:
    parsed_or_reason(raw)


@fuzz_settings
@given(value=json_values)
def test_the_parser_gives_a_reason_for_any_json(value: Any) -> None:
    error = parsed_or_reason(json.dumps(value).encode())
    if not isinstance(value, dict):
        assert error is not None and error.code == "not_an_object"


@fuzz_settings
@given(case=mutated_events().filter(lambda case: case[1] != "type"))
def test_the_parser_names_the_field_it_refuses(case: tuple[dict[str, Any], str]) -> None:
    """One field of a valid event (other than ``type``) changed or removed: if refused,
    the reason names that field."""
    event, key = case
    error = parsed_or_reason(event)
    if error is not None:
        assert error.field is not None and error.field.split(".")[0] == key, (error, key)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[tuple[TestClient, FakeKafkaIO, str]]:
    tokens = TokenStore(f"sqlite:///{tmp_path_factory.mktemp('fz')}/tokens.db")
    _, token = tokens.add("hub", "H01")
    fake = FakeKafkaIO()
    app = create_app(GatewayConfig(
        kafka=KafkaConnection(), topics=TOPICS, network=NETWORK, tokens=tokens, kafka_io=fake,
        worker_transport=httpx.MockTransport(FakeWorker().handler), webhooks=False,
        rate_per_s=1e9, rate_burst=10**9, max_request_bytes=64 * 1024))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, fake, token
    tokens.close()


def post(gateway: tuple[TestClient, FakeKafkaIO, str], body: bytes) -> dict[str, Any]:
    """The gateway's answer: never a 5xx, always JSON with a reason."""
    client, fake, token = gateway
    fake.records.clear()
    resp = client.post("/v1/events", content=body,
                       headers={**auth(token), "Content-Type": "application/json"})
    assert resp.status_code < 500, resp.text
    answer: dict[str, Any] = resp.json()
    if resp.status_code != 200:
        assert answer["error"] and answer["message"], answer
        assert fake.records[TOPICS.hub_events] == []
        return answer
    accepted = [r for r in answer["results"] if r["status"] == "accepted"]
    assert len(fake.records[TOPICS.hub_events]) == len(accepted) == answer["accepted"]
    for result in answer["results"]:
        if result["status"] == "rejected":
            assert result["reason"] and result["message"], result
    return answer


@fuzz_settings
@given(body=st.binary(max_size=400))
def test_the_gateway_answers_any_bytes_without_a_5xx(gateway, body: bytes) -> None:
    post(gateway, body)


@fuzz_settings
@given(value=json_values)
def test_the_gateway_answers_any_json_without_a_5xx(gateway, value: Any) -> None:
    post(gateway, json.dumps(value).encode())


@pytest.mark.slow
@fuzz_settings
@given(batch=st.lists(mutated_events().filter(lambda case: case[1] != "type"), min_size=1,
                      max_size=5))
def test_the_gateway_names_the_field_of_each_refused_event(
        gateway, batch: list[tuple[dict[str, Any], str]]) -> None:
    """A batch of events, each with one field (other than ``type``) changed: 403 when a
    changed hub or village is another hub's, else each refused event names its field."""
    answer = post(gateway, json.dumps([event for event, _ in batch]).encode())
    if "results" not in answer:
        assert answer["error"] == "forbidden", answer
        assert any(key in ("hub_id", "village_id") for _, key in batch)
        return
    for (_, key), result in zip(batch, answer["results"], strict=True):
        if result["status"] == "rejected":
            assert result["field"] and result["field"].split(".")[0] == key, (key, result)
