"""`packloop status --json` and `packloop dead-letter list|redrive` without a broker: every
counter the workers report, records that are JSON but not objects, the field said once,
and a redrive that does not send again what would be refused again."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from services.cli import cli
from services.cli.context import read_settings
from services.cli.worker import dead_letter_line, read_dead_letters
from streams.consume import ConsumedRecord
from streams.deadletter import dead_letter_record
from tests.services.helpers import days_ago, shipment

STATUS: dict[str, Any] = {
    "villages": {}, "hubs": {},
    "pickups": {"requested": 4, "open": 1, "overdue": 0, "cancelled": 2},
    "events": {"applied": 10, "duplicates": 3, "dead_lettered": 1, "rerouted": 7},
}


def test_status_json_has_every_counter_the_text_shows(monkeypatch) -> None:
    """Before: the re-routed count was in the text output only."""
    monkeypatch.setattr("services.cli.worker.fetch_status", lambda *a, **k: STATUS)
    runner = CliRunner()
    out = orjson.loads(runner.invoke(cli, ["status", "--json"]).output)
    assert out["events"] == {"applied": 10, "duplicates": 3, "dead_lettered": 1, "rerouted": 7}
    assert out["pickups"] == {"requested": 4, "open": 1, "overdue": 0, "cancelled": 2}
    assert "re-routed 7" in runner.invoke(cli, ["status"]).output
    # an older worker without the counter: the documented keys are still there
    monkeypatch.setattr("services.cli.worker.fetch_status",
                        lambda *a, **k: {**STATUS, "events": {"applied": 1}})
    old = orjson.loads(runner.invoke(cli, ["status", "--json"]).output)
    assert old["events"] == {"applied": 1, "duplicates": 0, "dead_lettered": 0, "rerouted": 0}


def _records(*values: bytes) -> list[ConsumedRecord]:
    return [ConsumedRecord(0, i, None, v, 0) for i, v in enumerate(values)]


def _dead(event: dict[str, Any], reason: str, field: str | None, message: str) -> bytes:
    return dead_letter_record("worker", reason, orjson.dumps(event), field=field,
                              message=message)


@pytest.mark.parametrize("value", [b"[]", b"3", b'"text"', b"null", b"not json", b""])
def test_a_record_that_is_not_an_object_reads_as_unreadable(monkeypatch, value: bytes) -> None:
    """Before: TypeError at `body["_offset"] = ...` for b'[]' (list, report and redrive)."""
    good = _dead(shipment(), "unknown_village", "village_id", "village_id: unknown village")
    monkeypatch.setattr("streams.iter_topic", lambda *a, **k: iter(_records(value, good)))
    records = read_dead_letters(read_settings())
    assert [r["reason"] for r in records] == ["unreadable", "unknown_village"]
    assert records[0]["raw"] == value.decode() and records[0]["_offset"] == 0
    listed = CliRunner().invoke(cli, ["dead-letter", "list"])
    assert listed.exit_code == 0, listed.output
    assert "#0 ? unreadable" in listed.output
    redrive = CliRunner().invoke(cli, ["dead-letter", "redrive", "--dry-run"])
    assert redrive.exit_code == 0, redrive.output
    assert "skipped 1 that are not valid events" in redrive.output


def test_the_field_is_named_once() -> None:
    """Before: "type: type: unknown event type…", "hub_id: hub_id: village…"."""
    record = {"_offset": 4, "source": "emit", "reason": "unknown_type", "field": "type",
              "message": "type: unknown event type 'teleport'", "raw": "{}"}
    assert dead_letter_line(record) == "#4 emit unknown_type type: unknown event type " \
                                       "'teleport' {}"
    bare = {**record, "message": "unknown event type 'teleport'"}
    assert dead_letter_line(bare) == dead_letter_line(record)
    whole = {"_offset": 5, "source": "worker", "reason": "malformed_json", "field": None,
             "message": "malformed JSON: unexpected end", "raw": "{"}
    assert dead_letter_line(whole) == "#5 worker malformed_json malformed JSON: unexpected end {"


class _Producer:
    sent: list[tuple[str, bytes | None, bytes]] = []

    def __init__(self, **kwargs: Any) -> None:
        pass

    def send(self, topic: str, key: bytes | None = None, value: bytes = b"") -> None:
        _Producer.sent.append((topic, key, value))

    def flush(self, timeout: float | None = None) -> None:
        pass

    def close(self) -> None:
        pass


def test_redrive_skips_what_would_be_refused_again(monkeypatch) -> None:
    """Before: every dead-lettered event was re-sent, failed the same way and was counted
    again (10 distinct bad events, "dead-lettered 14"). Now only events that may pass are
    sent; the rest are named by reason, and --force sends them anyway."""
    wrong_hub = shipment(hub_id="H02")  # H01-V007 belongs to H01: not fixed yet
    ahead = shipment(occurred_at=days_ago(-2))
    old = shipment(occurred_at=days_ago(200))
    may_pass = shipment()  # e.g. return_exceeds_issued: depends on the worker's state
    values = [
        _dead(wrong_hub, "hub_mismatch", "hub_id", "hub_id: belongs to H01"),
        _dead(wrong_hub, "hub_mismatch", "hub_id", "hub_id: belongs to H01"),  # same event
        _dead(ahead, "future_timestamp", "occurred_at", "occurred_at: ahead"),
        _dead(old, "outside_dedupe_horizon", "occurred_at", "occurred_at: too old"),
        _dead(may_pass, "return_exceeds_issued", "count", "count: 2 returned but 0 out"),
    ]
    monkeypatch.setattr("streams.iter_topic", lambda *a, **k: iter(_records(*values)))
    monkeypatch.setattr("kafka.KafkaProducer", _Producer)
    _Producer.sent = []
    result = CliRunner().invoke(cli, ["dead-letter", "redrive"])
    assert result.exit_code == 0, result.output
    assert [orjson.loads(v)["event_id"] for _, _, v in _Producer.sent] == [may_pass["event_id"]]
    assert "re-submitted 1 event(s)" in result.output
    assert ("skipped 3 that would be refused again as they stand (future_timestamp 1, "
            "hub_mismatch 1, too_late 1)") in result.output
    assert "--force" in result.output
    _Producer.sent = []
    forced = CliRunner().invoke(cli, ["dead-letter", "redrive", "--force"])
    assert forced.exit_code == 0, forced.output
    assert len(_Producer.sent) == 4 and "re-submitted 4 event(s)" in forced.output
