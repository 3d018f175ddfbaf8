"""One rule for every JSON body of both services (:mod:`services.http.body`), and the 503 of
``POST /v1/events`` listing every event.

The routes are taken from the OpenAPI documents (every operation with a request body), so
a route added later is held to the rule too. Before the rule, ``POST /v1/events`` took
``text/plain`` and curl's default ``application/x-www-form-urlencoded`` and wrote the
events, while ``PUT /v1/webhook`` and the cancel answered 422 ``body: Input should be a
valid dictionary`` and, for malformed JSON, 422 ``body.1: JSON decode error``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from services.emit import check_line
from services.http.body import is_json_media_type
from services.http.kafka_io import KafkaUnavailable, Record
from services.planner import JobStore, PlannerConfig
from services.planner import create_app as create_planner
from streams.kafka import KafkaConnection
from tests.services.helpers import NETWORK, TOPICS, FakeKafkaIO, auth, hub_events, shipment

OPEN = {"pickup_id": "P-H01-V007-1", "village_id": "H01-V007", "hub_id": "H01",
        "requested_at": "2026-11-11T08:00:00Z", "reasons": ["outstanding_grams"],
        "overdue": False, "outstanding_grams": {"cardboard": 60000}}
GATEWAY_BODY_ROUTES = {("POST", "/v1/events"), ("PUT", "/v1/webhook"),
                       ("POST", "/v1/pickups/{pickup_id}/cancel")}
PLANNER_BODY_ROUTES = {("POST", "/v1/plans"), ("POST", "/v1/dispatch")}
#: a body each route would take, were it labelled as JSON
VALID = {"/v1/events": orjson.dumps(shipment()),
         "/v1/webhook": b'{"url": "https://hub1.example/pickups"}',
         "/v1/pickups/{pickup_id}/cancel": b'{"reason": "road closed"}',
         "/v1/plans": b'{"scenario": {}}', "/v1/dispatch": b'{"date": "2099-01-01"}'}
NOT_JSON = ["text/plain", "application/x-www-form-urlencoded", None]


def body_routes(client: TestClient) -> set[tuple[str, str]]:
    paths = client.get("/openapi.json").json()["paths"]
    return {(method.upper(), path) for path, ops in paths.items()
            for method, op in ops.items() if "requestBody" in op}


def send(client: TestClient, method: str, path: str, body: bytes, content_type: str | None,
         headers: dict[str, str]) -> httpx.Response:
    url = path.replace("{pickup_id}", OPEN["pickup_id"])
    sent = dict(headers)
    if content_type is not None:
        sent["Content-Type"] = content_type
    return client.request(method, url, content=body, headers=sent)


@pytest.fixture
def gateway(make_client, token_store) -> tuple[TestClient, dict[str, str]]:
    client = make_client()
    client.fake_worker.pickups = [OPEN]  # type: ignore[attr-defined]
    _, token = token_store.add("hub", "H01")
    return client, auth(token)


@pytest.fixture
def planner(token_store, tmp_path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    jobs = JobStore(f"sqlite:///{tmp_path}/plans.db")
    _, token = token_store.add("planner", "ops")
    config = PlannerConfig(kafka=KafkaConnection(), topics=TOPICS, network=NETWORK,
                           tokens=token_store, jobs=jobs, kafka_io=FakeKafkaIO())
    with TestClient(create_planner(config)) as client:
        yield client, auth(token)
    jobs.close()


@pytest.fixture(params=["gateway", "planner"])
def service(request, gateway, planner) -> tuple[TestClient, dict[str, str], set]:
    client, headers = gateway if request.param == "gateway" else planner
    expected = GATEWAY_BODY_ROUTES if request.param == "gateway" else PLANNER_BODY_ROUTES
    return client, headers, expected


def test_the_rule_covers_every_json_body_route(service) -> None:
    """The routes below are every operation with a body, each documenting 415 and 400."""
    client, _, expected = service
    assert body_routes(client) == expected
    paths = client.get("/openapi.json").json()["paths"]
    for method, path in expected:
        responses = paths[path][method.lower()]["responses"]
        assert {"400", "413", "415"} <= set(responses), (method, path)


@pytest.mark.parametrize("content_type", NOT_JSON)
def test_a_body_not_labelled_json_is_415_on_every_route(service, fake_kafka,
                                                        content_type) -> None:
    """text/plain, curl's --data default and no label at all: 415 in the error envelope,
    nothing written (the events route used to write them)."""
    client, headers, expected = service
    for method, path in sorted(expected):
        resp = send(client, method, path, VALID[path], content_type, headers)
        assert resp.status_code == 415, (method, path, resp.text)
        body = resp.json()
        assert body["error"] == "unsupported_media_type", body
        assert "Content-Type: application/json" in body["message"]
        assert repr(content_type) in body["message"] if content_type else \
            "no Content-Type" in body["message"]
    assert hub_events(fake_kafka) == []


def test_malformed_json_is_400_with_the_position_on_every_route(service) -> None:
    client, headers, expected = service
    for method, path in sorted(expected):
        resp = send(client, method, path, b"{x", "application/json", headers)
        assert resp.status_code == 400, (method, path, resp.text)
        body = resp.json()
        assert body["error"] == "malformed_json", body
        assert "line 1 column 2 (char 1)" in body["message"], body


def test_the_token_is_checked_before_the_body(service) -> None:
    client, _, expected = service
    for method, path in sorted(expected):
        resp = send(client, method, path, b"{x", "text/plain", {})
        assert resp.status_code == 401, (method, path, resp.text)


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON",
                                          "application/json; charset=utf-8",
                                          "application/vnd.packloop+json"])
def test_json_media_types_are_taken(gateway, fake_kafka, content_type) -> None:
    client, headers = gateway
    for path in ("/v1/events", "/v1/pickups/{pickup_id}/cancel"):
        resp = send(client, "POST", path, VALID[path], content_type, headers)
        assert resp.status_code in (200, 202), (path, resp.text)
    assert [e["type"] for e in hub_events(fake_kafka)] == ["shipment", "pickup_cancelled"]
    put = send(client, "PUT", "/v1/webhook", b'{"url": "ftp://x.example/"}', content_type,
               headers)
    assert put.status_code == 422 and put.json()["message"].startswith("body.url"), put.text


def test_which_media_types_are_json() -> None:
    assert all(is_json_media_type(t) for t in (
        "application/json", "application/json;charset=UTF-8", "application/problem+json"))
    assert not any(is_json_media_type(t) for t in (
        None, "", "text/plain", "text/json", "application/x-www-form-urlencoded",
        "application/jsonl", "application/+json", "multipart/form-data"))


def test_a_cancel_without_a_body_needs_no_content_type(gateway, fake_kafka) -> None:
    """The body of a cancel is optional: no body (Content-Length 0, or none at all) is the
    default reason and snooze, whatever the request says its type is."""
    client, headers = gateway
    url = f"/v1/pickups/{OPEN['pickup_id']}/cancel"
    assert client.post(url, headers=headers).status_code == 202
    assert client.post(url, headers={**headers, "Content-Type": "text/plain"}
                       ).status_code == 202
    assert [e["reason"] for e in hub_events(fake_kafka)] == ["cancelled by the hub"] * 2


def test_a_json_body_that_is_not_an_object_is_400(gateway) -> None:
    """As the planner's bodies and the events' (no longer 422 'a valid dictionary')."""
    client, headers = gateway
    for method, path in (("PUT", "/v1/webhook"), ("POST", "/v1/pickups/{pickup_id}/cancel")):
        resp = send(client, method, path, b"[1]", "application/json", headers)
        assert resp.status_code == 400 and resp.json()["error"] == "bad_request", resp.text


# -- the 503 of POST /v1/events ------------------------------------------------------------


class ProducerGone(FakeKafkaIO):
    """The probe has not noticed yet, but no producer can be built (nothing is sent)."""

    def produce(self, records: Sequence[Record]) -> list[BaseException | None]:
        raise KafkaUnavailable("no Kafka broker reachable at k:9092")


@pytest.mark.parametrize("how", ["known_down", "producer_gone"])
def test_a_503_lists_every_event(make_client, token_store, fake_kafka, how) -> None:
    """docs/services.md: a 503 lists each event as accepted or unavailable. Before, Kafka
    known to be down (or no producer) answered only error and message, so a client could
    not tell which events to resend, nor that one of them would never be taken."""
    if how == "known_down":
        fake_kafka.down = "no Kafka broker reachable at k:9092"
        client = make_client()
    else:
        client = make_client(kafka_io=ProducerGone())
    _, token = token_store.add("hub", "H01")
    batch = [shipment(), shipment(weight_grams=-1), shipment()]
    resp = client.post("/v1/events", json=batch, headers=auth(token))
    assert resp.status_code == 503 and resp.headers["retry-after"] == "5", resp.text
    body = resp.json()
    assert body["error"] == "kafka_unavailable" and "k:9092" in body["message"]
    assert (body["accepted"], body["rejected"]) == (0, 1)
    assert [(r["index"], r["event_id"], r["status"]) for r in body["results"]] == [
        (0, batch[0]["event_id"], "unavailable"), (1, batch[1]["event_id"], "rejected"),
        (2, batch[2]["event_id"], "unavailable")]
    assert hub_events(fake_kafka) == []
    documented = client.get("/openapi.json").json()["paths"]["/v1/events"]["post"][
        "responses"]["503"]["content"]["application/json"]["schema"]["$ref"]
    assert documented.endswith("/IngestUnavailable")


# -- the bytes of a body: UTF-8, and the byte order mark of Windows tools -------------------

BOM = b"\xef\xbb\xbf"


def test_a_body_that_is_not_utf8_is_named_as_emit_names_it(service) -> None:
    """Before: ``body is not valid JSON: str is not valid UTF-8: surrogates not allowed``
    (orjson's words, no position), while ``packloop emit`` says ``not valid UTF-8 (byte
    45)`` of the same bytes."""
    client, headers, expected = service
    raw = orjson.dumps(shipment(reason="café")).replace("é".encode(), b"\xe9")  # Latin-1
    _, by_emit = check_line(raw, NETWORK)
    assert by_emit is not None and by_emit.code == "invalid_utf8"
    bad_byte = raw.index(b"\xe9")
    assert by_emit.reason == f"not valid UTF-8 (byte {bad_byte})"
    for method, path in sorted(expected):
        resp = send(client, method, path, raw, "application/json", headers)
        assert resp.status_code == 400, (method, path, resp.text)
        assert resp.json()["error"] == "malformed_json"
        assert resp.json()["message"] == f"body is {by_emit.reason}", (method, path)


def test_the_byte_of_a_body_with_a_bom_is_counted_as_sent(gateway) -> None:
    """A dropped BOM does not shift the position: it is the byte a hub finds in its file."""
    client, headers = gateway
    raw = BOM + b'{"reason": "caf\xe9"}'
    resp = send(client, "POST", "/v1/pickups/{pickup_id}/cancel", raw, "application/json",
                headers)
    bad_byte = raw.index(b"\xe9")
    assert resp.json()["message"] == f"body is not valid UTF-8 (byte {bad_byte})"


def test_one_leading_bom_is_dropped_on_every_route(service) -> None:
    """Notepad and Excel's "CSV UTF-8" start a file with a byte order mark; before, a body
    sent from one was a 400 (``UTF-8 byte order mark (BOM) is not supported``). Every route
    now answers it as it answers the same body without."""
    client, headers, expected = service
    for method, path in sorted(expected):
        without = send(client, method, path, VALID[path], "application/json", headers)
        with_bom = send(client, method, path, BOM + VALID[path], "application/json", headers)
        assert without.status_code != 400, (method, path, without.text)
        assert with_bom.status_code == without.status_code, (method, path, with_bom.text)


def test_a_bom_event_is_written_without_it(gateway, fake_kafka) -> None:
    client, headers = gateway
    event = shipment()
    resp = send(client, "POST", "/v1/events", BOM + orjson.dumps(event), "application/json",
                headers)
    assert resp.status_code == 200 and resp.json()["accepted"] == 1, resp.text
    assert [e["event_id"] for e in hub_events(fake_kafka)] == [event["event_id"]]


@pytest.mark.parametrize("body", [BOM + BOM + b"{}", b" " + BOM + b"{}",
                                  b"[" + BOM + b"{}]", b"{}" + BOM])
def test_a_bom_anywhere_else_is_still_malformed(gateway, fake_kafka, body: bytes) -> None:
    """Only the first three bytes may be one: elsewhere it is not the tool's, and JSON
    does not allow it."""
    client, headers = gateway
    resp = send(client, "POST", "/v1/events", body, "application/json", headers)
    assert resp.status_code == 400 and resp.json()["error"] == "malformed_json", resp.text
    assert hub_events(fake_kafka) == []


def test_content_length_beside_transfer_encoding_is_400(service, fake_kafka) -> None:
    """Transfer-Encoding overrides Content-Length (RFC 9112 6.3), so ``Content-Length: 0``
    beside a chunked ``text/plain`` body was taken for no body at all and answered 200;
    a request with both is refused, as RFC 9112 6.1 allows, on every route."""
    client, headers, expected = service
    both = {**headers, "Content-Length": "0", "Transfer-Encoding": "chunked"}
    for method, path in sorted(expected):
        resp = send(client, method, path, b"", "text/plain", both)
        assert resp.status_code == 400, (method, path, resp.text)
        assert resp.json()["error"] == "bad_request"
        assert "both Transfer-Encoding and Content-Length" in resp.json()["message"]
    assert hub_events(fake_kafka) == []


def test_a_chunked_body_is_a_body(gateway, fake_kafka) -> None:
    """Streamed without Content-Length, a body still needs its JSON label."""
    client, headers = gateway
    url = f"/v1/pickups/{OPEN['pickup_id']}/cancel"

    def chunks() -> Iterator[bytes]:
        yield VALID["/v1/pickups/{pickup_id}/cancel"]

    plain = client.post(url, content=chunks(), headers={**headers, "Content-Type": "text/plain"})
    assert plain.status_code == 415, plain.text
    json = client.post(url, content=chunks(),
                       headers={**headers, "Content-Type": "application/json"})
    assert json.status_code == 202, json.text
    assert [e["reason"] for e in hub_events(fake_kafka)] == ["road closed"]
