"""The loop through a real stream worker: a hub posts through the gateway, the worker
requests a pickup, the hub's webhook hears of it, the hub lists it and cancels it, and
the worker closes it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from fastapi.testclient import TestClient

from services.auth.tokens import TokenStore
from services.gateway import GatewayConfig, create_app
from services.gateway.webhook_delivery import verify
from streams.network import load_network
from streams.topics import Topics
from tests.helpers import wait_until
from tests.integration.helpers import WorkerProcess, wait_webhooks_reading

NET = load_network()
VILLAGE = "H01-V003"


def heavy_shipments(n: int) -> list[dict[str, Any]]:
    start = datetime.now(UTC) - timedelta(hours=3)
    return [{
        "type": "shipment", "schema_version": 1, "event_id": str(uuid.uuid4()),
        "occurred_at": (start + timedelta(minutes=i)).isoformat().replace("+00:00", "Z"),
        "hub_id": "H01", "village_id": VILLAGE, "shipment_id": f"S-{i}",
        "direction": "down", "temperature_class": "ambient", "weight_grams": 5000,
        "packaging": [{"material": "cardboard", "count": 1, "grams": 2500}],
        "containers": [],
    } for i in range(n)]


def test_pickup_requested_listed_notified_and_cancelled_through_the_gateway(
        broker: Any, kafka, topics_factory: Callable[..., Topics],
        workers: Callable[..., WorkerProcess], tmp_path: Path) -> None:
    topics = topics_factory(4)
    worker = workers(topics.prefix).start()
    worker.wait_ready()
    tokens = TokenStore(f"sqlite:///{tmp_path}/tokens.db")
    _, h1 = tokens.add("hub", "H01")
    _, h2 = tokens.add("hub", "H02")
    received: list[httpx.Request] = []
    lock = threading.Lock()

    def receiver(request: httpx.Request) -> httpx.Response:
        with lock:
            received.append(request)
        return httpx.Response(200)

    app = create_app(GatewayConfig(
        kafka=kafka, topics=topics, network=NET, tokens=tokens, worker_url=worker.url,
        webhook_transport=httpx.MockTransport(receiver),
        webhook_allow_private=True))  # h01.example does not resolve here
    with TestClient(app) as client:
        hub1 = {"Authorization": f"Bearer {h1}"}
        hub2 = {"Authorization": f"Bearer {h2}"}
        secret = client.put("/v1/webhook", json={"url": "https://h01.example/hook"},
                            headers=hub1).json()["secret"]
        assert app.state.gateway.webhooks.assigned.wait(30)
        wait_webhooks_reading(client, kafka, topics)
        # 30 parcels x 2.5 kg of cardboard: over the 50 kg threshold
        resp = client.post("/v1/events", json=heavy_shipments(30), headers=hub1)
        assert resp.status_code == 200 and resp.json()["accepted"] == 30, resp.text

        def listed() -> list[dict[str, Any]]:
            r = client.get("/v1/pickups", params={"hub": "H01", "status": "open"},
                           headers=hub1)
            return r.json()["pickups"] if r.status_code == 200 else []

        [pickup] = wait_until(listed, 60, "the pickup to be requested")
        assert pickup["village_id"] == VILLAGE and pickup["outstanding_grams"]["cardboard"] \
            == 75_000
        notices = wait_until(lambda: [
            r for r in received if orjson.loads(r.content)["type"] == "pickup_requested"],
            60, "the webhook notice")
        body = orjson.loads(notices[0].content)
        assert body["pickup_id"] == pickup["pickup_id"] and body["hub_id"] == "H01"
        assert verify(secret, notices[0].content, notices[0].headers["x-packloop-signature"])

        # another hub can neither see nor cancel it
        assert client.get("/v1/pickups", headers=hub2).json()["pickups"] == []
        assert client.post(f"/v1/pickups/{pickup['pickup_id']}/cancel",
                           headers=hub2).status_code == 403
        cancel = client.post(f"/v1/pickups/{pickup['pickup_id']}/cancel",
                             json={"reason": "road closed"}, headers=hub1)
        assert cancel.status_code == 202, cancel.text
        wait_until(lambda: pickup["pickup_id"] not in {p["pickup_id"] for p in listed()},
                   60, "the worker to close the pickup")
        detail = worker.get(f"/villages/{VILLAGE}").json()
        assert detail["pickups"]["cancelled"] == 1
        # the waste is still there, so the worker may request a new pickup: not this one
        assert (detail["pickup"] or {}).get("pickup_id") != pickup["pickup_id"]
    tokens.close()
