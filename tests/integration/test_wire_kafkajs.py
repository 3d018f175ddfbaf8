"""Wire compatibility with a non-Python client: kafkajs produces, packloop reads back.

kafkajs 2 uses Java-compatible murmur2 by default, so its records must land on
the same partition as kafka-python's default partitioner would put them, which
is what keeps each village's events in order on one partition.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import orjson
import pytest
from kafka.partitioner.default import murmur2

from services.simulation.samples import sample_events
from streams.consume import read_topic
from streams.events import parse_hub_event
from streams.network import load_network

JS_DIR = Path(__file__).resolve().parents[1] / "js"


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    assert path, "Node.js is required for the wire-compatibility test"
    assert (JS_DIR / "node_modules" / "kafkajs").is_dir(), "run `npm ci` in tests/js (make setup)"
    return path


def test_kafkajs_producer_packloop_reader(node: str, kafka, topics) -> None:
    """Events produced by kafkajs are read back intact, valid, and murmur2-partitioned."""
    network = load_network()
    events = list(sample_events(network, 200, seed=11))
    payload = b"\n".join(orjson.dumps(e) for e in events) + b"\n"
    done = subprocess.run(
        [node, str(JS_DIR / "produce.js"), kafka.bootstrap_servers, topics.hub_events],
        input=payload, capture_output=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert orjson.loads(done.stdout)["sent"] == len(events)

    records = read_topic(kafka, topics.hub_events, expected=len(events))
    assert len(records) == len(events)
    n_partitions = 4
    for record in records:
        event = parse_hub_event(record.value)
        assert record.key == event.village_id.encode()
        expected_partition = (murmur2(record.key) & 0x7FFFFFFF) % n_partitions
        assert record.partition == expected_partition
    assert sorted(parse_hub_event(r.value).event_id for r in records) == sorted(
        e["event_id"] for e in events
    )


def test_kafkajs_consumer_group_reads_packloop_records(node: str, kafka, topics) -> None:
    """kafkajs joins a consumer group on the embedded broker and reads what packloop wrote."""
    import io

    from services.emit import emit_stream

    network = load_network()
    events = list(sample_events(network, 50, seed=12))
    report = emit_stream(
        io.BytesIO(b"\n".join(orjson.dumps(e) for e in events)), kafka, topics, network
    )
    assert report.ok
    done = subprocess.run(
        [node, str(JS_DIR / "consume.js"), kafka.bootstrap_servers, topics.hub_events,
         f"{topics.prefix}js-group", str(len(events))],
        capture_output=True, timeout=90, check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    seen = orjson.loads(done.stdout)
    assert seen["count"] == len(events)
    assert sorted(orjson.loads(r["value"])["event_id"] for r in seen["records"]) == sorted(
        e["event_id"] for e in events
    )
