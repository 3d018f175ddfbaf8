"""The officer's report at its edges: an empty month is not a month of zeros, the month's
dead letters are counted by reason, people read kg and percentages while programs get
grams and fractions under names that say so."""

from __future__ import annotations

import base64
import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from services.cli import cli
from services.reports.officer import (
    MonthReport,
    build_rows,
    dead_letters_by_reason,
    empty_reason,
    month_shift,
    to_html,
    to_json,
)
from services.reports.units import mass_text, percent_text
from streams.network import load_network

NET = load_network()
TZ = NET.timezone


def test_mass_and_percent_for_people() -> None:
    """16 g is not "0.0 kg"; precision follows the size."""
    assert [mass_text(g) for g in (0, 16, 999, 2_345, 145_224, 1_452_000)] == [
        "0 g", "16 g", "999 g", "2.35 kg", "145.2 kg", "1,452 kg"]
    assert (percent_text(0.0028), percent_text(0.8), percent_text(None)) == ("0.3%", "80.0%", "")


def test_empty_months_say_why() -> None:
    assert month_shift("2026-12", -24) == "2024-12" and month_shift("2026-01", 1) == "2026-02"
    assert "in the future" in str(empty_reason("2027-01", False, "2026-12"))
    beyond = empty_reason("2024-01", False, "2026-12")
    assert beyond is not None and "beyond the 25 months the workers keep (from 2024-12)" in beyond
    assert empty_reason("2024-12", False, "2026-12") == "no events were counted in 2024-12"
    assert empty_reason("2026-11", False, "2026-12") == "no events were counted in 2026-11"
    assert empty_reason("2026-11", True, "2026-12") is None


def _dead(reason: str, raw: bytes, at: str = "2026-12-01T00:00:00Z",
          base64_raw: bool = False) -> dict[str, Any]:
    text = base64.b64encode(raw).decode() if base64_raw else raw.decode()
    return {"source": "worker", "reason": reason, "raw": text,
            "raw_encoding": "base64" if base64_raw else "utf-8", "dead_lettered_at": at}


def test_dead_letters_count_in_their_events_local_month() -> None:
    """The event's occurred_at in the network's time zone decides the month; a record whose
    original cannot be read counts in the month it was dead-lettered."""
    records = [
        # 17:00 UTC on 31 October is 01:00 on 1 November in China
        _dead("future_timestamp", b'{"occurred_at": "2026-10-31T17:00:00Z"}'),
        _dead("too_late", b'{"occurred_at": "2026-11-20T08:00:00+08:00"}'),
        _dead("too_late", b'{"occurred_at": "2026-11-21T08:00:00+08:00"}', base64_raw=True),
        _dead("malformed_json", b"{not json", at="2026-11-03T00:00:00Z"),
        _dead("unknown_village", b'{"occurred_at": "2026-10-31T15:00:00Z"}'),  # October
        _dead("malformed_json", b"\xff\xfe", at="2026-12-01T00:00:00Z", base64_raw=True),
        # out of range once in the network's zone (OverflowError took the report down):
        # these count when they were dead-lettered
        _dead("future_timestamp", b'{"occurred_at": "9999-12-31T23:00:00-05:00"}',
              at="2026-11-04T00:00:00Z"),
        _dead("value_error", b'{"occurred_at": "0001-01-01T00:00:00+01:00"}',
              at="2026-11-05T00:00:00Z"),
    ]
    assert dead_letters_by_reason(records, "2026-11", TZ) == {
        "future_timestamp": 2, "too_late": 2, "malformed_json": 1, "value_error": 1}
    assert dead_letters_by_reason(records, "2026-10", TZ) == {"unknown_village": 1}


DATA = {"month": "2026-11", "villages": [
    {"village_id": "H01-V001", "hub_id": "H01", "generated_grams": {"tape": 16},
     "recovered_grams": {}, "pickups": {}, "containers": {}},
    {"village_id": "H01-V002", "hub_id": "H01",
     "generated_grams": {"cardboard": 145_208}, "recovered_grams": {"cardboard": 116_000},
     "pickups": {"requested": 1}, "containers": {}},
]}


def _report(**changes: Any) -> MonthReport:
    values: dict[str, Any] = dict(
        month="2026-11", county=NET.county, timezone="Asia/Shanghai",
        rows=build_rows(DATA, NET), generated_at=datetime(2026, 12, 5, 6, 0, tzinfo=TZ),
        dead_letters={"too_late": 4})
    values.update(changes)
    return MonthReport(**values)


def test_the_page_shows_kg_percent_dead_letters_and_when() -> None:
    page = to_html(_report())
    assert "<td class=\"n\">0.016 kg</td>" in page and "0.0 kg" not in page
    assert "145.22 kg" not in page and "145.2 kg" in page  # the county row: 145,224 g
    assert "79.9%" in page  # 116,000 of 145,224 g
    assert "死信 dead-lettered events" in page and "<td>too_late</td><td class=\"n\">4</td>" \
        in page
    assert "generated at 2026-12-05T06:00:00+08:00" in page
    unread = to_html(_report(dead_letters=None, dead_letters_note="Kafka at k:9092 down"))
    assert "Kafka at k:9092 down" in unread


def test_json_keeps_grams_and_fractions_under_names_that_say_so() -> None:
    body = orjson.loads(to_json(_report()))
    county = body["rows"][0]
    assert county["level"] == "county"
    assert county["generated_grams"] == 145_224 and county["recovered_grams"] == 116_000
    assert county["recovery_fraction"] == pytest.approx(116_000 / 145_224)
    assert body["dead_letters"] == {"by_reason": {"too_late": 4}, "total": 4}
    assert body["generated_at"] == "2026-12-05T06:00:00+08:00"
    assert body["empty_reason"] is None


