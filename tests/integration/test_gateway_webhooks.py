"""Hub webhooks: every pickup_requested / pickup_overdue of a hub's villages reaches its URL,
signed with an HMAC of the body, retried with back-off; other hubs' notices do not."""

from __future__ import annotations

import threading
import uuid

import httpx
import orjson
from fastapi.testclient import TestClient
from kafka import KafkaProducer

from services.auth.tokens import TokenStore
from services.gateway import GatewayConfig, create_app
from services.gateway.webhook_delivery import verify
from streams.network import load_network
from tests.helpers import wait_until
from tests.integration.helpers import NotYet, notice, wait_webhooks_reading


class Receiver:
    """The hub's endpoint: fails the first attempt of every notice, then accepts."""

    def __init__(self) -> None:
        self.calls: list[httpx.Request] = []
        self.lock = threading.Lock()

    def handler(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.calls.append(request)
        if request.headers["x-packloop-delivery-attempt"] == "1":
            return httpx.Response(503)
        return httpx.Response(204)


def test_pickup_notices_reach_the_hub_webhook_signed_and_retried(kafka, topics,
                                                                  tmp_path) -> None:
    tokens = TokenStore(f"sqlite:///{tmp_path}/tokens.db")
    _, h1 = tokens.add("hub", "H01")
    receiver = Receiver()
    app = create_app(GatewayConfig(
        kafka=kafka, topics=topics, network=load_network(), tokens=tokens, webhooks=True,
        webhook_transport=httpx.MockTransport(receiver.handler), webhook_backoff_s=0.05,
        webhook_allow_private=True))  # hub1.example does not resolve here
    with TestClient(app) as client:
        headers = {"Authorization": f"Bearer {h1}"}
        assert client.get("/v1/webhook", headers=headers).status_code == 404
        bad = client.put("/v1/webhook", json={"url": "ftp://x"}, headers=headers)
        assert bad.status_code == 422
        reg = client.put("/v1/webhook", json={"url": "https://hub1.example/pickups"},
                         headers=headers)
        assert reg.status_code == 200, reg.text
        secret = reg.json()["secret"]
        assert client.get("/v1/webhook", headers=headers).json()["url"] == \
            "https://hub1.example/pickups"
        assert "secret" not in client.get("/v1/webhook", headers=headers).json()
        assert app.state.gateway.webhooks.assigned.wait(30), \
            "webhook consumer never joined its group"
        wait_webhooks_reading(client, kafka, topics)
        mine = [notice("pickup_requested", "H01", "H01-V001", str(uuid.uuid4())),
                notice("pickup_overdue", "H01", "H01-V002", str(uuid.uuid4()))]
        others = [notice("pickup_requested", "H02", "H02-V001", str(uuid.uuid4()))]
        producer = KafkaProducer(acks="all", **kafka.kafka_python_kwargs())
        for n in mine + others:
            producer.send(topics.pickup_requests, key=n["village_id"].encode(),
                          value=orjson.dumps(n))
        producer.flush()
        producer.close()
        delivered = 'packloop_gateway_webhook_deliveries_total{hub="H01",outcome="delivered"} 2.0'
        skipped = 'packloop_gateway_webhook_deliveries_total{hub="H02",outcome="skipped"} 1.0'

        def counted() -> str | NotYet:
            text = client.get("/metrics").text
            return text if delivered in text and skipped in text else NotYet(receiver.calls)

        wait_until(counted, 30, "H01's two notices delivered and H02's skipped")
    for request in receiver.calls:
        assert str(request.url) == "https://hub1.example/pickups"
        assert verify(secret, request.content, request.headers["x-packloop-signature"])
        assert not verify("wrong", request.content, request.headers["x-packloop-signature"])
        body = orjson.loads(request.content)
        assert body["hub_id"] == "H01"
        assert request.headers["x-packloop-event-type"] == body["type"]
    assert {r.headers["x-packloop-event-id"] for r in receiver.calls} == \
        {n["event_id"] for n in mine}  # H02 has no webhook: nothing sent
    assert len(receiver.calls) == 4  # two notices, each failed once then delivered
    tokens.close()


def test_a_notice_published_while_no_gateway_runs_is_sent_by_the_next_one(
        kafka, topics, tmp_path) -> None:
    """The dispatcher starts a partition with no committed offset at the latest one, and
    committed only after a poll that returned notices: a gateway that ran with no notice at
    all committed nothing, so the next one started at the latest offset again and every
    notice published between the two was never sent. Each partition's position is now
    committed once it is assigned."""
    from kafka.admin import KafkaAdminClient

    tokens = TokenStore(f"sqlite:///{tmp_path}/tokens.db")
    _, h1 = tokens.add("hub", "H01")
    receiver = Receiver()

    def gateway() -> object:
        return create_app(GatewayConfig(
            kafka=kafka, topics=topics, network=load_network(), tokens=tokens, webhooks=True,
            webhook_transport=httpx.MockTransport(receiver.handler), webhook_backoff_s=0.05,
            webhook_allow_private=True))

    admin = KafkaAdminClient(**kafka.kafka_python_kwargs())
    group = "packloop-gateway-webhooks-" + topics.prefix.rstrip("-")
    partitions = len(admin.describe_topics([topics.pickup_requests])[0]["partitions"])

    def committed() -> dict | NotYet:
        offsets = admin.list_group_offsets(group).get(group, {})
        return offsets if len(offsets) == partitions else NotYet(offsets)

    first = gateway()
    try:
        with TestClient(first) as client:
            reg = client.put("/v1/webhook", json={"url": "https://hub1.example/pickups"},
                             headers={"Authorization": f"Bearer {h1}"})
            assert reg.status_code == 200, reg.text
            assert first.state.gateway.webhooks.assigned.wait(30)
            # no notice at all while it runs: its start is pinned all the same
            wait_until(committed, 30, "the first gateway's positions committed")
    finally:
        admin.close()
    # no gateway runs: two notices of H01 on every partition, in two batches (the embedded
    # broker answers "latest" with the start of the last batch, Apache Kafka after it)
    sent = []
    producer = KafkaProducer(acks="all", **kafka.kafka_python_kwargs())
    for _batch in range(2):
        for p in range(partitions):
            n = notice("pickup_requested", "H01", "H01-V001", str(uuid.uuid4()))
            producer.send(topics.pickup_requests, key=b"H01-V001", value=orjson.dumps(n),
                          partition=p)
            sent.append(n)
        producer.flush()
    producer.close()
    with TestClient(gateway()) as client:
        delivered = ('packloop_gateway_webhook_deliveries_total{hub="H01",outcome="delivered"} '
                     f'{float(len(sent))}')

        def counted() -> str | NotYet:
            text = client.get("/metrics").text
            return text if delivered in text else NotYet(len(receiver.calls))

        wait_until(counted, 30, f"the {len(sent)} notices published between the gateways")
    assert {r.headers["x-packloop-event-id"] for r in receiver.calls} == \
        {n["event_id"] for n in sent}
    tokens.close()
