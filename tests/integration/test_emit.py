"""`packloop emit` against the real embedded broker: every line lands exactly once somewhere."""

from __future__ import annotations

import io

import orjson

from services.emit import emit_stream
from services.simulation.samples import sample_events
from streams.consume import read_topic
from streams.deadletter import decode_raw
from streams.events import EventError, parse_hub_event
from streams.network import load_network
from tests.integration.helpers import REPO, packloop
from tests.streams.helpers import SHIPMENT

NETWORK = load_network()


def _line(**changes: object) -> bytes:
    return orjson.dumps({**SHIPMENT, **changes})


BAD_LINES: list[tuple[bytes, str, str | None]] = [
    (b'{"type": "shipment", "event_id": ', "malformed_json", None),
    (_line(type="teleport"), "unknown_type", "type"),
    (orjson.dumps({k: v for k, v in SHIPMENT.items() if k != "village_id"}), "missing_field",
     "village_id"),
    (_line(weight_grams=-1), "greater_than_equal", "weight_grams"),
    (_line(weight_grams="2 kg"), "value_error", "weight_grams"),
    (_line(packaging=[{"material": "unobtainium", "count": 1, "grams": 3}]), "unknown_value",
     "packaging.0.material"),
    (_line(occurred_at="2026/11/11 08:30"), "value_error", "occurred_at"),
    (b'{"type": "shipment", "pad": "' + b"x" * (1024 * 1024 + 10) + b'"}', "too_large", None),
    (b'{"type": "shipment", "name": "\xc3\x28"}', "invalid_utf8", None),
    (_line(hub_id="H02"), "hub_mismatch", "hub_id"),
]


def test_bad_lines_are_dead_lettered_one_by_one(kafka, topics) -> None:
    """Each bad line is rejected with its reason and line number; valid lines go through."""
    good = [orjson.dumps(e) for e in sample_events(NETWORK, 40, seed=3)]
    lines = []
    for i, (bad, _, _) in enumerate(BAD_LINES):
        lines += [good[i], bad]
    lines += good[len(BAD_LINES):]
    stream = io.BytesIO(b"\n".join(lines) + b"\n\n   \n")  # blank lines are skipped
    report = emit_stream(stream, kafka, topics, NETWORK)

    assert report.accepted == len(good)
    assert report.rejected == len(BAD_LINES)
    # read to the end (polls empty for a while), so a line written twice shows
    dead = [orjson.loads(r.value) for r in read_topic(kafka, topics.dead_letter)]
    events = read_topic(kafka, topics.hub_events)
    assert len(events) == len(good)
    assert len(dead) == len(BAD_LINES)
    by_line = {d["line"]: d for d in dead}
    for i, (bad, reason, field) in enumerate(BAD_LINES):
        record = by_line[2 * i + 2]
        assert record["source"] == "emit"
        assert record["reason"] == reason, record
        assert record["field"] == field
        assert record["message"]
        if reason == "too_large":
            assert record["raw_truncated"] and len(record["raw"]) == 64 * 1024
        else:
            assert decode_raw(record) == bad
    assert by_line[2 * 8 + 2]["raw_encoding"] == "base64"


def test_valid_events_are_keyed_by_village(kafka, topics) -> None:
    """Records are keyed by village_id so each village stays on one partition."""
    events = list(sample_events(NETWORK, 300, seed=5))
    stream = io.BytesIO(b"\n".join(orjson.dumps(e) for e in events))
    report = emit_stream(stream, kafka, topics, NETWORK)
    assert report.ok and report.accepted == len(events)
    records = read_topic(kafka, topics.hub_events, expected=len(events))
    partitions_by_village: dict[bytes, set[int]] = {}
    for record in records:
        assert record.key == orjson.loads(record.value)["village_id"].encode()
        partitions_by_village.setdefault(record.key, set()).add(record.partition)
    assert all(len(p) == 1 for p in partitions_by_village.values())
    assert len({p for ps in partitions_by_village.values() for p in ps}) > 1
    assert sorted(orjson.loads(r.value)["event_id"] for r in records) == sorted(
        e["event_id"] for e in events
    )


def test_cli_exit_code_and_summary(kafka, topics, tmp_path) -> None:
    """The CLI prints counts with the first reasons and exits 1 when a line was rejected."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(orjson.dumps(next(sample_events(NETWORK, 1))) + b"\n" + BAD_LINES[1][0])
    env_prefix = topics.hub_events.removesuffix("hub-events")
    result = packloop("emit", str(path), "--bootstrap", kafka.bootstrap_servers, "--json",
                      env={"PACKLOOP_TOPIC_PREFIX": env_prefix, "PATH": "/usr/bin:/bin"},
                      timeout=60)
    assert result.returncode == 1, result.stderr
    summary = orjson.loads(result.stdout)
    assert summary["accepted"] == 1 and summary["rejected"] == 1
    assert summary["first_rejections"][0]["line"] == 2
    assert "teleport" in summary["first_rejections"][0]["message"]


def test_unreachable_broker_fails_fast(tmp_path) -> None:
    """No broker at the address: a clear one-line error, not a hang or a traceback."""
    from services.broker import free_port

    path = tmp_path / "events.jsonl"
    path.write_bytes(orjson.dumps(next(sample_events(NETWORK, 1))) + b"\n")
    result = packloop("emit", str(path), "--bootstrap", f"127.0.0.1:{free_port()}",
                      env={"PACKLOOP_KAFKA_CONNECT_TIMEOUT_MS": "3000", "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0
    assert "no Kafka broker reachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_sample_file_replays_as_recent_events(kafka, topics) -> None:
    """`emit --shift-to-now examples/events/sample_events.jsonl`: whatever today's date,
    every valid line is accepted and only the three deliberately invalid ones are refused
    (without the flag an old sample ages out as too_late)."""
    sample = "examples/events/sample_events.jsonl"
    valid = 0
    for raw in (REPO / sample).read_bytes().splitlines():
        try:
            valid += NETWORK.check_event(parse_hub_event(raw)) is None
        except EventError:
            pass
    env_prefix = topics.hub_events.removesuffix("hub-events")
    result = packloop("emit", "--shift-to-now", sample, "--bootstrap", kafka.bootstrap_servers,
                      "--json", env={"PACKLOOP_TOPIC_PREFIX": env_prefix, "PATH": "/usr/bin:/bin"},
                      timeout=60)
    summary = orjson.loads(result.stdout)
    assert summary["accepted"] == valid, result.stderr
    assert summary["rejected"] == 3
    assert len(read_topic(kafka, topics.hub_events)) == valid
    # a refused line is dead-lettered as the file has it, not as shifted (re-serialised,
    # its date moved: an operator could not find it in the file)
    lines = set((REPO / sample).read_bytes().splitlines())
    dead = [decode_raw(orjson.loads(r.value)) for r in read_topic(kafka, topics.dead_letter)]
    assert len(dead) == 3 and all(raw in lines for raw in dead), dead
