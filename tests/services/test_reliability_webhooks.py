"""Webhooks refuse private targets by default, on the address resolved at each delivery."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from services.gateway import GatewayConfig, create_app
from services.gateway import webhook_delivery as delivery
from services.gateway.metrics import GatewayMetrics
from services.gateway.webhook_delivery import WebhookDispatcher, verify
from services.gateway.webhook_store import WebhookStore
from services.settings import Settings
from streams.kafka import KafkaConnection
from streams.topics import Topics
from tests.services.helpers import NETWORK, FakeKafkaIO, auth


class Receiver(ThreadingHTTPServer):
    """A hub's webhook endpoint on 127.0.0.1, keeping what it was sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:  # noqa: N802, N805 - http.server's names
                length = int(handler.headers["Content-Length"])
                self.received.append((dict(handler.headers), handler.rfile.read(length)))
                handler.send_response(204)
                handler.end_headers()

            def log_message(handler, *args: Any) -> None:  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/pickups"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def notice(hub: str = "H01") -> bytes:
    return orjson.dumps({"type": "pickup_requested", "event_id": str(uuid.uuid4()),
                         "hub_id": hub, "village_id": f"{hub}-V001"})


def dispatcher(token_store: Any, **config: Any) -> WebhookDispatcher:
    """A dispatcher whose deliveries a test calls itself (its Kafka consumer never starts)."""
    gateway = GatewayConfig(kafka=KafkaConnection(), topics=Topics("t-"), network=NETWORK,
                            tokens=token_store, webhook_backoff_s=0.01, webhook_max_attempts=2,
                            **config)
    return WebhookDispatcher(gateway, GatewayMetrics(), WebhookStore(token_store.engine))


def test_a_webhook_to_loopback_is_refused_by_default_and_delivered_when_opted_in(
        token_store, receiver) -> None:
    """The hook is in the store (as if registered while its name was public): the check at
    send time refuses it; with PACKLOOP_WEBHOOK_ALLOW_PRIVATE it is delivered, signed."""
    _, secret = WebhookStore(token_store.engine).set("H01", receiver.url)
    default = dispatcher(token_store)
    assert default.handle(notice()) == "refused"
    assert receiver.received == []
    assert default.metrics.registry.get_sample_value(
        "packloop_gateway_webhook_deliveries_total", {"hub": "H01", "outcome": "refused"}) == 1
    default.stop()

    opted_in = dispatcher(token_store, webhook_allow_private=True)
    body = notice()
    assert opted_in.handle(body) == "delivered"
    [(headers, received)] = receiver.received
    assert received == body and verify(secret, body, headers["X-Packloop-Signature"])
    opted_in.stop()


def test_private_addresses_are_off_by_default_in_the_settings() -> None:
    assert Settings().webhook_allow_private is False
    assert GatewayConfig.from_settings(Settings(), tokens=None).webhook_allow_private is False


def test_registering_a_loopback_webhook_is_refused_by_default(token_store, receiver) -> None:
    _, token = token_store.add("hub", "H01")
    for allow, expected in ((False, 400), (True, 200)):
        app = create_app(GatewayConfig(
            kafka=KafkaConnection(), topics=Topics("t-"), network=NETWORK, tokens=token_store,
            kafka_io=FakeKafkaIO(), webhooks=False, webhook_allow_private=allow))
        with TestClient(app) as client:
            resp = client.put("/v1/webhook", json={"url": receiver.url}, headers=auth(token))
        assert resp.status_code == expected, resp.text
        if expected == 400:
            assert "127.0.0.1" in resp.json()["message"]


@pytest.mark.parametrize("address", ["127.0.0.1", "10.0.0.7", "169.254.169.254", "::1",
                                     "::ffff:10.0.0.1", "fd00::1", "100.64.1.1", "0.0.0.0"])
def test_a_name_that_turns_private_after_registration_is_refused(token_store, monkeypatch,
                                                                 address) -> None:
    """DNS rebinding: public when registered, private when a notice is sent."""
    answers = {"hooks.hub1.example": "93.184.216.34"}

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        family = socket.AF_INET6 if ":" in answers[host] else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (answers[host], port))]

    monkeypatch.setattr(delivery.socket, "getaddrinfo", resolve)
    assert delivery.check_url("https://hooks.hub1.example/p") is None
    WebhookStore(token_store.engine).set("H01", "https://hooks.hub1.example/p")
    sent: list[httpx.Request] = []
    hooks = dispatcher(token_store, webhook_transport=httpx.MockTransport(
        lambda request: sent.append(request) or httpx.Response(204)))
    answers["hooks.hub1.example"] = address
    assert hooks.handle(notice()) == "refused"
    assert sent == []
    hooks.stop()


def test_a_public_name_is_sent_to_the_address_that_was_checked(token_store,
                                                               monkeypatch) -> None:
    """The connection goes to the checked address, with the name as Host and TLS server
    name, so a second lookup cannot send it elsewhere."""
    lookups: list[str] = []

    def resolve(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        lookups.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port))]

    monkeypatch.setattr(delivery.socket, "getaddrinfo", resolve)
    WebhookStore(token_store.engine).set("H01", "https://hooks.hub1.example:8443/p?x=1")
    sent: list[httpx.Request] = []
    hooks = dispatcher(token_store, webhook_transport=httpx.MockTransport(
        lambda request: sent.append(request) or httpx.Response(204)))
    assert hooks.handle(notice()) == "delivered"
    [request] = sent
    assert str(request.url) == "https://93.184.216.34:8443/p?x=1"
    assert request.headers["host"] == "hooks.hub1.example:8443"
    assert request.extensions["sni_hostname"] == "hooks.hub1.example"
    assert lookups == ["hooks.hub1.example"]
    hooks.stop()


