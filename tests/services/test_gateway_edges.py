"""The gateway at the edges a new hub meets: an event the stream would not count is refused
at once, a batch with nothing accepted is not a success, a cancel carries its snooze, and
a hub can list its own villages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from services.emit import check_line
from services.gateway import GatewayConfig
from services.settings import Settings
from streams.acceptance import AcceptanceLimits, check_occurred_at
from streams.events import parse_hub_event
from tests.services.helpers import NETWORK, auth, days_ago, hub_events, shipment

RULES = AcceptanceLimits(future_tolerance_hours=1.0, max_lateness_days=90.0)


def test_refusal_names_future_and_too_late_events() -> None:
    """The worker's time rules: more than the tolerance ahead of the clock, or more than
    the lateness limit behind it, is refused with the reason the hub is told."""
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)

    def at(delta: timedelta) -> datetime:
        event = parse_hub_event(orjson.dumps(shipment(occurred_at=(now + delta).isoformat())))
        return event.occurred_at

    ahead = check_occurred_at(at(timedelta(hours=2)), now, RULES)
    assert ahead is not None and ahead.code == "future_timestamp"
    assert ahead.field == "occurred_at" and "at most 1 h ahead" in str(ahead)
    behind = check_occurred_at(at(-timedelta(days=91)), now, RULES)
    assert behind is not None and behind.code == "too_late"
    assert "at most 90 days late" in str(behind)
    for fine in (timedelta(minutes=59), -timedelta(days=89), timedelta(0)):
        assert check_occurred_at(at(fine), now, RULES) is None, fine


def test_rules_come_from_the_settings(monkeypatch) -> None:
    """PACKLOOP_ACCEPT_MAX_LATENESS_DAYS (default 90) and the worker's future tolerance."""
    assert Settings().acceptance() == AcceptanceLimits(90.0, 1.0)
    monkeypatch.setenv("PACKLOOP_ACCEPT_MAX_LATENESS_DAYS", "30")
    monkeypatch.setenv("PACKLOOP_WORKER_FUTURE_TOLERANCE_HOURS", "2")
    settings = Settings()
    assert settings.acceptance() == AcceptanceLimits(30.0, 2.0)
    config = GatewayConfig.from_settings(settings.model_copy(update={"token_db_url": "sqlite://"}))
    assert config.acceptance == AcceptanceLimits(30.0, 2.0)


def test_emit_refuses_what_the_worker_would_drop() -> None:
    """`packloop emit` checks each line with the same rules (no rules: the old behaviour)."""
    late = orjson.dumps(shipment(occurred_at=days_ago(120)))
    _event, problem = check_line(late, NETWORK, RULES)
    assert problem is not None and problem.code == "too_late"
    assert check_line(late, NETWORK)[1] is None
    ahead = orjson.dumps(shipment(occurred_at=days_ago(-1)))
    assert check_line(ahead, NETWORK, RULES)[1].code == "future_timestamp"  # type: ignore[union-attr]
    assert check_line(orjson.dumps(shipment()), NETWORK, RULES)[1] is None


def test_an_event_ahead_of_the_clock_is_refused_not_accepted(make_client, token_store,
                                                              fake_kafka) -> None:
    """Before: 200 "accepted", then dead-lettered by the worker as future_timestamp."""
    client = make_client()
    _, token = token_store.add("hub", "H01")
    resp = client.post("/v1/events", json=shipment(occurred_at=days_ago(-0.5)),
                       headers=auth(token))
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"] == "all_rejected" and "future_timestamp" in body["message"]
    assert (body["accepted"], body["rejected"]) == (0, 1)
    [result] = body["results"]
    assert (result["status"], result["reason"], result["field"]) == (
        "rejected", "future_timestamp", "occurred_at")
    assert hub_events(fake_kafka) == []


def test_a_batch_answers_each_event_and_422_only_when_none_was_accepted(
        make_client, token_store, fake_kafka) -> None:
    client = make_client()
    _, token = token_store.add("hub", "H01")
    late = shipment(occurred_at=days_ago(100))
    good = shipment(occurred_at=days_ago(80))  # within 90 days: a backlog that counts
    mixed = client.post("/v1/events", json=[late, good], headers=auth(token))
    assert mixed.status_code == 200, mixed.text
    assert [(r["status"], r["reason"]) for r in mixed.json()["results"]] == [
        ("rejected", "too_late"), ("accepted", None)]
    assert [e["event_id"] for e in hub_events(fake_kafka)] == [good["event_id"]]
    none = client.post("/v1/events", json=[late, shipment(weight_grams=-1)],
                       headers=auth(token))
    assert none.status_code == 422
    assert [r["reason"] for r in none.json()["results"]] == ["too_late", "greater_than_equal"]
    assert len(hub_events(fake_kafka)) == 1
    metrics = client.get("/metrics").text
    assert 'outcome="rejected",reason="too_late"} 2.0' in metrics


