"""The officer's monthly records: per-village figures of one local calendar month.

Each village value keeps month buckets (:class:`streams.state.MonthBucket`, the month of
stream time and the 24 before it, in the network's time zone). ``GET /months/{YYYY-MM}``
gathers :func:`month_rows` from every worker (each answers for the partitions it owns,
``/local/months/{YYYY-MM}``); ``packloop report officer`` turns the rows into the
per-township and per-village report (:mod:`services.reports.officer`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from streams.state import MonthBucket, VillageState
from streams.state.tallies import COUNT_KEYS

#: YYYY-MM in ASCII digits from 0001-01 (no year 0: Python's dates start at year 1);
#: used with fullmatch, so no trailing newline slips through
MONTH_RE = re.compile(r"(?!0000)[0-9]{4}-(0[1-9]|1[0-2])")


def valid_month(month: str) -> bool:
    """Whether ``month`` is a calendar month as YYYY-MM (year 0001 to 9999, month 01-12)."""
    return bool(MONTH_RE.fullmatch(month))


def month_rows(villages: Iterable[VillageState], month: str,
               reached: str | None = None) -> list[dict[str, Any]]:
    """One row per village with figures for ``month`` (sorted by village id): a bucket for
    it, or, when the stream has ``reached`` that month, waste left over from before it
    (:func:`start_of_figures`)."""
    return month_rows_reached(((state, reached) for state in villages), month)


def month_rows_reached(villages: Iterable[tuple[VillageState, str | None]],
                       month: str) -> list[dict[str, Any]]:
    """:func:`month_rows` with each village's own ``reached`` month (its partition's
    stream time: a worker's partitions do not reach a month together)."""
    rows = []
    for state, reached in villages:
        start = start_of_figures(state, month, reached)
        if start is not None:
            rows.append(month_row(state, month, start))
    rows.sort(key=lambda r: r["village_id"])
    return rows


def start_of_figures(state: VillageState, month: str,
                     reached: str | None) -> dict[str, int] | None:
    """The village's stock at the start of ``month`` when it has figures for that month,
    None when it has none: a bucket for the month, or a quiet month of a village still
    holding waste from before it.

    A quiet village has no bucket for the month, yet its waste is part of what the
    township had to recover: without a row the officer's recovery ratio left it out and
    read high (a village holding 40 kg all month counted for nothing). Only for a month
    the stream has ``reached`` (not one still ahead) and after a month the village has a
    bucket for (the buckets from then on are all kept, so its stock at the month's start is
    known exactly: :meth:`VillageState.on_hand_at_start`)."""
    if month in state.months:
        return state.on_hand_at_start(month)
    if reached is None or month > reached or not any(key < month for key in state.months):
        return None
    start = state.on_hand_at_start(month)
    return start if any(g > 0 for g in start.values()) else None


def next_month(month: str) -> str:
    year, mon = int(month[:4]), int(month[5:7])
    return f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"


def month_row(state: VillageState, month: str,
              start: dict[str, int] | None = None) -> dict[str, Any]:
    """One village's figures of ``month`` as the report reads them (zero where it has no
    bucket for it: a quiet month; ``start`` its stock at the month's start when the caller
    has it). ``on_hand_end_grams`` is what the village holds at the month's end, as far as
    the events known say: the ledger carries it into the quiet months after it
    (`services.ledger`)."""
    return _row(state.village_id, state.epoch, state.hub_id,
                state.months.get(month) or MonthBucket(),
                state.on_hand_at_start(month) if start is None else start,
                state.on_hand_at_start(next_month(month)))


def carried_row(before: dict[str, Any]) -> dict[str, Any] | None:
    """A village's row for a quiet month, from its row of the latest month before it:
    nothing happened, and what it held at that month's end (``on_hand_end_grams``) it holds
    all through. None when it held nothing, or the row predates ``on_hand_end_grams``
    (its end is then not known exactly)."""
    end = before.get("on_hand_end_grams")
    if not end or not any(g > 0 for g in end.values()):
        return None
    return _row(before["village_id"], before.get("epoch", ""), before["hub_id"],
                MonthBucket(), dict(end), dict(end))


def _row(village_id: str, epoch: str, hub_id: str, b: MonthBucket, start: dict[str, int],
         end: dict[str, int]) -> dict[str, Any]:
    return {
        "village_id": village_id,
        "epoch": epoch,
        "hub_id": hub_id,
        "generated_grams": dict(b.generated),
        "recovered_grams": dict(b.recovered),
        "pickups": {
            "requested": b.pickups_requested,
            "completed": b.pickups_completed,
            "overdue": b.pickups_overdue,
            "cancelled": b.pickups_cancelled,
        },
        "containers": {
            ct: dict(zip(("issued", "returned", "damaged", "lost"), c, strict=True))
            for ct, c in sorted(b.containers.items())
        },
        "counts": {k: b.counts.get(k, 0) for k in COUNT_KEYS},
        "on_hand_start_grams": start,
        "on_hand_end_grams": end,
    }


def merge_months(parts: list[list[dict[str, Any]]], month: str) -> dict[str, Any]:
    rows = sorted((r for part in parts for r in part), key=lambda r: r["village_id"])
    return {"month": month, "villages": rows}
