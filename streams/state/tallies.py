"""Waste tallies: grams by material, cumulative, per local day and per local month.

Outstanding (generated − recovered) is always derived from the cumulative totals,
never stored, so a correction (``waste_adjustment``) cannot leave it out of step.
Day buckets serve the event-time windows; month buckets the officer's records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta, tzinfo
from typing import TYPE_CHECKING

from streams.state.times import day_key, from_us, month_key

if TYPE_CHECKING:
    from streams.state.undo import Journal

#: Day buckets kept behind stream time: enough for the current calendar month
#: and a 7-day window whatever the day of the month.
DAY_BUCKETS_KEPT = 32
#: Month buckets kept: the month of stream time and the 24 before it (the officer's
#: monthly records, ``packloop report officer``).
MONTH_BUCKETS_KEPT = 25

#: local date "YYYY-MM-DD" -> [generated, recovered], grams by material
DayBuckets = dict[str, list[dict[str, int]]]


#: The largest magnitude a tally of grams holds: 10^15 g (a million tonnes). A tally that
#: would pass it stays at it (saturates). Why saturate, and why there: the changelog codec
#: (orjson) and the ledger's BIGINT columns hold 64-bit integers, and JSON readers (kafkajs,
#: browsers) read numbers as doubles, exact to 2^53 (9.007e15). Events are bounded per item
#: (``streams.events.MAX_ITEM_GRAMS``, 10^9 g), but not in number, so a village's running
#: total is not bounded by them alone: five valid-looking 2^62 g shipments used to pass
#: 2^64 and stop the worker for good. At 10^15 every stored figure is exact as a double and
#: a county's sum over 9,000 villages still fits in 64 bits; reaching it takes a million
#: maximal items for one village (a real village generates kilograms a day), so only a
#: broken or hostile sender gets there, and the worker keeps running. Widening instead
#: (integers past 64 bits) would have to be taught to every reader of the figures.
MAX_TALLY_GRAMS = 10**15


def add_grams(target: dict[str, int], material: str, grams: int) -> None:
    """Add to a tally, dropping materials that come back to zero; the tally saturates at
    +-:data:`MAX_TALLY_GRAMS`."""
    if grams:
        value = target.get(material, 0) + grams
        if not -MAX_TALLY_GRAMS <= value <= MAX_TALLY_GRAMS:
            value = MAX_TALLY_GRAMS if value > 0 else -MAX_TALLY_GRAMS
        if value:
            target[material] = value
        else:
            target.pop(material, None)


def outstanding_of(generated: dict[str, int], recovered: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for m, g in generated.items():
        d = g - recovered.get(m, 0)
        if d > 0:
            out[m] = d
    return out


def over_collected_of(generated: dict[str, int], recovered: dict[str, int]) -> dict[str, int]:
    out: dict[str, int] = {}
    for m, r in recovered.items():
        d = r - generated.get(m, 0)
        if d > 0:
            out[m] = d
    return out


#: what a month bucket counts of its down shipments (streams.officer_kpis reads them):
#: parcels; of them, those that say whether a second box was added and those that did;
#: that give a tape width and those at most 45 mm; sealed with tape (a tape line or a
#: width); in reusable packaging; that say whether
#: the carton was reused and those that were; grams of plastic items that say whether they
#: are degradable, and of those that are not
COUNT_KEYS = ("parcels", "outer_box_known", "outer_box_added", "tape_known", "tape_le_45mm",
              "taped_parcels", "reusable_parcels", "carton_reuse_known", "cartons_reused",
              "degradable_known_grams", "nondegradable_plastic_grams")


@dataclass(slots=True)
class MonthBucket:
    """One village's figures for one local calendar month (the officer's records).

    Pickups are counted in the month they were requested, completed (collected),
    went overdue (the SLA deadline) or were cancelled (the cancel's event time);
    containers in the month of the shipment or return.
    """

    generated: dict[str, int] = field(default_factory=dict)
    recovered: dict[str, int] = field(default_factory=dict)
    pickups_requested: int = 0
    pickups_completed: int = 0
    pickups_overdue: int = 0
    #: container type -> [issued, returned, damaged, lost]
    containers: dict[str, list[int]] = field(default_factory=dict)
    pickups_cancelled: int = 0
    #: the campaigns' counts (`COUNT_KEYS`) over the month's down shipments
    counts: dict[str, int] = field(default_factory=dict)
    #: no longer set or read (`VillageState.on_hand_at_start` computes it): kept so that
    #: values written before it decode
    on_hand_start: dict[str, int] | None = None

    def container(self, ct: str) -> list[int]:
        c = self.containers.get(ct)
        if c is None:
            c = self.containers[ct] = [0, 0, 0, 0]
        return c


def day_bucket(
    days: DayBuckets, at: int, tz: tzinfo, undo: Journal | None = None
) -> list[dict[str, int]]:
    """The [generated, recovered] bucket of the local day of ``at``, created if new (and
    kept in ``undo`` before the caller changes it)."""
    key = day_key(at, tz)
    if undo is not None:
        undo.keep_day(days, key)
    bucket = days.get(key)
    if bucket is None:
        bucket = days[key] = [{}, {}]
    return bucket


def month_bucket(
    months: dict[str, MonthBucket], at: int, tz: tzinfo, undo: Journal | None = None
) -> MonthBucket:
    """The bucket of the local month of ``at``, created if new (and kept in ``undo``
    before the caller changes it)."""
    key = month_key(at, tz)
    if undo is not None:
        undo.keep_month(months, key)
    bucket = months.get(key)
    if bucket is None:
        bucket = months[key] = MonthBucket()
    return bucket


def window(days: DayBuckets, now: int, tz: tzinfo, kind: str) -> dict[str, dict[str, int]]:
    """Tallies of the event-time window ending at stream time ``now``.

    ``kind`` is ``day`` (the local calendar day of ``now``), ``7d`` (that day
    and the six before it) or ``month`` (the local calendar month of ``now``).
    """
    today = from_us(now).astimezone(tz).date()
    if kind == "day":
        first = today
    elif kind == "7d":
        first = today - timedelta(days=6)
    elif kind == "month":
        first = today.replace(day=1)
    else:
        raise ValueError(f"unknown window {kind!r}")
    lo, hi = first.isoformat(), today.isoformat()
    gen: dict[str, int] = {}
    rec: dict[str, int] = {}
    for day, (g, r) in days.items():
        if lo <= day <= hi:
            for m, v in g.items():
                add_grams(gen, m, v)
            for m, v in r.items():
                add_grams(rec, m, v)
    return {
        "generated_grams": gen,
        "recovered_grams": rec,
        "outstanding_grams": outstanding_of(gen, rec),
    }


def prune_buckets(
    days: DayBuckets, months: dict[str, MonthBucket], now: int, tz: tzinfo
) -> None:
    """Forget day and month buckets older than what is kept behind stream time."""
    if len(days) > DAY_BUCKETS_KEPT:
        oldest: date = from_us(now).astimezone(tz).date() - timedelta(days=DAY_BUCKETS_KEPT)
        cut = oldest.isoformat()
        for key in [k for k in days if k < cut]:
            del days[key]
    if len(months) > MONTH_BUCKETS_KEPT:
        local = from_us(now).astimezone(tz)
        n = local.year * 12 + local.month - 1 - (MONTH_BUCKETS_KEPT - 1)
        first = f"{n // 12:04d}-{n % 12 + 1:02d}"
        for key in [k for k in months if k < first]:
            del months[key]
