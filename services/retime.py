"""Move a file of events to today: a sample or a captured day replayed as recent events.

The stream worker refuses events older than its acceptance window (90 days by default), so
a sample file ages out. Shifting every event by the same whole number of days keeps their
order, their gaps and their local times of day, and puts the latest at most one day
before now."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import orjson
from pydantic import TypeAdapter, ValidationError

from streams.events import UtcTimestamp

#: the events' own reading and writing of `occurred_at`
_TIMESTAMP: TypeAdapter[datetime] = TypeAdapter(UtcTimestamp)


def whole_days_to_now(lines: list[bytes], now: datetime | None = None) -> int:
    """Whole days to add so that the latest readable `occurred_at` not after `now` is
    within a day before `now` (0 when it already is, or none can be read). Events dated
    after `now` are left out of the choice: one mistyped year (2062) kept every other
    event where it was, to be refused as too late (they are refused themselves, as dated
    in the future, `dated_after`)."""
    now = now or datetime.now(UTC)
    latest: datetime | None = None
    for raw in lines:
        at = _occurred_at(raw)
        if at is not None and at <= now and (latest is None or at > latest):
            latest = at
    if latest is None:
        return 0
    return max(0, math.floor((now - latest) / timedelta(days=1)))


def dated_after(lines: list[bytes], now: datetime | None = None) -> int:
    """How many readable events are dated after `now`."""
    now = now or datetime.now(UTC)
    return sum(1 for raw in lines if (at := _occurred_at(raw)) is not None and at > now)


def shift_line(raw: bytes, days: int) -> bytes:
    """`raw` with its `occurred_at` moved by `days`; a line that cannot be read, or has no
    readable `occurred_at`, is left as it is (it is refused later with its own reason)."""
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
