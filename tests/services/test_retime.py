"""`emit --shift-to-now`: an old sample file replayed as recent events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from services.retime import MAX_ID_LENGTH, event_ids, shift_line, shifted_id, whole_days_to_now
from streams.events import EventError, parse_hub_event

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "examples" / "events" / "sample_events.jsonl"


def test_the_sample_file_is_moved_within_a_day_of_now_keeping_order_and_time_of_day():
    lines = SAMPLE.read_bytes().split(b"\n")
    now = datetime(2031, 5, 17, 9, 30, tzinfo=UTC)
    days = whole_days_to_now(lines, now)
    before, after = [], []
    for raw in lines:
        if not raw.strip():
            continue
        moved = shift_line(raw, days)
        try:
            old = parse_hub_event(raw)
        except EventError as exc:
            # an invalid line still goes to dead-letter, for its own reason
            with pytest.raises(EventError) as again:
                parse_hub_event(moved)
            assert again.value.field == exc.field
            continue
        new = parse_hub_event(moved)
        assert new.occurred_at - old.occurred_at == timedelta(days=days)
        assert new.event_id == f"{old.event_id}@+{days}d"
        before.append(old.occurred_at)
        after.append(new.occurred_at)
    assert len(after) > 10
    assert max(after).date() == now.date() - timedelta(days=1)
    assert [a - before[0] for a in before] == [a - after[0] for a in after]


def test_recent_events_are_not_moved():
    now = datetime.now(UTC)
    raw = orjson.dumps({"occurred_at": (now - timedelta(hours=3)).isoformat()})
    assert whole_days_to_now([raw], now) == 0
    assert whole_days_to_now([b"not json", b"[1]"], now) == 0
    assert shift_line(b"not json", 5) == b"not json"


def test_a_file_starting_with_a_bom_is_shifted_from_its_first_event():
    """A Windows export starts with a byte order mark: `emit` takes the file, and
    `--shift-to-now` must move its first event too (it read that line as not JSON, left it
    unshifted, and the event was refused as too late)."""
    import io

    from services.cli.emit import _shifted

    first = SAMPLE.read_bytes().split(b"\n")[0]
    whole, shift = _shifted(io.BytesIO(b"\xef\xbb\xbf" + SAMPLE.read_bytes()))
    line = whole.read().split(b"\n")[0]
    assert not line.startswith(b"\xef\xbb\xbf") and shift is not None
    out = shift(line)
    assert parse_hub_event(out).occurred_at > parse_hub_event(first).occurred_at


def test_an_event_dated_in_the_future_does_not_stop_the_others_moving():
    """One mistyped year (2062) in a file of old events made the shift 0: every other
    event stayed where it was and was refused as too late, with no hint."""
    from services.retime import dated_after

    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    old = [orjson.dumps({"occurred_at": f"2026-08-0{d}T10:00:00Z"}) for d in (1, 2, 3)]
    typo = orjson.dumps({"occurred_at": "2062-11-01T10:00:00Z"})
    days = whole_days_to_now([*old, typo], now)
    assert days == (now.date() - datetime(2026, 8, 3).date()).days - 1
    assert dated_after([*old, typo], now) == 1


def test_a_replay_on_a_later_day_is_other_events_and_the_same_day_the_same():
    """The worker refuses a known event_id with other content (`event_id_conflict`): the
    sample replayed with --shift-to-now on Monday and again on Tuesday had every event of
    Tuesday's run dead-lettered. Moved by other days, the ids differ; by the same, they
    are equal (a repeated run is deduplicated)."""
    raw = orjson.dumps({"event_id": "e-1", "occurred_at": "2026-11-01T10:00:00Z"})
    monday, tuesday = shift_line(raw, 30), shift_line(raw, 31)
    assert orjson.loads(monday)["event_id"] != orjson.loads(tuesday)["event_id"]
    assert shift_line(raw, 30) == monday


def test_a_correction_follows_the_event_of_its_file_it_corrects():
    lines = [orjson.dumps({"event_id": "e-1", "occurred_at": "2026-11-01T10:00:00Z"}),
             orjson.dumps({"event_id": "adj-1", "occurred_at": "2026-11-01T11:00:00Z",
                           "corrects_event_id": "e-1"}),
             orjson.dumps({"event_id": "adj-2", "occurred_at": "2026-11-01T11:00:00Z",
                           "corrects_event_id": "sent-last-month"})]
    ids = event_ids([*lines, b"not json", b"[1]"])
    assert ids == {"e-1", "adj-1", "adj-2"}
    moved = [orjson.loads(shift_line(raw, 5, ids)) for raw in lines]
    assert moved[1]["corrects_event_id"] == moved[0]["event_id"] == "e-1@+5d"
    assert moved[2]["corrects_event_id"] == "sent-last-month"


def test_a_long_id_stays_within_the_limit_and_distinct():
    a, b = "x" * 127 + "a", "x" * 127 + "b"
    sa, sb = shifted_id(a, 400), shifted_id(b, 400)
    assert sa != sb
    from pydantic import TypeAdapter

    from streams.events import Identifier

    ids = TypeAdapter(Identifier)
    assert ids.validate_python(sa) == sa and ids.validate_python(sb) == sb  # the events' limit
    with pytest.raises(ValueError):
        ids.validate_python("x" * (MAX_ID_LENGTH + 1))  # ... is the one shifted_id keeps to


def test_the_shift_is_the_same_all_day() -> None:
    """Chosen "within a day before now", the shift changed at the latest event's time of
    day: replays at 11:00 and 13:00 moved by 35 and 36 days, their ids differed, and the
    events were counted twice (a review). The latest now lands on the day before."""
    lines = [orjson.dumps({"event_id": "e1", "occurred_at": "2026-11-01T12:00:00Z"})]
    morning = whole_days_to_now(lines, datetime(2026, 12, 7, 0, 5, tzinfo=UTC))
    noon = whole_days_to_now(lines, datetime(2026, 12, 7, 11, 0, tzinfo=UTC))
    evening = whole_days_to_now(lines, datetime(2026, 12, 7, 23, 55, tzinfo=UTC))
    assert morning == noon == evening == 35
    moved = orjson.loads(shift_line(lines[0], noon))
    assert moved["occurred_at"].startswith("2026-12-06T12:00")  # the day before
