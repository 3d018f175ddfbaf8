"""Broker outage: the gateway answers 503, never claims a write it did not get, recovers.

The test owns its broker (it freezes it with SIGSTOP, which would disturb the
session broker other tests use). "Stopped" is a frozen process: the embedded
broker keeps topics in memory, so a killed one would come back empty.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from typing import Any

import orjson
from fastapi.testclient import TestClient

from services.auth.tokens import TokenStore
from services.broker import EmbeddedBroker
from services.gateway import GatewayConfig, create_app
from streams.consume import read_topic
from streams.kafka import KafkaConnection
from streams.network import load_network
from streams.topics import Topics, create_topics
from tests.helpers import wait_until
from tests.services.helpers import shipment

NETWORK = load_network()
VILLAGES = [v.village_id for v in NETWORK.villages_by_hub["H01"]]


def batch(n: int) -> list[dict[str, Any]]:
    return [shipment(village=VILLAGES[i % len(VILLAGES)], event_id=str(uuid.uuid4()))
            for i in range(n)]


def test_outage_gives_503_and_every_accepted_event_is_on_the_topic_once(tmp_path) -> None:
    with EmbeddedBroker(log_path=tmp_path / "broker.log") as broker:
        kafka = KafkaConnection(bootstrap_servers=broker.bootstrap, connect_timeout_ms=3000)
        topics = Topics("outage-")
        create_topics(kafka, topics)
        tokens = TokenStore(f"sqlite:///{tmp_path}/tokens.db")
        _, token = tokens.add("hub", "H01")
        headers = {"Authorization": f"Bearer {token}"}
        app = create_app(GatewayConfig(
            kafka=kafka, topics=topics, network=NETWORK, tokens=tokens, webhooks=False,
            produce_timeout_s=2.0, probe_interval_s=0.5, rate_per_s=1000, rate_burst=1000))
        accepted: list[str] = []
        not_accepted: list[str] = []

        def send(events: list[dict[str, Any]]) -> int:
            started = time.monotonic()
            resp = client.post("/v1/events", json=events, headers=headers)
            assert time.monotonic() - started < 6, "the gateway must not hang on a dead broker"
            assert resp.status_code in (200, 503), resp.text
            body = resp.json()
            results = body.get("results") or []
            ok = {r["event_id"] for r in results if r["status"] == "accepted"}
            accepted.extend(e["event_id"] for e in events if e["event_id"] in ok)
            not_accepted.extend(e["event_id"] for e in events if e["event_id"] not in ok)
            if resp.status_code == 503:
                assert resp.headers["retry-after"]
                assert body["error"] == "kafka_unavailable"
            return resp.status_code

        with TestClient(app) as client:
            assert send(batch(20)) == 200
            broker.pause()
            try:
                codes = [send(batch(10)) for _ in range(4)]
                assert codes[-1] == 503 and all(c == 503 for c in codes[1:])
                ready = client.get("/readyz")
                assert ready.status_code == 503, ready.text
                assert client.get("/healthz").status_code == 200  # alive, just not ready
            finally:
                broker.resume()
            wait_until(lambda: client.get("/readyz").status_code == 200, 30,
                       "the gateway to be ready again")
            assert send(batch(20)) == 200
            assert send(batch(5)) == 200
            metrics = client.get("/metrics").text
            assert 'outcome="unavailable"' in metrics

        assert len(accepted) >= 45  # 20 before and 25 after the outage (+ any before it froze)
        records = read_topic(kafka, topics.hub_events, idle_timeout_s=3.0)
        counts = Counter(orjson.loads(r.value)["event_id"] for r in records)
        missing = [e for e in accepted if counts[e] == 0]
        duplicated = [e for e in accepted if counts[e] > 1]
        assert not missing, f"{len(missing)} accepted events are not on the topic"
        assert not duplicated, f"{len(duplicated)} accepted events are on the topic twice"
        # events answered 503 were written at most once (a request in flight when the broker
        # froze may still land after it wakes up; the hub resends them with the same event_id)
        assert all(counts[e] <= 1 for e in not_accepted)
        assert set(counts) <= set(accepted) | set(not_accepted)
        tokens.close()
