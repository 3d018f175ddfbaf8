"""The hub gateway with an in-memory Kafka: auth, limits, validation, pickups, metrics.

Every "nothing was produced" claim is checked on what the gateway handed to Kafka.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import orjson
from fastapi.testclient import TestClient

from services.auth.tokens import TokenStore
from services.gateway import GatewayConfig, create_app
from streams.kafka import KafkaConnection
from tests.services.helpers import NETWORK, TOPICS, auth, hub_events, shipment


def test_unauthenticated_and_bad_tokens_get_401(make_client, token_store, fake_kafka) -> None:
    client = make_client()
    _, token = token_store.add("hub", "H01")
    _, planner_token = token_store.add("planner", "ops")
    for headers in ({}, auth("nope"), auth(token + "x"), auth(planner_token),
                    {"Authorization": token}):
        resp = client.post("/v1/events", json=shipment(), headers=headers)
        assert resp.status_code == 401, headers
        assert resp.json()["error"] == "unauthorized"
        assert resp.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/v1/pickups").status_code == 401
    assert hub_events(fake_kafka) == []


def test_a_hub_cannot_write_another_hubs_events(make_client, token_store, fake_kafka,
                                                caplog) -> None:
    """403 for a foreign hub_id or a foreign village, nothing produced, token not logged."""
    client = make_client()
    _, token = token_store.add("hub", "H01")
    caplog.set_level(logging.INFO)
    cases = [
        [shipment(hub="H02", village="H02-V001")],
        [shipment(hub="H01", village="H02-V001")],  # H01 claiming a village of H02
        [shipment(), shipment(), shipment(hub="H02", village="H02-V001")],  # one bad apple
        [{"hub_id": "H02"}],  # even when the rest of the event is nonsense
    ]
    for batch in cases:
        resp = client.post("/v1/events", json=batch, headers=auth(token))
        assert resp.status_code == 403, resp.text
        assert resp.json()["error"] == "forbidden"
        assert "nothing in this request was written" in resp.json()["message"]
    assert hub_events(fake_kafka) == []
    assert "403" in caplog.text and "H02" in caplog.text
    assert token not in caplog.text and token.split("_", 2)[2] not in caplog.text
    metrics = client.get("/metrics").text
    assert 'packloop_gateway_events_total{hub="H01",outcome="forbidden",reason="other_hub"}' \
        in metrics
    assert "_created" not in metrics  # half the series, read by no rule or dashboard


def test_batch_answers_each_event_and_produces_only_accepted(make_client, token_store,
                                                             fake_kafka) -> None:
    client = make_client()
    _, token = token_store.add("hub", "H01")
    good = [shipment(), shipment(village="H01-V001"), shipment(type="packaging_return",
            container_type="insulated_box", count=1, condition="ok")]
    bad = [
        shipment(weight_grams=12.5),
        {k: v for k, v in shipment().items() if k != "event_id"},
        shipment(village="H01-V999"),  # unknown village: rejected, not forbidden
        "not an object",
        shipment(type=["x"]),
    ]
    resp = client.post("/v1/events", json=good + bad, headers=auth(token))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["accepted"] == 3 and body["rejected"] == 5
    statuses = [r["status"] for r in body["results"]]
    assert statuses == ["accepted"] * 3 + ["rejected"] * 5
    reasons = [r["reason"] for r in body["results"][3:]]
    assert reasons[1] == "missing_field" and body["results"][4]["field"] == "event_id"
    assert reasons[2] == "unknown_village"
    assert reasons[3] == "not_an_object"
    on_topic = hub_events(fake_kafka)
    assert sorted(e["event_id"] for e in on_topic) == sorted(e["event_id"] for e in good)
    # timestamps are normalised to UTC on the wire, keyed by village
    assert on_topic[0]["occurred_at"].endswith("Z")
    assert [r.key for r in fake_kafka.records[TOPICS.hub_events]] == [
        e["village_id"].encode() for e in good]
    # a single event (not an array) works the same way
    one = client.post("/v1/events", json=shipment(), headers=auth(token)).json()
    assert one["accepted"] == 1 and one["results"][0]["index"] == 0
    # nothing rejected went to the dead-letter topic
    assert fake_kafka.records[TOPICS.dead_letter] == []
    metrics = client.get("/metrics").text
    assert 'packloop_gateway_events_total{hub="H01",outcome="accepted",reason=""} 4.0' in metrics
    assert 'outcome="rejected",reason="unknown_village"} 1.0' in metrics
    assert 'packloop_gateway_requests_total{hub="H01",method="POST",route="/v1/events",' \
           'status="200"} 2.0' in metrics
    assert "packloop_gateway_produce_duration_seconds_count 2.0" in metrics


def test_oversize_requests_and_batches_get_413(make_client, token_store, fake_kafka) -> None:
    client = make_client(max_request_bytes=4096, max_batch=5)
    _, token = token_store.add("hub", "H01")
    big = client.post("/v1/events", json=[shipment(note="x" * 5000)], headers=auth(token))
    assert big.status_code == 413 and big.json()["error"] == "too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        yield b"["
        for _ in range(10):
            yield orjson.dumps(shipment()) + b","
        yield orjson.dumps(shipment()) + b"]"

    streamed = client.post("/v1/events", content=chunks(),
                           headers={**auth(token), "Content-Type": "application/json"})
    assert streamed.status_code == 413
    many = client.post("/v1/events", json=[{"a": 1}] * 6, headers=auth(token))
    assert many.status_code == 413 and many.json()["error"] == "batch_too_large"
    assert hub_events(fake_kafka) == []


def test_over_rate_requests_get_429_with_retry_after(make_client, token_store) -> None:
    client = make_client(rate_per_s=0.5, rate_burst=3)
    _, h1 = token_store.add("hub", "H01")
    _, h2 = token_store.add("hub", "H02")
    codes = [client.post("/v1/events", json=shipment(), headers=auth(h1)).status_code
             for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    limited = client.post("/v1/events", json=shipment(), headers=auth(h1))
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= 2
    # the limit is per hub: H02 is not affected
    other = client.post("/v1/events", json=shipment("H02", "H02-V001"), headers=auth(h2))
    assert other.status_code == 200


def test_an_event_over_the_record_limit_is_rejected_alone(make_client, token_store,
                                                          fake_kafka) -> None:
    client = make_client(max_request_bytes=8 * 1024 * 1024)
    _, token = token_store.add("hub", "H01")
    huge = shipment(packaging=[{"material": "cardboard", "count": 1, "grams": 1}] * 40_000)
    resp = client.post("/v1/events", json=[huge, shipment()], headers=auth(token))
    assert resp.status_code == 200
    assert [r["status"] for r in resp.json()["results"]] == ["rejected", "accepted"]
    assert resp.json()["results"][0]["reason"] == "too_large"
    assert len(hub_events(fake_kafka)) == 1


def test_bad_bodies_get_400(make_client, token_store) -> None:
    client = make_client()
    _, token = token_store.add("hub", "H01")
    for body in (b"{not json", b"42", b"[]", b'"x"'):
        resp = client.post("/v1/events", content=body,
                           headers={**auth(token), "Content-Type": "application/json"})
        assert resp.status_code == 400, body


def test_revoked_token_stops_working_and_rotation(make_client, token_store) -> None:
    client = make_client()
    old, old_token = token_store.add("hub", "H01")
    assert client.post("/v1/events", json=shipment(), headers=auth(old_token)).status_code == 200
    _, new_token = token_store.add("hub", "H01")  # rotation: add, then revoke
    token_store.revoke("hub", old.token_id)
    assert client.post("/v1/events", json=shipment(), headers=auth(old_token)).status_code == 401
    assert client.post("/v1/events", json=shipment(), headers=auth(new_token)).status_code == 200
    rows = {r.token_id: r for r in token_store.list("hub")}
    assert not rows[old.token_id].active


def test_tokens_are_stored_only_as_hashes(tmp_path) -> None:
    import sqlite3

    store = TokenStore(f"sqlite:///{tmp_path}/t.db", pepper="p")
    info, token = store.add("hub", "H01")
    dump = "\n".join(sqlite3.connect(f"{tmp_path}/t.db").iterdump())
    secret = token.split("_", 2)[2]  # url-safe secrets may hold "_" themselves
    assert len(secret) >= 40
    assert token not in dump and secret not in dump
    assert info.token_id in dump
    # a different pepper cannot verify the token (the hash is keyed)
    assert TokenStore(f"sqlite:///{tmp_path}/t.db", pepper="other").authenticate(
        "hub", token) is None
    assert store.authenticate("hub", token).owner == "H01"
    assert token not in repr(info) and token not in repr(store)


def test_pickups_list_and_cancel(make_client, token_store, fake_kafka) -> None:
    client = make_client()
    worker = client.fake_worker  # type: ignore[attr-defined]
    worker.pickups = [
        {"pickup_id": "P-H01-V007-1", "village_id": "H01-V007", "hub_id": "H01",
         "requested_at": "2026-11-11T08:00:00Z", "reasons": ["outstanding_grams"],
         "overdue": False, "outstanding_grams": {"cardboard": 60000}},
        {"pickup_id": "P-H02-V001-1", "village_id": "H02-V001", "hub_id": "H02",
         "requested_at": "2026-11-11T08:00:00Z", "reasons": ["age"], "overdue": True,
         "outstanding_grams": {"eps_foam": 9000}},
    ]
    _, token = token_store.add("hub", "H01")
    listed = client.get("/v1/pickups", params={"hub": "H01", "status": "open"},
                        headers=auth(token))
    assert listed.status_code == 200
    assert [p["pickup_id"] for p in listed.json()["pickups"]] == ["P-H01-V007-1"]
    assert client.get("/v1/pickups", headers=auth(token)).json()["hub"] == "H01"
    assert client.get("/v1/pickups", params={"hub": "H02"}, headers=auth(token)).status_code \
        == 403
    assert client.post("/v1/pickups/P-H02-V001-1/cancel", json={"reason": "x"},
                       headers=auth(token)).status_code == 403
    assert client.post("/v1/pickups/P-nope/cancel", headers=auth(token)).status_code == 404
    done = client.post("/v1/pickups/P-H01-V007-1/cancel", json={"reason": "road closed"},
                       headers=auth(token))
    assert done.status_code == 202, done.text
    [event] = hub_events(fake_kafka)
    assert event["type"] == "pickup_cancelled" and event["pickup_id"] == "P-H01-V007-1"
    assert event["village_id"] == "H01-V007" and event["reason"] == "road closed"
    worker.down = True
    assert client.get("/v1/pickups", headers=auth(token)).status_code == 503


def test_health_readiness_and_openapi(make_client) -> None:
    client = make_client()
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["kafka"] == "ok"
    spec = client.get("/openapi.json").json()
    assert {"/v1/events", "/v1/pickups", "/v1/pickups/{pickup_id}/cancel",
            "/v1/webhook", "/healthz", "/readyz"} <= set(spec["paths"])
    assert "HubEvent" in spec["components"]["schemas"]
    assert spec["paths"]["/v1/events"]["post"]["security"] == [{"hubToken": []}]


def test_kafka_down_gives_503_and_writes_nothing(make_client, token_store, fake_kafka) -> None:
    """While Kafka is known to be down, events are answered 503 (retry later), readiness
    fails naming Kafka, and the readiness gauge reads 0."""
    client = make_client()
    _, token = token_store.add("hub", "H01")
    fake_kafka.down = "no Kafka broker reachable at k:9092"
    resp = client.post("/v1/events", json=[shipment(), shipment()], headers=auth(token))
    assert resp.status_code == 503 and resp.headers["retry-after"] == "5"
    assert resp.json()["error"] == "kafka_unavailable" and "k:9092" in resp.json()["message"]
    assert hub_events(fake_kafka) == []
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "k:9092" in ready.json()["kafka"]
    assert "packloop_gateway_kafka_ready 0.0" in client.get("/metrics").text
    fake_kafka.down = None
    assert client.post("/v1/events", json=shipment(), headers=auth(token)).status_code == 200
    assert "packloop_gateway_kafka_ready 1.0" in client.get("/metrics").text


def test_records_kafka_did_not_take_are_answered_per_event(make_client, token_store,
                                                           fake_kafka) -> None:
    """Unacknowledged records: 503 listing each event as unavailable (retry those); a record
    Kafka refuses as such is rejected with its reason (422, the request's only event:
    retrying will not help)."""
    from kafka.errors import KafkaTimeoutError, MessageSizeTooLargeError

    client = make_client()
    _, token = token_store.add("hub", "H01")
    fake_kafka.refuse = MessageSizeTooLargeError("too big for the broker")
    refused = client.post("/v1/events", json=shipment(), headers=auth(token))
    assert refused.status_code == 422
    assert refused.json()["results"][0]["reason"] == "kafka_rejected"
    fake_kafka.refuse = KafkaTimeoutError("no acknowledgement")
    batch = [shipment(), shipment()]
    resp = client.post("/v1/events", json=batch, headers=auth(token))
    assert resp.status_code == 503 and resp.json()["error"] == "kafka_unavailable"
    assert [(r["event_id"], r["status"]) for r in resp.json()["results"]] == [
        (e["event_id"], "unavailable") for e in batch]
    # Sent but not acknowledged: the broker may still write them when it wakes up (it did,
    # in a broker freeze), so the answer must not claim they were not written. Before:
    # "not written: KafkaTimeoutError: ..." on each.
    body = resp.json()
    assert "may have been written" in body["message"] and "safe" in body["message"]
    for result in body["results"]:
        assert result["message"].startswith("may not have been written (not acknowledged: "
                                            "KafkaTimeoutError"), result
        assert "resending it is safe, an event_id is counted once" in result["message"]


def test_unreachable_kafka_gives_503_fast_and_not_ready(token_store) -> None:
    """The real producer and probe (no KafkaIO injected) against a port nobody listens on."""
    import time

    from services.broker import free_port

    dead = KafkaConnection(bootstrap_servers=f"127.0.0.1:{free_port()}", connect_timeout_ms=1500)
    client = TestClient(create_app(GatewayConfig(
        kafka=dead, topics=TOPICS, network=NETWORK, tokens=token_store, webhooks=False,
        produce_timeout_s=2.0)))
    with client:
        _, token = token_store.add("hub", "H01")
        started = time.monotonic()
        resp = client.post("/v1/events", json=shipment(), headers=auth(token))
        assert resp.status_code == 503, resp.text
        assert resp.headers["retry-after"]
        assert "no Kafka broker reachable" in resp.json()["message"]
        assert time.monotonic() - started < 8
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
        # rejected events are still answered (nothing to write)
        bad = client.post("/v1/events", json=shipment(weight_grams=-1), headers=auth(token))
        assert bad.status_code == 422 and bad.json()["rejected"] == 1


def test_token_cli_add_list_revoke(tmp_path, monkeypatch) -> None:
    from click.testing import CliRunner

    from services.cli import cli

    monkeypatch.setenv("PACKLOOP_TOKEN_DB_URL", f"sqlite:///{tmp_path}/cli.db")
    runner = CliRunner()
    added = runner.invoke(cli, ["hubs", "add-token", "H01", "--label", "scanner"])
    assert added.exit_code == 0, added.output
    token = added.output.strip().splitlines()[-1]
    assert token.startswith("plk_") and " " not in token  # alone on its last line
    token_id = token.split("_")[1]
    listed = runner.invoke(cli, ["hubs", "list-tokens"])
    assert token_id in listed.output and "scanner" in listed.output
    assert token not in listed.output and token.split("_", 2)[2] not in listed.output
    as_json = orjson.loads(runner.invoke(cli, ["hubs", "list-tokens", "--json"]).output)
    assert as_json[0]["owner"] == "H01" and as_json[0]["active"] is True
    store = TokenStore(f"sqlite:///{tmp_path}/cli.db")
    assert store.authenticate("hub", token).owner == "H01"
    revoked = runner.invoke(cli, ["hubs", "revoke-token", token_id])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert store.authenticate("hub", token) is None
    assert runner.invoke(cli, ["hubs", "revoke-token", "nope"]).exit_code == 1
    unknown = runner.invoke(cli, ["hubs", "add-token", "H99"])
    assert unknown.exit_code == 2 and "unknown hub 'H99'" in unknown.output  # a usage error
    planner = runner.invoke(cli, ["planners", "add-token", "ops"])
    p_token = planner.output.strip().splitlines()[-1]
    assert store.authenticate("planner", p_token).owner == "ops"
    assert store.authenticate("hub", p_token) is None
    assert runner.invoke(cli, ["planners", "revoke-token", token_id]).exit_code == 1  # a hub id
    store.close()


def test_the_gateway_exports_no_created_series() -> None:
    """prometheus_client adds a _created series beside each counter and histogram child
    unless told not to: the gateway's series counted twice. (Created metrics are switched
    on first: another test's worker metrics may have switched them off for the process.)"""
    import prometheus_client

    from services.gateway.metrics import GatewayMetrics

    prometheus_client.enable_created_metrics()
    m = GatewayMetrics()
    m.requests.labels(route="/v1/events", method="POST", status="202", hub="H01").inc()
    text = prometheus_client.generate_latest(m.registry).decode()
    assert "packloop_gateway_requests_total" in text and "_created" not in text
