"""Undo what applying one event did to a village, when applying it failed half-way.

:func:`streams.state.village.apply` and :func:`streams.state.pickups.evaluate` change a
village's value in place, in several steps. Should a step raise (a bug, or an input no
check foresaw), the worker dead-letters the record instead of stopping for good on it;
the village must then be exactly as it was before the record, or part of the event would
count without the event (and a re-send, no longer a duplicate, would count it again).

A :class:`Journal` is opened before the event is applied. The small parts of the value
(counters, the cumulative tallies, the open pickup) are copied at once; the large ones
(day and month buckets, the dated lots of a material, a container pool) are copied the
first time the event reaches them (``Journal.keep_day``, ``keep_month``, ``keep_lots``,
``keep_pool``), so an event pays for what it touches, not for the whole value.
:meth:`Journal.restore` puts everything back. The dedupe set is not journaled: the caller
adds the event id only once applying succeeded.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from streams.state.containers import ContainerPool
from streams.state.pickups import OpenPickup
from streams.state.tallies import MonthBucket

if TYPE_CHECKING:
    from streams.state.village import VillageState

_MISSING = object()


def copy_month(b: MonthBucket) -> MonthBucket:
    return MonthBucket(
        dict(b.generated),
        dict(b.recovered),
        b.pickups_requested,
        b.pickups_completed,
        b.pickups_overdue,
        {k: list(v) for k, v in b.containers.items()},
        b.pickups_cancelled,
        dict(b.counts),
        None if b.on_hand_start is None else dict(b.on_hand_start),
    )


def copy_lots(lots: list[list[int]]) -> list[list[int]]:
    return list(map(list, lots))


def copy_pool(p: ContainerPool) -> ContainerPool:
    return ContainerPool(p.issued, p.returned, p.damaged, p.lost, [list(e) for e in p.fifo])


def _copy_day(day: list[dict[str, int]]) -> list[dict[str, int]]:
    return [day[0].copy(), day[1].copy()]


def _kept(kept: dict[str, Any] | None, table: Mapping[str, Any], key: str,
          copy: Callable[[Any], Any]) -> dict[str, Any]:
    """`kept` (created on first use: most events touch no large table) with `table[key]`'s
    value before the event, copied, or _MISSING; only the first time a key is kept counts."""
    if kept is None:
        kept = {}
    if key not in kept:
        old = table.get(key)
        kept[key] = _MISSING if old is None else copy(old)
    return kept


class Journal:
    """What one event may change in one village, kept so that it can be put back.

    Only :func:`~streams.state.village.apply` and :func:`~streams.state.pickups.evaluate`
    change a village through a journal; the fields the caller sets once they succeeded
    (offset, counters, last_at, the dedupe set) are not kept.
    """

    __slots__ = ("state", "_plain", "_tallies", "_open", "_days", "_months", "_lots", "_pools")

    def __init__(self, state: VillageState) -> None:
        self.state = state
        self._plain = (state.pickups_requested, state.pickups_overdue, state.pickups_collected,
                       state.pickups_cancelled, state.snooze_from, state.snooze_hours,
                       state.days, state.months, state.lots, state.containers)
        self._tallies = (state.generated.copy(), state.recovered.copy(), state.used_up.copy(),
                         state.used_down.copy(), state.snooze_new.copy(),
                         state.pickup_reasons.copy(), state.pickup_materials.copy())
        op = state.open_pickup
        self._open = None if op is None else OpenPickup(
            op.pickup_id, op.requested_at, list(op.reasons), op.overdue)
        #: per large table: key -> its value before the event (copied), or _MISSING
        self._days: dict[str, Any] | None = None
        self._months: dict[str, Any] | None = None
        self._lots: dict[str, Any] | None = None
        self._pools: dict[str, Any] | None = None

    def keep_day(self, days: dict[str, list[dict[str, int]]], key: str) -> None:
        """Before the day bucket ``key`` is changed or added (the first time counts)."""
        self._days = _kept(self._days, days, key, _copy_day)

    def keep_month(self, months: dict[str, MonthBucket], key: str) -> None:
        self._months = _kept(self._months, months, key, copy_month)

    def keep_lots(self, material: str) -> None:
        self._lots = _kept(self._lots, self.state.lots, material, copy_lots)

    def keep_pool(self, container_type: str) -> None:
        self._pools = _kept(self._pools, self.state.containers, container_type, copy_pool)

    def restore(self) -> None:
        """Put the village back as it was when the journal opened (call it once)."""
        s = self.state
        (s.pickups_requested, s.pickups_overdue, s.pickups_collected, s.pickups_cancelled,
         s.snooze_from, s.snooze_hours, s.days, s.months, s.lots, s.containers) = self._plain
        (s.generated, s.recovered, s.used_up, s.used_down, s.snooze_new, s.pickup_reasons,
         s.pickup_materials) = self._tallies
        s.open_pickup = self._open
        for table, kept in ((s.days, self._days), (s.months, self._months),
                            (s.lots, self._lots), (s.containers, self._pools)):
            for key, old in (kept or {}).items():
                if old is _MISSING:
                    table.pop(key, None)
                else:
                    table[key] = old
