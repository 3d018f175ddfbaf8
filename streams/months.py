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

from streams.state import VillageState
from streams.state.tallies import COUNT_KEYS

#: YYYY-MM in ASCII digits from 0001-01 (no year 0: Python's dates start at year 1);
#: used with fullmatch, so no trailing newline slips through
MONTH_RE = re.compile(r"(?!0000)[0-9]{4}-(0[1-9]|1[0-2])")


def valid_month(month: str) -> bool:
    """Whether ``month`` is a calendar month as YYYY-MM (year 0001 to 9999, month 01-12)."""
    return bool(MONTH_RE.fullmatch(month))


def month_rows(villages: Iterable[VillageState], month: str) -> list[dict[str, Any]]:
    """One row per village with a bucket for ``month`` (sorted by village id)."""
    rows = [month_row(state, month) for state in villages if month in state.months]
    rows.sort(key=lambda r: r["village_id"])
    return rows


def month_row(state: VillageState, month: str) -> dict[str, Any]:
    """One village's figures of ``month`` (which it must have), as the report reads them."""
    b = state.months[month]
    return {
        "village_id": state.village_id,
        "epoch": state.epoch,
        "hub_id": state.hub_id,
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
        "on_hand_start_grams": state.on_hand_at_start(month),
    }


def merge_months(parts: list[list[dict[str, Any]]], month: str) -> dict[str, Any]:
    rows = sorted((r for part in parts for r in part), key=lambda r: r["village_id"])
    return {"month": month, "villages": rows}
