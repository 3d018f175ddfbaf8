"""Move a file of events to today: a sample or a captured day replayed as recent events.

The stream worker refuses events older than its acceptance window (90 days by default), so
a sample file ages out. Shifting every event by the same whole number of days keeps their
order, their gaps and their local times of day, and puts the latest on the day before
today (UTC).

A moved event is another event than the one the file holds, so it gets another id
(`shifted_id`): the worker keeps applied ids for 92 days and refuses an id it knows with
other content (`event_id_conflict`), so the same file replayed on a later day had every
event dead-lettered. A replay repeated with the same shift keeps the same ids, and is
deduplicated like any re-send."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import orjson
from pydantic import TypeAdapter, ValidationError

from streams.events import MAX_ID_LENGTH, UtcTimestamp

#: the events' own reading and writing of `occurred_at`
_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(UtcTimestamp)


def whole_days_to_now(lines: list[bytes], now: datetime | None = None) -> int:
    """Whole days to add so that the latest readable `occurred_at` not after `now` falls
    on the day before `now`'s (UTC dates; 0 when it is on that day or later, or none can
    be read). The same all day long, so a replay repeated the same day has the same ids
    (`shifted_id`) and is deduplicated: "within a day before now" changed at the latest
    event's time of day, and two replays either side of it were both counted (a review).
    Events dated after `now` are left out of the choice: one mistyped year (2062) kept
    every other event where it was, to be refused as too late (they are refused
    themselves, as dated in the future, `dated_after`)."""
    now = now or datetime.now(UTC)
    latest: datetime | None = None
    for raw in lines:
        at = _occurred_at(raw)
        if at is not None and at <= now and (latest is None or at > latest):
            latest = at
    if latest is None:
        return 0
    return max(0, (now.astimezone(UTC).date() - latest.astimezone(UTC).date()).days - 1)


def dated_after(lines: list[bytes], now: datetime | None = None) -> int:
    """How many readable events are dated after `now`."""
    now = now or datetime.now(UTC)
    return sum(1 for raw in lines if (at := _occurred_at(raw)) is not None and at > now)


def shifted_id(event_id: str, days: int) -> str:
    """The id of an event moved by `days`: `ID@+Nd`; an id too long for that keeps its
    head and a digest of the whole, so two long ids stay two."""
    tail = f"@+{days}d"
    if len(event_id) + len(tail) <= MAX_ID_LENGTH:
        return event_id + tail
    digest = hashlib.sha256(event_id.encode("utf-8")).hexdigest()[:32]
    head = event_id[: MAX_ID_LENGTH - len(tail) - len(digest) - 1]
    return f"{head}~{digest}{tail}"


def event_ids(lines: list[bytes]) -> frozenset[str]:
    """The string `event_id`s of the readable lines (what a correction in the file may
    name)."""
    ids = set()
    for raw in lines:
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if isinstance(event, dict) and isinstance(event.get("event_id"), str):
            ids.add(event["event_id"])
    return frozenset(ids)


def shift_line(raw: bytes, days: int, ids: frozenset[str] = frozenset()) -> bytes:
    """`raw` with its `occurred_at` moved by `days` and its `event_id` with it
    (`shifted_id`), as is a `corrects_event_id` naming one of `ids` (the file's own: the
    correction follows the event it corrects; one naming an event sent before stays). A
    line that cannot be read, or has no readable `occurred_at`, is left as it is (it is
    refused later with its own reason)."""
    if days == 0:
        return raw
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    if not isinstance(event, dict):
        return raw
    at = _occurred_at(raw, event)
    if at is None:
        return raw
    event["occurred_at"] = _TIMESTAMP.dump_python(at + timedelta(days=days), mode="json")
    if isinstance(event.get("event_id"), str) and event["event_id"]:
        event["event_id"] = shifted_id(event["event_id"], days)
    corrects = event.get("corrects_event_id")
    if isinstance(corrects, str) and corrects in ids:
        event["corrects_event_id"] = shifted_id(corrects, days)
    return orjson.dumps(event)


def _occurred_at(raw: bytes, event: object = None) -> datetime | None:
    if event is None:
        try:
            event = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return None
    if not isinstance(event, dict):
        return None
    try:
        return _TIMESTAMP.validate_python(event.get("occurred_at"))
    except ValidationError:
        return None
