"""`packloop status --json` and `packloop dead-letter list|redrive` without a broker: every
counter the workers report, records that are JSON but not objects, the field said once,
and a redrive that does not send again what would be refused again; `packloop worker`
whose web port is taken stops in one line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from services.cli import cli
from services.cli.context import read_settings
from services.cli.worker import dead_letter_line, read_dead_letters
from streams.consume import ConsumedRecord
from streams.deadletter import dead_letter_record
from tests.services.helpers import NETWORK, days_ago, shipment

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


def test_status_of_a_village_without_events_says_so(monkeypatch) -> None:
    """Before: the county's counters and no word of the village asked for."""
    quiet = next(v for v in NETWORK.villages if v not in (STATUS.get("villages") or {}))
    monkeypatch.setattr("services.cli.worker.fetch_status",
                        lambda *a, **k: {**STATUS, "villages": {}})
    result = CliRunner().invoke(cli, ["status", "--village", quiet])
    assert result.exit_code == 0, result.output
    assert f"village {quiet}: no event applied yet" in result.output


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


def test_a_dead_letter_line_never_writes_control_or_format_characters() -> None:
    """An event id with U+202E (right-to-left override), ESC or a newline reached the
    terminal raw (an outside audit): they are written as escapes; other text stays."""
    record = {"_offset": 1, "source": "worker", "reason": "unknown_village",
              "field": "village_id", "message": "village_id: unknown village 'V\u202e1'",
              "raw": '{"event_id":"e\u202e\x1b[2J\n中文"}'}
    line = dead_letter_line(record)
    assert "\u202e" not in line and "\x1b" not in line and "\n" not in line
    assert "\\u202e" in line and "\\x1b" in line and "中文" in line


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


def _unreachable(*args: Any, **kwargs: Any) -> Any:
    from kafka.errors import KafkaTimeoutError

    raise KafkaTimeoutError("KafkaTimeoutError: Unable to bootstrap from ['127.0.0.1:1']")