@pytest.fixture
def offline(monkeypatch) -> dict[str, Any]:
    """The report command with a stand-in worker answer and dead-letter topic."""
    state: dict[str, Any] = {"data": DATA, "dead": [
        _dead("too_late", b'{"occurred_at": "2026-11-20T08:00:00+08:00"}')]}

    def fetch(url: str, month: str, timeout: float = 30.0) -> dict[str, Any]:
        state["url"] = url
        return {**state["data"], "month": month}

    def dead_letters(settings: Any, timeout_s: float = 3.0) -> list[dict[str, Any]]:
        if isinstance(state["dead"], Exception):
            raise state["dead"]
        return list(state["dead"])

    monkeypatch.setattr("services.cli.report.fetch_month", fetch)
    monkeypatch.setattr("services.cli.worker.read_dead_letters", dead_letters)
    return state


def _month(months_from_now: int) -> str:
    return month_shift(datetime.now(TZ).strftime("%Y-%m"), months_from_now)


def test_a_month_without_figures_exits_2_with_the_reason(offline) -> None:
    offline["data"] = {"villages": []}
    runner = CliRunner()
    for month, why in ((_month(1), "is in the future"),
                       (_month(-30), "beyond the 25 months the workers keep"),
                       (_month(-1), "no events were counted")):
        result = runner.invoke(cli, ["report", "officer", "--month", month])
        assert result.exit_code == 2, (month, result.output)
        assert f"no report for {month}: " in result.output and why in result.output
        assert "--allow-empty" in result.output
    allowed = runner.invoke(cli, ["report", "officer", "--month", _month(1), "--allow-empty",
                                  "--format", "json"])
    assert allowed.exit_code == 0, allowed.output
    body = orjson.loads(allowed.output)
    assert "无数据 no data" in body["title"] and "in the future" in body["title"]
    assert "in the future" in body["empty_reason"]


def test_the_report_asks_the_worker_it_is_told_and_reads_dead_letters(offline) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["report", "officer", "--month", "2026-11",
                                 "--worker-url", "http://127.0.0.1:26066"])
    assert result.exit_code == 0, result.output
    assert offline["url"] == "http://127.0.0.1:26066"
    assert result.output.startswith("\ufeff")
    rows = list(csv.reader(io.StringIO(result.output.removeprefix("\ufeff"))))
    assert ["too_late", "1"] in rows and ["合计 total", "1"] in rows
    generated = dict(r for r in rows if len(r) == 2)["生成时间 generated at"]
    assert abs(datetime.fromisoformat(generated) - datetime.now(UTC)) < timedelta(minutes=5)
    offline["dead"] = OSError("no broker")
    unread = runner.invoke(cli, ["report", "officer", "--month", "2026-11", "--format", "json"])
    assert unread.exit_code == 0, unread.output
    body = orjson.loads(unread.output[unread.output.index("{"):])
    assert body["dead_letters"] is None and "no broker" in body["dead_letters_note"]


@pytest.mark.parametrize("source", ["ledger", "auto"])
def test_an_unreachable_ledger_is_one_line_without_its_password(offline, monkeypatch,
                                                                source) -> None:
    """Before: a traceback, from the driver's connection error up."""
    monkeypatch.setenv("PACKLOOP_LEDGER_DB_URL",
                       "postgresql+psycopg://officer:Sup3rSecretPW@127.0.0.1:1/ledger")
    result = CliRunner().invoke(cli, ["report", "officer", "--month", "2026-11",
                                      "--source", source])
    assert result.exit_code == 1, result.output
    assert "Sup3rSecretPW" not in result.output
    [line] = [x for x in result.output.splitlines() if not x.startswith("warning:")]
    assert line.startswith("Error: cannot open the ledger (PACKLOOP_LEDGER_DB_URL="
                           "postgresql+psycopg://officer:***@127.0.0.1:1/ledger): "), line


def test_dead_letters_from_before_a_broker_restart_are_said_to_be_missing(offline) -> None:
    """After the embedded broker restarted, the ledger kept November's figures (an earlier
    epoch of H01-V002's state) while the dead-letter topic began again empty: the report
    said 0 dead letters without a word. Now it says the counts may be short; without an
    earlier epoch it says nothing."""
    from services.ledger import Ledger
    from services.settings import Settings
    from streams.ledger import LedgerRow

    settings = Settings()
    stream = settings.worker_options(settings.partitions).app_id
    runner = CliRunner()
    offline["data"] = {"villages": [{**v, "epoch": "new"} for v in DATA["villages"]]}
    quiet = runner.invoke(cli, ["report", "officer", "--month", "2026-11", "--format", "json"])
    assert quiet.exit_code == 0, quiet.output
    assert orjson.loads(quiet.output[quiet.output.index("{"):])["dead_letters_note"] is None
    figures = {"village_id": "H01-V002", "hub_id": "H01", "epoch": "old",
               "generated_grams": {"cardboard": 9_000}, "recovered_grams": {}}
    Ledger(settings.ledger_db_url).write(
        [LedgerRow(stream, "H01-V002", "H01", "2026-11", "old", 40, figures)])
    told = runner.invoke(cli, ["report", "officer", "--month", "2026-11", "--format", "json"])
    assert told.exit_code == 0, told.output
    body = orjson.loads(told.output[told.output.index("{"):])
    assert body["dead_letters"]["total"] == 1
    assert body["dead_letters_note"].startswith("1 village(s) have figures of 2026-11 from "
                                                "an earlier life"), body["dead_letters_note"]
    page = runner.invoke(cli, ["report", "officer", "--month", "2026-11", "--format", "html"])
    assert "an earlier life of the stream" in page.output
