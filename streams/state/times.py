"""Time in the state: integer microseconds since the epoch (UTC).

Integers make comparisons and replays exact. "Now" is always a partition's stream time,
passed in by the caller (:mod:`streams.processor`); nothing in :mod:`streams.state`
reads a clock. Calendar days and months are local to the network's time zone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

US = 1_000_000
HOUR_US = 3600 * US
DAY_US = 24 * HOUR_US

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_us(ts: datetime) -> int:
    """A tz-aware datetime as integer microseconds since the epoch."""
    delta = ts - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def iso(us: int | None) -> str | None:
    if us is None:
        return None
    return from_us(us).isoformat().replace("+00:00", "Z")


def day_key(at: int, tz: tzinfo) -> str:
    """The local calendar day ("YYYY-MM-DD") of a time in µs."""
    return from_us(at).astimezone(tz).date().isoformat()


def month_key(at: int, tz: tzinfo) -> str:
    """The local calendar month ("YYYY-MM") of a time in µs."""
    return from_us(at).astimezone(tz).strftime("%Y-%m")
