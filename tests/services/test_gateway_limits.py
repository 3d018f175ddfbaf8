"""The gateway refuses what the event contract refuses, answered per event (never 500),
and measures an event the way `packloop emit` measures a line, so both accept the same."""

from __future__ import annotations

import orjson
import pytest

from services.emit import check_line
from streams.events import MAX_EVENT_BYTES
from tests.services.helpers import NETWORK, auth, hub_events, shipment


@pytest.mark.parametrize("stamp", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-10:00"])
def test_a_time_out_of_range_is_rejected_not_a_500(make_client, token_store, fake_kafka,
                                                   stamp: str) -> None:
    client = make_client()
    _, token = token_store.add("hub", "H01")
    alone = client.post("/v1/events", json=shipment(occurred_at=stamp), headers=auth(token))
    assert alone.status_code == 422
    (result,) = alone.json()["results"]
    assert (result["reason"], result["field"]) == ("value_error", "occurred_at")
    assert "out of range" in result["message"]
    batch = client.post("/v1/events", json=[shipment(occurred_at=stamp), shipment()],
                        headers=auth(token))
    assert batch.status_code == 200
    assert [r["status"] for r in batch.json()["results"]] == ["rejected", "accepted"]
    assert len(hub_events(fake_kafka)) == 1


def test_absurd_quantities_are_rejected_naming_the_field(make_client, token_store,
                                                         fake_kafka) -> None:
    client = make_client()
    _, token = token_store.add("hub", "H01")
    collected = orjson.dumps({
        "type": "recycling_collected", "schema_version": 1, "event_id": "r-big",
        "occurred_at": shipment()["occurred_at"], "hub_id": "H01", "village_id": "H01-V007",
        "collected_grams": {"cardboard": 7}}).replace(b'"cardboard":7',
                                                     b'"cardboard":18446744073709551616')
    resp = client.post("/v1/events", content=collected,
                       headers={**auth(token), "Content-Type": "application/json"})
    assert resp.status_code == 422
    (result,) = resp.json()["results"]
    assert (result["reason"], result["field"]) == ("less_than_equal", "collected_grams.cardboard")
    assert hub_events(fake_kafka) == []


def _post_one(client, token: str, body: bytes) -> dict:
    resp = client.post("/v1/events", content=body,
                       headers={**auth(token), "Content-Type": "application/json"})
    return resp.json()["results"][0]


def test_emit_and_the_gateway_measure_an_event_alike(make_client, token_store,
                                                     fake_kafka) -> None:
    """Before: the gateway measured an event after dropping its unknown fields, and so
    accepted a 1.1 MiB event `emit` refused."""
    client = make_client()
    _, token = token_store.add("hub", "H01")
    padded = orjson.dumps(shipment(note="x" * (MAX_EVENT_BYTES // 10)))
    big = orjson.dumps(shipment(note="x" * (MAX_EVENT_BYTES + MAX_EVENT_BYTES // 10)))
    for raw in (padded, big):
        _, by_emit = check_line(raw, NETWORK)
        alone = _post_one(client, token, raw)
        in_batch = client.post("/v1/events", content=b"[" + raw + b"]",
                               headers={**auth(token), "Content-Type": "application/json"}
                               ).json()["results"][0]
        if raw is padded:
            assert by_emit is None and alone["status"] == in_batch["status"] == "accepted"
        else:
            assert by_emit is not None and by_emit.code == "too_large"
            assert alone["reason"] == in_batch["reason"] == "too_large"
            assert alone["message"] == in_batch["message"] == str(by_emit)
            assert f"is {len(raw)} bytes" in alone["message"]
    assert len(hub_events(fake_kafka)) == 2


def test_an_event_that_grows_past_the_limit_when_written_is_refused_by_both(
        make_client, token_store, fake_kafka) -> None:
    """Small items as sent, spelled out with their defaults as written: both refuse it
    (the worker would refuse the record)."""
    client = make_client(max_request_bytes=8 * 1024 * 1024)
    _, token = token_store.add("hub", "H01")
    items = [{"material": "tape", "count": 1, "grams": 1}] * 24_000
    raw = orjson.dumps(shipment(packaging=items))
    assert len(raw) <= MAX_EVENT_BYTES
    _, by_emit = check_line(raw, NETWORK)
    by_gateway = _post_one(client, token, raw)
    assert by_emit is not None and by_emit.code == by_gateway["reason"] == "too_large"
    assert "written to Kafka" in by_gateway["message"] and by_gateway["message"] == str(by_emit)
    assert hub_events(fake_kafka) == []


def test_a_batch_is_checked_off_the_event_loop(make_client, token_store, fake_kafka,
                                               monkeypatch) -> None:
    """20 batches of 500 events checked on the event loop held every other hub's requests
    for up to 3.25 s (an outside audit): a batch past INLINE_EVENTS is checked in a worker
    thread (no running event loop there), a small one in line."""
    import asyncio
    import uuid

    from services.gateway.routes import events as route

    on_loop: list[bool] = []
    parse = route.parse_hub_event

    def watched(item):
        try:
            asyncio.get_running_loop()
            on_loop.append(True)
        except RuntimeError:
            on_loop.append(False)
        return parse(item)

    monkeypatch.setattr(route, "parse_hub_event", watched)
    client = make_client()
    _, token = token_store.add("hub", "H01")
    big = [shipment(event_id=str(uuid.uuid4())) for _ in range(route.INLINE_EVENTS + 1)]
    assert client.post("/v1/events", json=big, headers=auth(token)).status_code == 200
    assert on_loop == [False] * len(big)
    on_loop.clear()
    assert client.post("/v1/events", json=big[:2], headers=auth(token)).status_code == 200
    assert on_loop == [True, True]