@pytest.mark.parametrize("args", [["list"], ["redrive", "--dry-run"], ["redrive"]])
def test_an_unreachable_broker_is_one_line(monkeypatch, args: list[str]) -> None:
    """Before: a 40-line traceback ending in KafkaTimeoutError (emit and topics said it in
    one line)."""
    monkeypatch.setenv("PACKLOOP_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setattr("streams.iter_topic", _unreachable)
    result = CliRunner().invoke(cli, ["dead-letter", *args])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert result.output.startswith("Error: no Kafka broker reachable at 127.0.0.1:1 within")
    assert len(result.output.strip().splitlines()) == 1


def test_a_redrive_whose_producer_cannot_connect_is_one_line(monkeypatch) -> None:
    """The read works but the producer cannot bootstrap: one line too, not a traceback."""
    values = [_dead(shipment(), "return_exceeds_issued", "count", "count: 2 returned")]
    monkeypatch.setattr("streams.iter_topic", lambda *a, **k: iter(_records(*values)))
    monkeypatch.setattr("kafka.KafkaProducer", _unreachable)
    result = CliRunner().invoke(cli, ["dead-letter", "redrive"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert "no Kafka broker reachable" in result.output


@pytest.mark.parametrize("args", [["list"], ["redrive", "--dry-run"]])
def test_dead_letter_takes_bootstrap(monkeypatch, args: list[str]) -> None:
    """Before: "No such option: --bootstrap", which emit, topics and worker accept."""
    asked: list[str] = []

    def iter_topic(kafka: Any, *a: Any, **k: Any) -> Any:
        asked.append(kafka.bootstrap_servers)
        return iter(())

    monkeypatch.setattr("streams.iter_topic", iter_topic)
    result = CliRunner().invoke(cli, ["dead-letter", *args, "--bootstrap", "k1:9092"])
    assert result.exit_code == 0, result.output
    assert asked == ["k1:9092"]


def test_redrive_counts_add_up_to_the_records_read(monkeypatch) -> None:
    """Before: repeats of an event_id were skipped uncounted (70 records, 64 accounted
    for). Now each record is in exactly one count."""
    sent_twice = shipment()
    refused_twice = shipment(hub_id="H02")  # H01-V007 belongs to H01
    values = [
        _dead(sent_twice, "return_exceeds_issued", "count", "count: 2 returned but 0 out"),
        _dead(sent_twice, "return_exceeds_issued", "count", "count: 2 returned but 0 out"),
        _dead(refused_twice, "hub_mismatch", "hub_id", "hub_id: belongs to H01"),
        _dead(refused_twice, "hub_mismatch", "hub_id", "hub_id: belongs to H01"),
        _dead(sent_twice, "return_exceeds_issued", "count", "count: 2 returned but 0 out"),
        b"not json",
    ]
    monkeypatch.setattr("streams.iter_topic", lambda *a, **k: iter(_records(*values)))
    result = CliRunner().invoke(cli, ["dead-letter", "redrive", "--dry-run"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].startswith("skipped 3 repeat(s) of an event_id already counted above")
    assert lines[0] == ("would re-submit 1 event(s) of 6 record(s); skipped 1 that are not "
                        "valid events")
    assert lines[2].startswith("skipped 1 that would be refused again as they stand "
                               "(hub_mismatch 1)")


def test_redrive_never_resends_an_event_id_conflict(monkeypatch) -> None:
    """The worker refuses an applied event_id with other content by its id, whatever the
    reference data: re-sent, each such event came back as another dead letter, on every
    redrive and with --force too. They are counted apart, with what to do instead."""
    conflict = shipment()
    may_pass = shipment()
    values = [
        _dead(conflict, "event_id_conflict", "event_id", "event_id: applied with other content"),
        _dead(may_pass, "return_exceeds_issued", "count", "count: 2 returned but 0 out"),
    ]
    monkeypatch.setattr("streams.iter_topic", lambda *a, **k: iter(_records(*values)))
    monkeypatch.setattr("kafka.KafkaProducer", _Producer)
    for args in (["redrive"], ["redrive", "--force"]):
        _Producer.sent = []
        result = CliRunner().invoke(cli, ["dead-letter", *args])
        assert result.exit_code == 0, result.output
        assert [orjson.loads(v)["event_id"] for _, _, v in _Producer.sent] == [
            may_pass["event_id"]]
        assert "skipped 1 that reuse an applied event_id with other content" in result.output
        assert "new event_id" in result.output


def test_an_unmatched_reason_names_the_reasons_on_the_topic(monkeypatch) -> None:
    """Before: `--reason bogus` printed "0 record(s)" and nothing else. The reasons are an
    open set (a schema error's is pydantic's error type), so it is a hint, not a refusal."""
    values = [
        _dead(shipment(hub_id="H02"), "hub_mismatch", "hub_id", "hub_id: belongs to H01"),
        _dead(shipment(hub_id="H02"), "hub_mismatch", "hub_id", "hub_id: belongs to H01"),
        _dead(shipment(), "unknown_village", "village_id", "village_id: unknown village"),
    ]
    monkeypatch.setattr("streams.iter_topic", lambda *a, **k: iter(_records(*values)))
    runner = CliRunner()
    bogus = runner.invoke(cli, ["dead-letter", "list", "--reason", "bogus"])
    assert bogus.exit_code == 0, bogus.output
    assert ("no dead-letter record has reason 'bogus' (reasons on the topic: hub_mismatch 2, "
            "unknown_village 1)") in bogus.stderr
    typo = runner.invoke(cli, ["dead-letter", "redrive", "--dry-run", "--reason", "hub_mismach"])
    assert "did you mean 'hub_mismatch'?" in typo.stderr
    assert "would re-submit 0 event(s) of 0 record(s)" in typo.stdout
    found = runner.invoke(cli, ["dead-letter", "list", "--reason", "hub_mismatch", "--json"])
    assert len(found.stdout.splitlines()) == 2 and "no dead-letter record" not in found.stderr


@pytest.fixture
def held_port() -> Iterator[int]:
    """A port another process (here: a listening socket) holds."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _no_kafka(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("the worker went on to Kafka with its web port taken")


@pytest.mark.parametrize("how", ["flag", "setting"])
def test_a_web_port_in_use_is_one_line_naming_the_setting(monkeypatch, held_port: int,
                                                          how: str) -> None:
    """Before: "worker state: http://127.0.0.1:P/status" (the other process), then a
    45-line traceback from Faust's web server, exit 1."""
    monkeypatch.setattr("streams.create_topics", _no_kafka)
    monkeypatch.setattr("services.cli.worker.build_worker", _no_kafka)
    args = ["worker"]
    if how == "flag":
        args += ["--web-port", str(held_port)]
    else:
        monkeypatch.setenv("PACKLOOP_WEB_PORT", str(held_port))
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert result.output.strip().splitlines() == [
        f"Error: port {held_port} on 127.0.0.1 is in use by another process: the worker's "
        "web server (state queries, /metrics) cannot listen there; choose another with "
        "--web-port or PACKLOOP_WEB_PORT (and the address with PACKLOOP_WEB_HOST)"]


def test_a_web_port_in_use_stops_the_real_command_in_one_line(held_port: int) -> None:
    """The installed entry point: one line on stderr, before Kafka is asked anything."""
    env = {**os.environ, "PACKLOOP_KAFKA_BOOTSTRAP": "127.0.0.1:1",
           "PACKLOOP_KAFKA_CONNECT_TIMEOUT_MS": "1000"}
    env.pop("PACKLOOP_WEB_PORT", None)
    done = subprocess.run([sys.executable, "-m", "services.cli", "worker", "--web-port",
                           str(held_port)], capture_output=True, text=True, timeout=60,
                          env=env, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 1
    assert done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"Error: port {held_port} on 127.0.0.1 is in use") and \
        "--web-port or PACKLOOP_WEB_PORT" in line


def test_a_free_web_port_passes_the_check() -> None:
    from services.cli.worker import check_web_port
    from services.ports import free_port

    check_web_port("127.0.0.1", free_port())


def test_an_unreachable_ledger_is_one_line_without_its_password(monkeypatch) -> None:
    """The worker printed the driver's message as it came, password and all when the
    driver quotes its connection string, over several lines."""
    import click

    from services.cli.worker import build_worker
    from services.settings import Settings

    monkeypatch.setenv("PACKLOOP_LEDGER_DB_URL",
                       "postgresql+psycopg://officer:Sup3rSecretPW@127.0.0.1:1/ledger")
    with pytest.raises(click.ClickException) as err:
        build_worker(Settings())
    text = err.value.message
    assert "Sup3rSecretPW" not in text and "\n" not in text
    assert text.startswith("cannot open the ledger (PACKLOOP_LEDGER_DB_URL="
                           "postgresql+psycopg://officer:***@127.0.0.1:1/ledger): "), text


def test_emit_json_with_no_broker_still_prints_a_document(monkeypatch, tmp_path) -> None:
    """`emit --json` with no broker printed nothing on stdout (the error on stderr only):
    a script reading the summary had nothing to parse (an outside audit)."""
    import orjson

    monkeypatch.setenv("PACKLOOP_KAFKA_BOOTSTRAP", "127.0.0.1:1")
    monkeypatch.setattr("services.cli.emit._emit_with_progress", _unreachable)
    events = tmp_path / "e.jsonl"
    events.write_text("{}\n")
    result = CliRunner().invoke(cli, ["emit", str(events), "--json"])
    assert result.exit_code == 1
    doc = orjson.loads(result.stdout)
    assert doc["ok"] is False and "no Kafka broker reachable" in doc["error"]
    assert result.stderr.startswith("Error: no Kafka broker reachable")
