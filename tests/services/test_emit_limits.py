"""`packloop emit` without a broker: the real size of a line too big to read, a time out of
range refused while the rest of the file goes on, and why a write failed."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import orjson
from click.testing import CliRunner

from services.cli import cli
from services.emit import EmitReport, Emitter, check_line, read_lines
from streams.events import MAX_EVENT_BYTES
from streams.kafka import KafkaConnection
from tests.services.helpers import NETWORK, TOPICS, shipment


def test_a_line_over_the_limit_is_reported_at_its_real_size() -> None:
    """Before: "1048577 bytes, over the 1048576-byte limit" whatever the line's size."""
    big = orjson.dumps(shipment(note="x" * 1_300_000))
    small = orjson.dumps(shipment())
    lines = list(read_lines(io.BytesIO(big + b"\r\n" + small + b"\n")))
    assert [(n, size) for n, _, _, size in lines] == [(1, len(big)), (2, len(small))]
    (_, cut, consumed, size) = lines[0]
    assert len(cut) == MAX_EVENT_BYTES + 1 and consumed == len(big) + 2
    event, problem = check_line(cut, NETWORK, size=size)
    assert event is None and problem is not None and problem.code == "too_large"
    assert f"event is {len(big)} bytes, over the {MAX_EVENT_BYTES}-byte limit" in str(problem)


def test_a_runaway_last_line_without_a_line_break_is_measured_too() -> None:
    big = b"{" + b" " * (3 * MAX_EVENT_BYTES) + b"}"
    ((_, _, consumed, size),) = read_lines(io.BytesIO(big))
    assert size == consumed == len(big)


BOM = b"\xef\xbb\xbf"


def test_a_file_saved_with_a_bom_keeps_its_first_event() -> None:
    """Notepad and Excel's "CSV UTF-8" start a file with a UTF-8 byte order mark. Before,
    line 1 was rejected (``malformed JSON: UTF-8 byte order mark (BOM) is not
    supported``), so such an export lost its first event."""
    first, second = orjson.dumps(shipment()), orjson.dumps(shipment())
    lines = list(read_lines(io.BytesIO(BOM + first + b"\r\n" + second + b"\n")))
    assert [(n, line, consumed, size) for n, line, consumed, size in lines] == [
        (1, first, len(BOM + first) + 2, len(first)), (2, second, len(second) + 1, len(second))]
    assert all(check_line(line, NETWORK)[1] is None for _, line, _, _ in lines)


def test_a_bom_elsewhere_is_still_refused() -> None:
    """Only the start of the file is the tool's: on line 2 (two files joined with cat) a
    BOM is part of that line, and a second one on line 1 is too."""
    event = orjson.dumps(shipment())
    (first, second) = read_lines(io.BytesIO(BOM + BOM + event + b"\n" + BOM + event))
    assert first[1] == BOM + event and second[1] == BOM + event
    for _, line, _, _ in (first, second):
        _, problem = check_line(line, NETWORK)
        assert problem is not None and problem.code == "malformed_json", problem


def test_a_bom_does_not_hide_a_first_line_over_the_limit() -> None:
    """The first read is made up for the three bytes dropped, so a line just over the limit
    is still cut and measured whole."""
    big = b"{" + b" " * (MAX_EVENT_BYTES - 1) + b"}"  # the limit + 1 byte
    ((_, cut, consumed, size),) = read_lines(io.BytesIO(BOM + big + b"\n"))
    assert (len(cut), consumed, size) == (MAX_EVENT_BYTES + 1, len(BOM + big) + 1, len(big))
    assert check_line(cut, NETWORK, size=size)[1].code == "too_large"  # type: ignore[union-attr]


def test_a_time_out_of_range_is_one_rejected_line() -> None:
    """Before: OverflowError out of check_line, and emit lost the whole file."""
    event, problem = check_line(
        orjson.dumps(shipment(occurred_at="0001-01-01T00:00:00+14:00")), NETWORK)
    assert problem is not None and (problem.field, problem.code) == ("occurred_at", "value_error")


class _Batch:
    def append(self, key: bytes | None, value: bytes, timestamp: Any) -> object:
        return object()

    def close(self) -> None:
        pass


class _RefusingProducer:
    """What a broker that refuses every write looks like to the emitter."""

    def create_batch(self) -> _Batch:
        return _Batch()

    async def send_batch(self, batch: _Batch, topic: str, partition: int) -> Any:
        from aiokafka.errors import KafkaError

        raise KafkaError("Number of partitions is invalid")

    async def stop(self) -> None:
        pass


class _OfflineEmitter(Emitter):
    async def _start(self, kafka: KafkaConnection, source: str) -> None:
        self._producer = _RefusingProducer()
        self._partitions = {TOPICS.hub_events: 1, TOPICS.dead_letter: 1}
        self._lingering = asyncio.ensure_future(self._linger())


def test_a_failed_write_says_why() -> None:
    """Before: `failed: 1` and nothing more."""
    emitter = _OfflineEmitter(KafkaConnection(), TOPICS, NETWORK)
    try:
        emitter.submit(orjson.dumps(shipment()), 1)
        emitter.submit(orjson.dumps(shipment()), 2)
        emitter.flush()
    finally:
        emitter.close()
    report = emitter.report
    assert (report.accepted, report.failed) == (0, 2)
    assert report.failures == {
        f"{TOPICS.hub_events}: KafkaError: Number of partitions is invalid": 2}
    assert report.to_dict()["failures"] == dict(report.failures)


def test_the_summary_prints_why_writes_failed(monkeypatch, tmp_path) -> None:
    report = EmitReport(accepted=1, failed=2)
    report.failures["t-hub-events: KafkaError: Number of partitions is invalid"] = 2
    monkeypatch.setattr("services.emit.emit_stream", lambda *a, **k: report)
    path = tmp_path / "events.jsonl"
    path.write_bytes(orjson.dumps(shipment()) + b"\n")
    result = CliRunner().invoke(cli, ["emit", str(path)])
    assert result.exit_code == 1
    assert "failed to write: 2" in result.output
    assert "2 record(s) not written: t-hub-events: KafkaError: Number of partitions is invalid" \
        in result.output
