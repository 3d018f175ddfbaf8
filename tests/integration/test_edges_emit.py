"""`packloop emit` refuses, with the reason, what the stream worker would not count: an
event dated ahead of the clock or older than the lateness limit is dead-lettered by emit
and counted as rejected, so "accepted" is what the worker applies."""

from __future__ import annotations

import orjson

from streams.consume import read_topic
from tests.integration.helpers import packloop
from tests.services.helpers import days_ago, shipment


def test_emit_refuses_future_and_too_late_events_up_front(kafka, topics, tmp_path) -> None:
    good = shipment(occurred_at=days_ago(20))  # a three-week backlog still counts
    ahead = shipment(occurred_at=days_ago(-1))
    late = shipment(occurred_at=days_ago(40))
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in (good, ahead, late)) + b"\n")
    result = packloop("emit", str(path), "--bootstrap", kafka.bootstrap_servers, "--json",
                      env={"PACKLOOP_TOPIC_PREFIX": topics.prefix, "PATH": "/usr/bin:/bin",
                           "PACKLOOP_ACCEPT_MAX_LATENESS_DAYS": "30"})
    assert result.returncode == 1, result.stderr
    summary = orjson.loads(result.stdout)
    assert (summary["accepted"], summary["rejected"]) == (1, 2), summary
    assert summary["reasons"] == {"future_timestamp": 1, "too_late": 1}
    lines = {r["line"]: r for r in summary["first_rejections"]}
    assert lines[2]["reason"] == "future_timestamp" and "ahead of the clock" in lines[2]["message"]
    assert lines[3]["reason"] == "too_late" and "at most 30 days late" in lines[3]["message"]
    on_topic = [orjson.loads(r.value) for r in read_topic(kafka, topics.hub_events, expected=1)]
    assert [e["event_id"] for e in on_topic] == [good["event_id"]]
    dead = [orjson.loads(r.value) for r in read_topic(kafka, topics.dead_letter, expected=2)]
    assert sorted((d["reason"], d["line"], d["source"]) for d in dead) == [
        ("future_timestamp", 2, "emit"), ("too_late", 3, "emit")]