def test_the_limits_are_in_the_openapi_document(make_client) -> None:
    """The 1 MiB per-event limit, the time rules and the 422 answer are documented."""
    post = make_client().get("/openapi.json").json()["paths"]["/v1/events"]["post"]
    assert "1048576 bytes (1 MiB" in post["description"]
    assert "future_timestamp" in post["description"] and "too_late" in post["description"]
    assert "90 days" in post["description"]
    assert post["responses"]["422"]["description"].startswith("Every event was rejected")
    schema = post["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert schema.endswith("/IngestRejected")


OPEN = {"pickup_id": "P-H01-V007-1", "village_id": "H01-V007", "hub_id": "H01",
        "requested_at": "2026-11-11T08:00:00Z", "reasons": ["outstanding_grams"],
        "overdue": False, "outstanding_grams": {"cardboard": 60000}}


def test_cancel_snooze_hours_is_validated_and_named(make_client, token_store,
                                                    fake_kafka) -> None:
    client = make_client()
    client.fake_worker.pickups = [OPEN]  # type: ignore[attr-defined]
    _, token = token_store.add("hub", "H01")
    url = "/v1/pickups/P-H01-V007-1/cancel"
    for kwargs, where in (({"json": {"snooze_hours": -1}}, "body.snooze_hours"),
                          ({"json": {"snooze_hours": "soon"}}, "body.snooze_hours"),
                          ({"json": {"snooze_hours": "24"}}, "body.snooze_hours"),
                          ({"json": {"snooze_hours": 8785}}, "body.snooze_hours"),
                          ({"params": {"snooze_hours": "-1"}}, "query.snooze_hours"),
                          ({"params": {"snooze_hours": "8785"}}, "query.snooze_hours")):
        resp = client.post(url, headers=auth(token), **kwargs)  # type: ignore[arg-type]
        assert resp.status_code == 422, (kwargs, resp.text)
        assert resp.json()["message"].startswith(where), resp.json()
    twice = client.post(url, params={"snooze_hours": 2}, json={"snooze_hours": 3},
                        headers=auth(token))
    assert twice.status_code == 422 and "snooze_hours" in twice.json()["message"]
    assert hub_events(fake_kafka) == []


@pytest.mark.parametrize("how", ["body", "query"])
def test_cancel_takes_the_snooze_range_of_the_event_format(make_client, token_store, fake_kafka,
                                                          how) -> None:
    """The range is pickup_cancelled's (streams/schemas): 0 (ask again at once if still over
    a threshold) up to 8784 hours, and a refusal says so as emit's does ("greater than or
    equal to 0"). Before, the route refused 0 ("greater than 0") and anything over 744."""
    from streams import PickupCancelled

    client = make_client()
    client.fake_worker.pickups = [OPEN]  # type: ignore[attr-defined]
    _, token = token_store.add("hub", "H01")
    url = "/v1/pickups/P-H01-V007-1/cancel"

    def cancel(hours: float) -> Any:
        given = {"json": {"snooze_hours": hours}} if how == "body" else {
            "params": {"snooze_hours": hours}}
        return client.post(url, headers=auth(token), **given)  # type: ignore[arg-type]

    for k, hours in enumerate((0, 8784)):
        # a pickup of its own each time: a second cancel of one pickup with another
        # snooze is a 409 (cancel_pending)
        client.fake_worker.pickups = [  # type: ignore[attr-defined]
            {**OPEN, "requested_at": f"2026-11-1{k}T08:00:00Z"}]
        resp = cancel(hours)
        assert resp.status_code == 202, (hours, resp.text)
        assert hub_events(fake_kafka)[-1]["snooze_hours"] == hours
    below = cancel(-1)
    assert below.status_code == 422
    assert "greater than or equal to 0" in below.json()["message"], below.json()
    with pytest.raises(ValueError, match="greater than or equal to 0"):
        PickupCancelled(event_id="e", occurred_at="2026-12-01T00:00:00Z", hub_id="H01",
                        village_id="H01-V007", pickup_id="p", reason="r", snooze_hours=-1)
    schema = client.get("/openapi.json").json()["paths"][
        "/v1/pickups/{pickup_id}/cancel"]["post"]
    [query] = [p for p in schema["parameters"] if p["name"] == "snooze_hours"]
    ranged = [s for s in query["schema"]["anyOf"] if s.get("type") == "number"]
    assert ranged == [{"type": "number", "minimum": 0, "maximum": 8784}]


@pytest.mark.parametrize("how", ["body", "query"])
def test_cancel_puts_the_snooze_on_the_event(make_client, token_store, fake_kafka,
                                             monkeypatch, how) -> None:
    """The snooze rides on the pickup_cancelled event the worker applies."""
    client = make_client()
    client.fake_worker.pickups = [OPEN]  # type: ignore[attr-defined]
    _, token = token_store.add("hub", "H01")
    given = {"json": {"reason": "road closed", "snooze_hours": 36}} if how == "body" else {
        "params": {"snooze_hours": 36}}
    resp = client.post("/v1/pickups/P-H01-V007-1/cancel", headers=auth(token),
                       **given)  # type: ignore[arg-type]
    assert resp.status_code == 202, resp.text
    assert resp.json()["snooze_hours"] == 36
    [event] = hub_events(fake_kafka)
    assert event["type"] == "pickup_cancelled" and event["snooze_hours"] == 36


def test_cancel_without_a_snooze_leaves_the_default_to_the_worker(make_client, token_store,
                                                                  fake_kafka) -> None:
    client = make_client()
    client.fake_worker.pickups = [OPEN]  # type: ignore[attr-defined]
    _, token = token_store.add("hub", "H01")
    resp = client.post("/v1/pickups/P-H01-V007-1/cancel", headers=auth(token))
    assert resp.status_code == 202 and resp.json()["snooze_hours"] is None
    [event] = hub_events(fake_kafka)
    assert event.get("snooze_hours") is None


def test_a_cancel_clicked_twice_sends_the_same_event_twice(make_client, token_store,
                                                          fake_kafka) -> None:
    """Before the worker applies the first cancel the pickup is still open, so a second
    click was a second event: same event_id (``cancel-P…``), another time, which the worker
    dead-letters as event_id_conflict. Now it is the very same event (counted once)."""
    import time as clock

    client = make_client()
    client.fake_worker.pickups = [OPEN]  # type: ignore[attr-defined]
    _, token = token_store.add("hub", "H01")
    url = "/v1/pickups/P-H01-V007-1/cancel"
    for _ in range(2):
        assert client.post(url, headers=auth(token)).status_code == 202
        clock.sleep(0.002)  # past the events' millisecond
    first, again = hub_events(fake_kafka)
    assert first == again
    # another reason after one was sent: its event would share the id and be
    # dead-lettered, so it is refused saying what was sent
    other = client.post(url, json={"reason": "road closed"}, headers=auth(token))
    assert other.status_code == 409 and other.json()["error"] == "cancel_pending"
    assert "'cancelled by the hub'" in other.json()["message"]
    assert len(hub_events(fake_kafka)) == 2


def test_a_cancel_of_another_hubs_pickup_is_403_open_or_not(make_client, token_store,
                                                             fake_kafka) -> None:
    """403 only while the pickup was open, 404 once it was not: a hub could watch another
    hub's pickups open and close (an outside audit). Refused by its id either way."""
    client = make_client()
    _, token = token_store.add("hub", "H02")
    url = "/v1/pickups/P-H01-V007-1/cancel"
    for open_now in ([OPEN], []):
        client.fake_worker.pickups = open_now  # type: ignore[attr-defined]
        resp = client.post(url, headers=auth(token))
        assert resp.status_code == 403, resp.text
    client.fake_worker.pickups = []  # type: ignore[attr-defined]
    own = client.post("/v1/pickups/P-H02-V001-1/cancel", headers=auth(token))
    assert own.status_code == 404  # its own, not open
    assert hub_events(fake_kafka) == []


def test_two_cancels_at_once_send_one_event(make_client, token_store, fake_kafka,
                                            monkeypatch) -> None:
    """Both clicks of a double-click arrive before either is sent: the second found no
    event kept (kept only after an await) and built its own, same id, another time,
    dead-lettered as event_id_conflict (a review). Kept before any await, it is reused."""
    import threading
    import time as clock

    client = make_client()
    client.fake_worker.pickups = [OPEN]  # type: ignore[attr-defined]
    _, token = token_store.add("hub", "H01")
    gw_down = client.app.state.gateway.kafka_down  # type: ignore[attr-defined]
    both_in = threading.Barrier(2, timeout=5)

    def slow_down() -> Any:  # both requests wait here, after building their events
        try:
            both_in.wait()
        except threading.BrokenBarrierError:
            pass
        return gw_down()

    monkeypatch.setattr(client.app.state.gateway, "kafka_down", slow_down)  # type: ignore[attr-defined]
    answers: list[int] = []

    def click() -> None:
        answers.append(client.post("/v1/pickups/P-H01-V007-1/cancel",
                                   headers=auth(token)).status_code)
        clock.sleep(0.002)

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert answers == [202, 202]
    first, second = hub_events(fake_kafka)
    assert first == second


def test_a_hub_lists_its_own_villages_only(make_client, token_store) -> None:
    client = make_client()
    _, h1 = token_store.add("hub", "H01")
    resp = client.get("/v1/hubs/H01/villages", headers=auth(h1))
    assert resp.status_code == 200, resp.text
    body = resp.json()
    expected = sorted(v.village_id for v in NETWORK.villages.values() if v.hub_id == "H01")
    assert [v["village_id"] for v in body["villages"]] == expected
    assert body["count"] == len(expected) and body["hub_name"] == NETWORK.hubs["H01"].name
    first = NETWORK.villages[expected[0]]
    assert body["villages"][0]["name"] == first.name
    assert body["villages"][0]["thresholds"]["outstanding_grams"] == (
        first.thresholds.outstanding_grams)
    other = client.get("/v1/hubs/H02/villages", headers=auth(h1))
    assert other.status_code == 403 and other.json()["error"] == "forbidden"
    assert client.get("/v1/hubs/H01/villages").status_code == 401
    spec = client.get("/openapi.json").json()
    assert spec["paths"]["/v1/hubs/{hub_id}/villages"]["get"]["security"] == [{"hubToken": []}]


@pytest.mark.parametrize("path", ["/v1/hubs/{hub}/villages", "/v1/pickups?hub={hub}"])
def test_a_hub_id_the_network_does_not_know_is_a_404_on_every_hub_route(
        path, make_client, token_store) -> None:
    """``h01`` is not H01 (hub ids are case-sensitive) and not another hub either: 404 naming
    it, where a known hub that is not the token's is a 403."""
    client = make_client()
    _, h1 = token_store.add("hub", "H01")
    lower = client.get(path.format(hub="h01"), headers=auth(h1))
    assert lower.status_code == 404, lower.text
    assert lower.json()["message"] == ("unknown hub 'h01' (hub ids are case-sensitive: did "
                                       "you mean 'H01'?)")
    assert client.get(path.format(hub="H02"), headers=auth(h1)).status_code == 403
    documented = client.get("/openapi.json").json()["paths"][path.split("?")[0].replace(
        "{hub}", "{hub_id}")]["get"]["responses"]
    assert "404" in documented


def test_a_cancel_of_another_villages_pickup_is_refused_not_accepted(make_client, token_store,
                                                                     fake_kafka) -> None:
    """Before: 200 "accepted", then dead-lettered by the worker as unknown_pickup (a
    village's pickups are P-{village}-N, so no state is needed to see it)."""
    client = make_client()
    _, token = token_store.add("hub", "H01")

    def cancel(pickup_id: str) -> dict[str, Any]:
        return {"type": "pickup_cancelled", "schema_version": 1, "event_id": pickup_id + "-c",
                "occurred_at": days_ago(1), "hub_id": "H01", "village_id": "H01-V001",
                "pickup_id": pickup_id, "reason": "collector came"}

    resp = client.post("/v1/events", json=[cancel("P-H02-V005-1"), cancel("P-H01-V0011-1"),
                                           cancel("P-H01-V001-2")], headers=auth(token))
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert [(r["status"], r.get("reason"), r.get("field")) for r in results] == [
        ("rejected", "unknown_pickup", "pickup_id"), ("rejected", "unknown_pickup", "pickup_id"),
        ("accepted", None, None)]
    assert len(hub_events(fake_kafka)) == 1
