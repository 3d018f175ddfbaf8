"""The new-user test of the event side, replayed on the real broker: poison pills sent
straight to hub-events are dead-lettered while the worker keeps running; `emit` keeps
going past a time out of range; `topics create` refuses 0 partitions, and a write to a
topic left without partitions says why it failed."""

from __future__ import annotations

import os
from typing import Any

import orjson
from kafka import KafkaAdminClient
from kafka.admin import NewTopic

from streams.consume import read_topic
from streams.topics import Topics
from tests.helpers import wait_until
from tests.integration.helpers import NotYet, ReadyWorker, packloop, produce
from tests.services.helpers import days_ago, shipment

VILLAGE, HUB = "H05-V001", "H05"


def _ship(**changes: Any) -> dict[str, Any]:
    return shipment(HUB, VILLAGE, **changes)


def _collected(grams_text: str) -> bytes:
    body = {"type": "recycling_collected", "schema_version": 1, "event_id": "R-huge",
            "occurred_at": days_ago(0.1), "hub_id": HUB, "village_id": VILLAGE,
            "collected_grams": {"cardboard": 7}}
    return orjson.dumps(body).replace(b'"cardboard":7', f'"cardboard":{grams_text}'.encode())


def test_the_worker_dead_letters_the_poison_pills_and_keeps_running(
        broker: Any, kafka: Any, ready_worker: ReadyWorker) -> None:
    """Before: the worker died in the changelog codec (Integer exceeds 64-bit range) on the
    batch holding five 2^62 g shipments, and again on every restart."""
    topics, w = ready_worker(1)
    huge = [orjson.dumps(_ship(occurred_at=days_ago(0.1), packaging=[
        {"material": "cardboard", "count": 1, "grams": 2**62}])) for _ in range(5)]
    pills = [*huge, _collected("18446744073709551616"),
             orjson.dumps(_ship(type=[])),
             orjson.dumps(_ship(occurred_at="0001-01-01T00:00:00+14:00"))]
    good = orjson.dumps(_ship(occurred_at=days_ago(0.1)))
    produce(broker.bootstrap, topics.hub_events, [*pills, good])

    def settled() -> dict[str, Any] | NotYet:
        st = w.status()
        events = (st or {}).get("events", {})
        done = events.get("applied") == 1 and events.get("dead_lettered") == len(pills)
        return st if done and st else NotYet(events)

    st = wait_until(settled, 60, "the good event applied and every pill dead-lettered")
    assert isinstance(st, dict)
    assert w.alive(), w.log()
    assert "Integer exceeds 64-bit range" not in w.log()
    assert st["villages"][VILLAGE]["generated_grams"] == {"cardboard": 200}
    dead = [orjson.loads(r.value)
            for r in read_topic(kafka, topics.dead_letter, expected=len(pills))]
    assert sorted(d["reason"] for d in dead) == sorted(
        ["less_than_equal"] * 6 + ["unknown_type", "value_error"])
    assert {d["source"] for d in dead} == {"worker"}


def test_emit_keeps_going_past_a_time_out_of_range(kafka, topics, tmp_path) -> None:
    """Before: OverflowError, and nothing of the file was written (not even line 1)."""
    first, last = shipment(), shipment()
    lines = [orjson.dumps(first),
             orjson.dumps(shipment(occurred_at="0001-01-01T00:00:00+14:00")),
             _collected("18446744073709551616").replace(HUB.encode(), b"H01").replace(
                 VILLAGE.encode(), b"H01-V007"),
             orjson.dumps(last)]
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = packloop("emit", str(path), "--bootstrap", kafka.bootstrap_servers, "--json",
                      env={**os.environ, "PACKLOOP_TOPIC_PREFIX": topics.prefix})
    assert result.returncode == 1, result.stderr
    summary = orjson.loads(result.stdout)
    assert (summary["accepted"], summary["rejected"], summary["failed"]) == (2, 2, 0)
    assert summary["reasons"] == {"value_error": 1, "less_than_equal": 1}
    on_topic = [orjson.loads(r.value)["event_id"]
                for r in read_topic(kafka, topics.hub_events, expected=2)]
    assert sorted(on_topic) == sorted([first["event_id"], last["event_id"]])
    dead = [orjson.loads(r.value) for r in read_topic(kafka, topics.dead_letter, expected=2)]
    assert sorted((d["line"], d["reason"], d["field"]) for d in dead) == [
        (2, "value_error", "occurred_at"), (3, "less_than_equal", "collected_grams.cardboard")]


def test_zero_partitions_are_refused_and_a_failed_write_says_why(kafka, tmp_path) -> None:
    env = {**os.environ, "PACKLOOP_KAFKA_BOOTSTRAP": kafka.bootstrap_servers}
    fresh = Topics(prefix=f"zero{os.getpid()}-")
    refused = packloop("topics", "create", "--partitions", "0",
                       env={**env, "PACKLOOP_TOPIC_PREFIX": fresh.prefix})
    assert refused.returncode == 2 and "--partitions" in refused.stderr
    admin = KafkaAdminClient(client_id="test", **kafka.kafka_python_kwargs())
    try:
        assert not [t for t in admin.list_topics() if t.startswith(fresh.prefix)]
        # what `topics create --partitions 0` used to leave behind
        for spec in fresh.specs(0):
            admin.create_topics([NewTopic(spec.name, 0, 1)], raise_errors=False)
    finally:
        admin.close()
    again = packloop("topics", "create", env={**env, "PACKLOOP_TOPIC_PREFIX": fresh.prefix})
    assert again.returncode == 1
    assert f"{fresh.hub_events}\tfailed: exists without partitions" in again.stdout
    path = tmp_path / "one.jsonl"
    path.write_bytes(orjson.dumps(shipment()) + b"\n")
    emitted = packloop("emit", str(path), env={**env, "PACKLOOP_TOPIC_PREFIX": fresh.prefix})
    assert emitted.returncode == 1
    assert "failed to write: 1" in emitted.stdout
    assert f"1 record(s) not written: {fresh.hub_events}: " in emitted.stdout
    assert "no partitions for this topic" in emitted.stdout
