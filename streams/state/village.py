"""One village's whole state and the pure logic that applies a hub event to it.

A :class:`VillageState` holds everything the worker knows about one village:
cumulative and windowed waste tallies, the pickup state machine, the village's
share of each reusable-container pool, the dedupe set of applied event ids and
the source offset of the last record processed for the village. The whole value
is one table entry, so the dedupe marker and the state change it guards land in
the same changelog record.

No Faust, no Kafka, no clock: "now" is the partition's stream time, passed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any

from streams.events import (
    Condition,
    Direction,
    PackagingReturn,
    PickupCancelled,
    RecyclingCollected,
    Shipment,
    WasteAdjustment,
)
from streams.state.containers import ContainerPool
from streams.state.dedupe import SeenSet
from streams.state.pickups import OpenPickup, known_pickup
from streams.state.tallies import (
    DayBuckets,
    MonthBucket,
    add_grams,
    day_bucket,
    month_bucket,
    outstanding_of,
    over_collected_of,
    prune_buckets,
    window,
)


class Rejected(Exception):
    """An event that passed the schema but cannot be applied (dead-lettered)."""

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field


@dataclass(slots=True)
class VillageState:
    village_id: str
    hub_id: str
    #: source offset of the last record processed for this village (its partition's)
    offset: int = -1
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    #: largest occurred_at applied to this village
    last_at: int | None = None
    generated: dict[str, int] = field(default_factory=dict)
    recovered: dict[str, int] = field(default_factory=dict)
    #: single-use packaging on `up` shipments (leaves with the parcel; hub usage only)
    used_up: dict[str, int] = field(default_factory=dict)
    #: single-use packaging on `down` shipments (as shipped, before adjustments)
    used_down: dict[str, int] = field(default_factory=dict)
    #: local date (network timezone) -> [generated, recovered]
    days: DayBuckets = field(default_factory=dict)
    #: when the outstanding total last left zero (age of the waste), None while zero
    waste_since: int | None = None
    pickups_requested: int = 0
    pickups_overdue: int = 0
    pickups_collected: int = 0
    pickups_cancelled: int = 0
    open_pickup: OpenPickup | None = None
    containers: dict[str, ContainerPool] = field(default_factory=dict)
    #: pickups requested by the kind of their first reason (pickups.reason_kind)
    pickup_reasons: dict[str, int] = field(default_factory=dict)
    #: dead-lettered records of this village by reason
    dead_reasons: dict[str, int] = field(default_factory=dict)
    #: local month "YYYY-MM" (network timezone) -> its figures (kept
    #: tallies.MONTH_BUCKETS_KEPT months behind stream time)
    months: dict[str, MonthBucket] = field(default_factory=dict)
    #: dedupe set of applied event ids (hashes), by event day
    seen: SeenSet = field(default_factory=SeenSet)

    @property
    def outstanding(self) -> dict[str, int]:
        return outstanding_of(self.generated, self.recovered)

    @property
    def over_collected(self) -> dict[str, int]:
        return over_collected_of(self.generated, self.recovered)

    @property
    def outstanding_total(self) -> int:
        return sum(self.outstanding.values())

    def window(self, now: int, tz: tzinfo, kind: str) -> dict[str, dict[str, int]]:
        """Tallies of the event-time window ``kind`` ending at stream time ``now``
        (see :func:`streams.state.tallies.window`)."""
        return window(self.days, now, tz, kind)


def prune(state: VillageState, now: int, tz: tzinfo, horizon_us: int) -> list[int]:
    """Forget dedupe ids and day/month buckets that fell behind stream time; returns the
    sealed dedupe segments forgotten (their records are to be deleted)."""
    gone = state.seen.prune(now - horizon_us)
    prune_buckets(state.days, state.months, now, tz)
    return gone


def check(state: VillageState, event: Any, container_types: dict[str, tuple[str, int]]) -> None:
    """Raise :class:`Rejected` when the event cannot be applied to this village.

    ``container_types`` maps a container type to ``(material, unit_grams)``.
    """
    if isinstance(event, PackagingReturn):
        ct = event.container_type.value
        pool = state.containers.get(ct)
        out = pool.in_circulation if pool else 0
        if event.count > out:
            raise Rejected(
                "return_exceeds_issued",
                f"{event.count} {ct} returned ({event.condition.value}) but village "
                f"{state.village_id} has {out} out",
                "count",
            )
    elif isinstance(event, PickupCancelled):
        if not known_pickup(state, event.pickup_id):
            raise Rejected(
                "unknown_pickup",
                f"pickup {event.pickup_id!r} was never requested for village {state.village_id}",
                "pickup_id",
            )


def apply(
    state: VillageState,
    event: Any,
    at: int,
    tz: tzinfo,
    container_types: dict[str, tuple[str, int]],
) -> None:
    """Apply one checked hub event's effects (tallies, containers, pickup closing).

    Does not run the pickup trigger: the caller calls
    :func:`streams.state.pickups.evaluate` after it.
    """
    before = state.outstanding_total
    gen = state.generated
    rec = state.recovered
    if isinstance(event, Shipment):
        if event.direction is Direction.DOWN:
            bucket = day_bucket(state.days, at, tz)
            month = month_bucket(state.months, at, tz)
            used = state.used_down
            for item in event.packaging:
                m = item.material.value
                add_grams(gen, m, item.grams)
                add_grams(bucket[0], m, item.grams)
                add_grams(month.generated, m, item.grams)
                add_grams(used, m, item.grams)
            for ref in event.containers:
                ct = ref.container_type.value
                pool = state.containers.get(ct)
                if pool is None:
                    pool = state.containers[ct] = ContainerPool()
                pool.issue(at, 1)
                month.container(ct)[0] += 1
        else:
            for item in event.packaging:
                add_grams(state.used_up, item.material.value, item.grams)
    elif isinstance(event, PackagingReturn):
        ct = event.container_type.value
        pool = state.containers[ct]
        n = event.count
        pool.take(n)
        month = month_bucket(state.months, at, tz)
        mc = month.container(ct)
        if event.condition is Condition.LOST:
            pool.lost += n
            mc[3] += n
        else:
            pool.returned += n
            mc[1] += n
            if event.condition is Condition.DAMAGED:
                pool.damaged += n
                mc[2] += n
        if event.condition is not Condition.OK:
            material, unit = container_types[ct]
            add_grams(gen, material, n * unit)
            add_grams(day_bucket(state.days, at, tz)[0], material, n * unit)
            add_grams(month.generated, material, n * unit)
    elif isinstance(event, RecyclingCollected):
        bucket = day_bucket(state.days, at, tz)
        month = month_bucket(state.months, at, tz)
        for material, grams in event.collected_grams.items():
            add_grams(rec, material.value, grams)
            add_grams(bucket[1], material.value, grams)
            add_grams(month.recovered, material.value, grams)
        op = state.open_pickup
        if op is not None and event.pickup_id == op.pickup_id:
            state.open_pickup = None
            state.pickups_collected += 1
            month.pickups_completed += 1
    elif isinstance(event, WasteAdjustment):
        bucket = day_bucket(state.days, at, tz)
        month = month_bucket(state.months, at, tz)
        for material, grams in event.generated_grams.items():
            add_grams(gen, material.value, grams)
            add_grams(bucket[0], material.value, grams)
            add_grams(month.generated, material.value, grams)
        for material, grams in event.recovered_grams.items():
            add_grams(rec, material.value, grams)
            add_grams(bucket[1], material.value, grams)
            add_grams(month.recovered, material.value, grams)
    elif isinstance(event, PickupCancelled):
        op = state.open_pickup
        if op is not None and event.pickup_id == op.pickup_id:
            state.open_pickup = None
            state.pickups_cancelled += 1
    after = state.outstanding_total
    if after <= 0:
        state.waste_since = None
    elif before <= 0 or state.waste_since is None:
        state.waste_since = at