def test_a_name_that_does_not_resolve_is_retried_then_given_up(token_store,
                                                               monkeypatch) -> None:
    """Registered while it does not resolve (DNS not live yet), then each delivery
    attempt fails and is retried."""
    def resolve(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(delivery.socket, "getaddrinfo", resolve)
    assert delivery.check_url("https://gone.example/p") is None
    WebhookStore(token_store.engine).set("H01", "https://gone.example/p")
    hooks = dispatcher(token_store)
    assert hooks.handle(notice()) == "failed"
    assert hooks.metrics.registry.get_sample_value(
        "packloop_gateway_webhook_attempts_total", {"hub": "H01", "result": "error"}) == 2
    hooks.stop()


@pytest.mark.parametrize("allow", [False, True])
def test_a_url_that_cannot_be_checked_is_refused_not_an_error(token_store, allow) -> None:
    """A host without an IDNA form: a reason at registration, 'refused' at delivery (an
    exception would make the dispatcher retry its batch for ever)."""
    url = "https://bad\x80host.example/p"
    if not allow:
        assert "not a valid host name" in (delivery.check_url(url) or "")
    WebhookStore(token_store.engine).set("H01", url)
    hooks = dispatcher(token_store, webhook_allow_private=allow)
    assert hooks.handle(notice()) == "refused"
    hooks.stop()


def test_a_refused_commit_of_the_positions_is_tried_again_after_the_next_poll(
        token_store) -> None:
    """Pinning the positions right after an assignment, when a rebalance is likeliest: a
    commit refused then reached the loop's catch-all, which closed the consumer and forced
    another rebalance. It is tried again after the next poll instead."""
    from kafka.errors import CommitFailedError
    from kafka.structs import TopicPartition

    tp = TopicPartition("t-pickup-requests", 0)

    class Consumer:
        def __init__(self) -> None:
            self.fail, self.committed = True, []

        def assignment(self) -> set[TopicPartition]:
            return {tp}

        def position(self, _tp: TopicPartition, timeout_ms: int | None = None) -> int:
            return 42

        def commit(self, offsets: dict) -> None:
            if self.fail:
                raise CommitFailedError("rebalance in progress")
            self.committed.append({t: o.offset for t, o in offsets.items()})

    d = dispatcher(token_store)
    consumer = Consumer()
    d._unpinned.add(tp)
    d._pin(consumer)  # refused: kept for the next poll, nothing raised
    assert d._unpinned == {tp} and consumer.committed == []
    consumer.fail = False
    d._pin(consumer)
    assert d._unpinned == set() and consumer.committed == [{tp: 42}]


@pytest.mark.parametrize("address", ["64:ff9b::a00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::1",
                                     "2002:a00:1::", "2002:7f00:1::", "::a00:1",
                                     "::ffff:0:a00:1", "2001:0:4136:e378:8000:63bf:f5ff:fffe"])
def test_ipv4_carried_inside_ipv6_is_judged_as_that_ipv4(address) -> None:
    """NAT64, 6to4, Teredo, IPv4-compatible and -translated forms of private IPv4
    addresses passed (an outside audit: `64:ff9b::a9fe:a9fe` is the metadata address where
    a NAT64 gateway routes it); their public counterparts still pass."""
    assert delivery.forbidden_address(address)
    assert delivery.check_url(f"http://[{address}]/hook") is not None


@pytest.mark.parametrize("address", ["2001:4860:4860::8888", "64:ff9b::808:808",
                                     "2002:808:808::", "::ffff:8.8.8.8"])
def test_public_ipv6_forms_pass(address) -> None:
    assert not delivery.forbidden_address(address)


def test_a_scoped_link_local_literal_is_refused_at_registration() -> None:
    """`http://[fe80::1%25eth0]/` did not resolve here (no such interface) and so passed
    as a name not resolving yet; an address written in the URL is judged as written."""
    assert "private address" in (delivery.check_url("http://[fe80::1%25eth0]/") or "")


def test_a_slow_resolver_does_not_hold_the_other_hubs(token_store, monkeypatch) -> None:
    """Registering a webhook looked its host up on the event loop: a resolver taking 5 s
    held every hub's requests for those 5 s (an outside audit). The lookup runs in a
    thread and is not waited for past CHECK_URL_WAIT_S (the name passes, as one that does
    not resolve yet does: each delivery checks it again)."""
    import time

    from services.gateway.routes import webhooks as routes

    monkeypatch.setattr(routes, "CHECK_URL_WAIT_S", 0.3)
    release = threading.Event()

    looked_up_in: list[str] = []

    def slow(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        looked_up_in.append(threading.current_thread().name)
        release.wait(10)
        raise socket.gaierror("timed out")

    monkeypatch.setattr(delivery.socket, "getaddrinfo", slow)
    _, token = token_store.add("hub", "H01")
    app = create_app(GatewayConfig(
        kafka=KafkaConnection(), topics=Topics("t-"), network=NETWORK, tokens=token_store,
        kafka_io=FakeKafkaIO(), webhooks=False))
    try:
        with TestClient(app) as client:
            started = time.monotonic()
            resp = client.put("/v1/webhook", json={"url": "https://slow.example/p"},
                              headers=auth(token))
            assert resp.status_code == 200, resp.text
            assert time.monotonic() - started < 5.0
        # in the lookups' own threads, not the pool the token checks share
        assert looked_up_in and all(n.startswith("webhook-url-check") for n in looked_up_in)
    finally:
        release.set()
