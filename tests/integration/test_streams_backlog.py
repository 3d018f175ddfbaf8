"""Late data counted on the real broker: a hub's 30-day backlog, uploaded after the
other villages moved stream time on, with re-sends of part of it, and a worker killed
with ``kill -9`` between two halves of the upload — every event counted exactly once.

The worker is the real ``packloop worker`` with the settings' defaults; expected figures
come from the independent model (:mod:`tests.streams.reference`) fed with the same input.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from streams.network import load_network
from tests.integration.helpers import ReadyWorker, produce, read_topic, wait_settled
from tests.streams.helpers import MonthModel, backlog_scenario, expected_months

pytestmark = pytest.mark.integration

NET = load_network()


def lines(events: list[dict]) -> list[bytes]:
    return [orjson.dumps(e) for e in events]


def test_a_30_day_backlog_with_resends_and_a_crash_counts_once(
    broker: Any, ready_worker: ReadyWorker
) -> None:
    s = backlog_scenario(NET)
    # the live villages' first days again, after the restart: their ids are in sealed
    # segments, which the restarted worker must have recovered from the changelog
    early = s.live[:200]
    half = len(s.upload) // 2
    topics, w = ready_worker(4)

    produce(broker.bootstrap, topics.hub_events, lines(s.live))
    wait_settled([w], len(s.live))
    produce(broker.bootstrap, topics.hub_events, lines(s.upload[:half]))
    wait_settled([w], len(s.live) + half)
    w.kill9()
    w.start()
    w.wait_ready()
    produce(broker.bootstrap, topics.hub_events, lines(s.upload[half:] + early))
    sent = s.live + s.upload + early
    st = wait_settled([w], len(sent), timeout=240)

    m = MonthModel(NET, 4)
    for e in sent:
        m.feed(e)
    assert st["villages"] == m.villages()
    assert st["hubs"] == m.hubs()
    assert st["pickups"]["requested"] == len(m.requested)
    assert st["pickups"]["overdue"] == len(m.overdue)
    ev = st["events"]
    assert ev["applied"] == len(m.applied_events) == len({e["event_id"] for e in m.applied_events})
    assert ev["dead_lettered"] == len(m.dead)
    assert ev["duplicates"] >= m.duplicates >= len(s.resends) + len(early) - len(m.dead)
    refused = {e["event_id"] for _r, e in m.dead}
    assert {e["event_id"] for e in s.backlog} - refused <= {e["event_id"] for e in m.applied_events}

    dead = read_topic(broker.bootstrap, topics.dead_letter)
    assert "outside_dedupe_horizon" not in {d["reason"] for d in dead}
    requested = {r["pickup_id"] for r in read_topic(broker.bootstrap, topics.pickup_requests)
                 if r["type"] == "pickup_requested"}
    assert requested == set(m.requested)

    want = expected_months(m)
    for month in ("2026-09", "2026-10"):
        rows = {r["village_id"]: r for r in w.get(f"/months/{month}").json()["villages"]}
        for (vid, mo), x in want.items():
            if mo == month and (x["gen"] or x["rec"]):
                assert rows[vid]["generated_grams"] == {k: g for k, g in x["gen"].items() if g}
                assert rows[vid]["recovered_grams"] == {k: g for k, g in x["rec"].items() if g}


def test_sealed_segments_and_their_tombstones_recover(
    broker: Any, ready_worker: ReadyWorker
) -> None:
    """A village's day of ids is sealed into its own record, deleted with a tombstone once
    behind the horizon; after ``kill -9`` the worker recovers from that changelog: a
    re-send of a sealed day's event is a duplicate, one of a forgotten day is refused."""
    vid = sorted(NET.villages)[4]
    hub = NET.villages[vid].hub_id

    def event(eid: str, at: str) -> bytes:
        return orjson.dumps({"type": "recycling_collected", "event_id": eid, "hub_id": hub,
                             "village_id": vid, "occurred_at": at,
                             "collected_grams": {"tape": 1}})

    d0, d2 = event("d0", "2026-01-01T02:00:00Z"), event("d2", "2026-01-03T02:00:00Z")
    topics, w = ready_worker(1)
    # 1 Jan, then 3 Jan (1 Jan is sealed), then 4 Apr 12:00: the horizon (92 d 1 h) now
    # starts on 2 Jan 11:00, so 1 Jan is forgotten (tombstone), 3 Jan sealed and kept
    lines = [d0, d2, event("late", "2026-04-04T12:00:00Z")]
    for sent in range(1, 4):
        produce(broker.bootstrap, topics.hub_events, lines[sent - 1:sent])
        wait_settled([w], sent, quiet_s=1.5)
    w.kill9()
    w.start()
    w.wait_ready()
    produce(broker.bootstrap, topics.hub_events, [d2, d0])
    st = wait_settled([w], 5, quiet_s=2)
    assert st["events"]["applied"] == 3
    assert st["events"]["duplicates"] == 1
    dead = read_topic(broker.bootstrap, topics.dead_letter)
    assert [(d["event_id"], d["reason"]) for d in dead] == [("d0", "outside_dedupe_horizon")]
    log = read_topic_raw(broker.bootstrap, f"packloop-worker-{topics.prefix.rstrip('-')}"
                         "-villages-changelog")
    jan1, jan3 = 20454, 20456  # days since 1970-01-01
    segments = [(k, v is None) for k, v in log if k.startswith("~s")]
    assert segments[:3] == [
        (f"~s{jan1}:{vid}", False), (f"~s{jan3}:{vid}", False), (f"~s{jan1}:{vid}", True)]
    # the embedded broker may recover the table a batch short: the restarted worker then
    # writes the last batch's records again, the same ones
    assert dict(segments) == {f"~s{jan1}:{vid}": True, f"~s{jan3}:{vid}": False}


def read_topic_raw(bootstrap: str, topic: str) -> list[tuple[str, bytes | None]]:
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(topic, bootstrap_servers=[bootstrap], auto_offset_reset="earliest",
                             consumer_timeout_ms=3000)
    try:
        return [(m.key.decode(), m.value) for m in consumer]
    finally:
        consumer.close()
