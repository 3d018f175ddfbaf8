"""Per-village state and its pure update logic (no Faust, no Kafka, no clock).

A :class:`VillageState` holds everything the worker knows about one village:
cumulative and windowed waste tallies, the pickup state machine, the village's
share of each reusable-container pool, the dedupe set of applied event ids and
the source offset of the last record processed for the village. The whole value
is one table entry, so the dedupe marker and the state change it guards land in
the same changelog record.

Times are integer microseconds since the epoch (UTC) so that comparisons and
replays are exact. "now" is always the partition's stream time, passed in by the
caller (:mod:`streams.processor`); nothing here reads a clock.
"""

from __future__ import annotations

import base64
import hashlib
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from streams.events import (
    Condition,
    Direction,
    PackagingReturn,
    PickupCancelled,
    RecyclingCollected,
    Shipment,
    WasteAdjustment,
)

US = 1_000_000
HOUR_US = 3600 * US
DAY_US = 24 * HOUR_US
#: Day buckets kept behind stream time: enough for the current calendar month
#: and a 7-day window whatever the day of the month.
DAY_BUCKETS_KEPT = 32
#: Month buckets kept: the month of stream time and the 24 before it (the officer's
#: monthly records, ``packloop report officer``).
MONTH_BUCKETS_KEPT = 25
#: The kinds of pickup threshold (the contract's ``reason`` label values); a pickup
#: is counted under the first threshold it crossed, in this order.
PICKUP_REASON_KINDS = ("outstanding_grams", "material_grams", "max_age_hours")

STATE_VERSION = 1


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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def id_hash(event_id: str) -> int:
    """A 63-bit digest of an event id: the dedupe set stores this, not the id.

    Collisions need ~3e9 ids in one village's 14-day horizon to become likely.
    """
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big") >> 1


# -- results -----------------------------------------------------------------------------


class Rejected(Exception):
    """An event that passed the schema but cannot be applied (dead-lettered)."""

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field


@dataclass(slots=True)
class Emission:
    """A pickup notice the worker must publish (kind: pickup_requested|pickup_overdue)."""

    kind: str
    village_id: str
    hub_id: str
    pickup_id: str
    occurred_at: int
    outstanding_grams: dict[str, int]
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class Limits:
    """The thresholds that apply to one village, in the units the logic uses."""

    outstanding_grams: int
    material_grams: dict[str, int]
    max_age_us: int
    sla_us: int
    container_overdue_us: int
    #: the network's time zone (month buckets of pickups); UTC when not given
    tz: ZoneInfo | None = None

    @classmethod
    def for_village(cls, network: Any, village_id: str) -> Limits:
        th = network.villages[village_id].thresholds
        return cls(
            outstanding_grams=int(th.outstanding_grams),
            material_grams={str(k): int(v) for k, v in th.material_grams.items()},
            max_age_us=int(round(th.max_age_hours * HOUR_US)),
            sla_us=int(round(network.pickup_sla_hours * HOUR_US)),
            container_overdue_us=int(round(network.container_overdue_days * DAY_US)),
            tz=network.timezone,
        )


def _add(target: dict[str, int], material: str, grams: int) -> None:
    if grams:
        value = target.get(material, 0) + grams
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


# -- containers ---------------------------------------------------------------------------


@dataclass(slots=True)
class ContainerPool:
    """One village's share of one container type's pool."""

    issued: int = 0
    returned: int = 0
    damaged: int = 0
    lost: int = 0
    #: not yet matched by a return: [[issued_at_us, count], ...] oldest first (FIFO)
    fifo: list[list[int]] = field(default_factory=list)

    @property
    def in_circulation(self) -> int:
        return self.issued - self.returned - self.lost

    def issue(self, at: int, count: int) -> None:
        self.issued += count
        fifo = self.fifo
        if fifo and fifo[-1][0] == at:
            fifo[-1][1] += count
        elif fifo and fifo[-1][0] > at:
            # a late shipment: keep the queue ordered by issue time
            i = bisect_left([e[0] for e in fifo], at)
            if i < len(fifo) and fifo[i][0] == at:
                fifo[i][1] += count
            else:
                fifo.insert(i, [at, count])
        else:
            fifo.append([at, count])

    def take(self, count: int) -> None:
        fifo = self.fifo
        while count and fifo:
            head = fifo[0]
            if head[1] <= count:
                count -= head[1]
                fifo.pop(0)
            else:
                head[1] -= count
                count = 0

    def overdue(self, now: int, overdue_us: int) -> int:
        limit = now - overdue_us
        total = 0
        for at, count in self.fifo:
            if at < limit:
                total += count
            else:
                break
        return total

    def to_list(self) -> list[Any]:
        return [self.issued, self.returned, self.damaged, self.lost, self.fifo]

    @classmethod
    def from_list(cls, data: list[Any]) -> ContainerPool:
        return cls(data[0], data[1], data[2], data[3], [list(e) for e in data[4]])


@dataclass(slots=True)
class MonthBucket:
    """One village's figures for one local calendar month (the officer's records).

    Pickups are counted in the month they were requested, completed (collected) or
    went overdue (the SLA deadline); containers in the month of the shipment or return.
    """

    generated: dict[str, int] = field(default_factory=dict)
    recovered: dict[str, int] = field(default_factory=dict)
    pickups_requested: int = 0
    pickups_completed: int = 0
    pickups_overdue: int = 0
    #: container type -> [issued, returned, damaged, lost]
    containers: dict[str, list[int]] = field(default_factory=dict)

    def container(self, ct: str) -> list[int]:
        c = self.containers.get(ct)
        if c is None:
            c = self.containers[ct] = [0, 0, 0, 0]
        return c

    def to_list(self) -> list[Any]:
        return [
            self.generated,
            self.recovered,
            [self.pickups_requested, self.pickups_completed, self.pickups_overdue],
            self.containers,
        ]

    @classmethod
    def from_list(cls, data: list[Any]) -> MonthBucket:
        pk = data[2]
        return cls(
            dict(data[0]),
            dict(data[1]),
            pk[0],
            pk[1],
            pk[2],
            {k: list(v) for k, v in data[3].items()},
        )


def month_key(at: int, tz: ZoneInfo) -> str:
    """The local calendar month ("YYYY-MM") of a time in µs."""
    return from_us(at).astimezone(tz).strftime("%Y-%m")


def reason_kind(reason: str) -> str:
    """``material_grams:eps_foam`` -> ``material_grams`` (the contract's reason value)."""
    return reason.split(":", 1)[0]


# -- the village --------------------------------------------------------------------------


@dataclass(slots=True)
class OpenPickup:
    pickup_id: str
    requested_at: int
    reasons: list[str]
    overdue: bool = False


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
    days: dict[str, list[dict[str, int]]] = field(default_factory=dict)
    #: when the outstanding total last left zero (age of the waste), None while zero
    waste_since: int | None = None
    pickups_requested: int = 0
    pickups_overdue: int = 0
    pickups_collected: int = 0
    pickups_cancelled: int = 0
    open_pickup: OpenPickup | None = None
    containers: dict[str, ContainerPool] = field(default_factory=dict)
    #: pickups requested by the kind of their first reason (reason_kind)
    pickup_reasons: dict[str, int] = field(default_factory=dict)
    #: dead-lettered records of this village by reason
    dead_reasons: dict[str, int] = field(default_factory=dict)
    #: local month "YYYY-MM" (network timezone) -> MonthBucket.to_list() form, see
    #: :class:`MonthBucket` (kept MONTH_BUCKETS_KEPT months behind stream time)
    months: dict[str, MonthBucket] = field(default_factory=dict)
    #: dedupe set of applied event ids (hashes), by event day
    seen: SeenSet = field(default_factory=lambda: SeenSet())

    # ---- derived figures ----

    @property
    def outstanding(self) -> dict[str, int]:
        return outstanding_of(self.generated, self.recovered)

    @property
    def over_collected(self) -> dict[str, int]:
        return over_collected_of(self.generated, self.recovered)

    @property
    def outstanding_total(self) -> int:
        return sum(self.outstanding.values())

    def window(self, now: int, tz: ZoneInfo, kind: str) -> dict[str, dict[str, int]]:
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
        for day, (g, r) in self.days.items():
            if lo <= day <= hi:
                for m, v in g.items():
                    _add(gen, m, v)
                for m, v in r.items():
                    _add(rec, m, v)
        return {
            "generated_grams": gen,
            "recovered_grams": rec,
            "outstanding_grams": outstanding_of(gen, rec),
        }

    def next_due(self, limits: Limits) -> int | None:
        """The earliest stream time at which :func:`evaluate` could act without a new
        event for this village (pickup SLA expiry or the age threshold)."""
        op = self.open_pickup
        if op is not None:
            return None if op.overdue else op.requested_at + limits.sla_us + 1
        if self.waste_since is not None:
            return self.waste_since + limits.max_age_us
        return None

    # ---- serialization (the changelog value) ----

    def to_dict(self) -> dict[str, Any]:
        op = self.open_pickup
        return {
            "v": STATE_VERSION,
            "village_id": self.village_id,
            "hub_id": self.hub_id,
            "offset": self.offset,
            "counts": [self.applied, self.duplicates, self.dead_lettered],
            "last_at": self.last_at,
            "generated": self.generated,
            "recovered": self.recovered,
            "used_up": self.used_up,
            "used_down": self.used_down,
            "days": self.days,
            "waste_since": self.waste_since,
            "pickups": [
                self.pickups_requested,
                self.pickups_overdue,
                self.pickups_collected,
                self.pickups_cancelled,
            ],
            "open_pickup": None
            if op is None
            else [op.pickup_id, op.requested_at, op.reasons, op.overdue],
            "containers": {k: v.to_list() for k, v in self.containers.items()},
            "seen": self.seen.pack(),
            "pickup_reasons": self.pickup_reasons,
            "dead_reasons": self.dead_reasons,
            "months": {k: v.to_list() for k, v in self.months.items()},
        }

    def to_bytes(self) -> bytes:
        return orjson.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VillageState:
        op = d.get("open_pickup")
        counts = d["counts"]
        pk = d["pickups"]
        return cls(
            village_id=d["village_id"],
            hub_id=d["hub_id"],
            offset=d["offset"],
            applied=counts[0],
            duplicates=counts[1],
            dead_lettered=counts[2],
            last_at=d.get("last_at"),
            generated=dict(d["generated"]),
            recovered=dict(d["recovered"]),
            used_up=dict(d.get("used_up") or {}),
            used_down=dict(d.get("used_down") or {}),
            days={k: [dict(v[0]), dict(v[1])] for k, v in d["days"].items()},
            waste_since=d.get("waste_since"),
            pickups_requested=pk[0],
            pickups_overdue=pk[1],
            pickups_collected=pk[2],
            pickups_cancelled=pk[3],
            open_pickup=None if op is None else OpenPickup(op[0], op[1], list(op[2]), op[3]),
            containers={k: ContainerPool.from_list(v) for k, v in d["containers"].items()},
            seen=SeenSet.unpack(d["seen"]),
            pickup_reasons=dict(d.get("pickup_reasons") or {}),
            dead_reasons=dict(d.get("dead_reasons") or {}),
            months={k: MonthBucket.from_list(v) for k, v in (d.get("months") or {}).items()},
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> VillageState:
        return cls.from_dict(orjson.loads(raw))


class SeenSet:
    """The dedupe set: 63-bit id hashes grouped by the UTC day of their event.

    Serialized as ``{day number: base64 of 8-byte hashes}`` (~11 bytes an id); a
    day's text is cached until the day gains an id, so writing a village whose
    horizon holds thousands of ids costs little. A day is forgotten once all of it
    is older than the horizon behind stream time: an id is never dropped before
    its own time is (later is harmless: events older than the horizon are refused
    before the set is consulted).
    """

    __slots__ = ("by_id", "by_day", "_packed")

    def __init__(self) -> None:
        self.by_id: dict[int, int] = {}
        self.by_day: dict[int, list[int]] = {}
        self._packed: dict[int, tuple[int, str]] = {}

    def __contains__(self, h: object) -> bool:
        return h in self.by_id

    def __len__(self) -> int:
        return len(self.by_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeenSet) and other.by_id == self.by_id

    def __repr__(self) -> str:
        return f"SeenSet({len(self.by_id)} ids, {len(self.by_day)} days)"

    def add(self, h: int, at: int) -> None:
        if h in self.by_id:
            return
        day = at // DAY_US
        self.by_id[h] = day
        self.by_day.setdefault(day, []).append(h)

    def prune(self, limit: int) -> None:
        """Forget the days that end before ``limit`` (µs)."""
        for day in [d for d in self.by_day if (d + 1) * DAY_US - 1 < limit]:
            for h in self.by_day.pop(day):
                self.by_id.pop(h, None)
            self._packed.pop(day, None)

    def pack(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for day, hashes in self.by_day.items():
            cached = self._packed.get(day)
            if cached is None or cached[0] != len(hashes):
                text = base64.b64encode(b"".join(h.to_bytes(8, "big") for h in hashes)).decode()
                cached = self._packed[day] = (len(hashes), text)
            out[str(day)] = cached[1]
        return out

    @classmethod
    def unpack(cls, packed: Any) -> SeenSet:
        seen = cls()
        for day_s, blob in (packed or {}).items():
            day = int(day_s)
            raw = base64.b64decode(blob)
            hashes = [int.from_bytes(raw[i : i + 8], "big") for i in range(0, len(raw), 8)]
            seen.by_day[day] = hashes
            for h in hashes:
                seen.by_id[h] = day
            seen._packed[day] = (len(hashes), blob)
        return seen


# -- pure update logic --------------------------------------------------------------------


def pickup_id_for(village_id: str, n: int) -> str:
    return f"P-{village_id}-{n}"


def crossed(state: VillageState, now: int, limits: Limits) -> list[str]:
    """Every threshold the village is at or over at stream time ``now``."""
    outstanding = state.outstanding
    reasons: list[str] = []
    if sum(outstanding.values()) >= limits.outstanding_grams:
        reasons.append("outstanding_grams")
    for material, limit in sorted(limits.material_grams.items()):
        if outstanding.get(material, 0) >= limit:
            reasons.append(f"material_grams:{material}")
    if state.waste_since is not None and now - state.waste_since >= limits.max_age_us:
        reasons.append("max_age_hours")
    return reasons


def evaluate(state: VillageState, now: int, trigger_at: int, limits: Limits) -> list[Emission]:
    """Run the pickup state machine at stream time ``now``.

    An open pickup past its SLA goes overdue (once); with no pickup open, a
    crossed threshold opens the next one. ``trigger_at`` is the ``occurred_at``
    of the triggering event.
    """
    out: list[Emission] = []
    op = state.open_pickup
    if op is not None:
        if not op.overdue and now > op.requested_at + limits.sla_us:
            op.overdue = True
            state.pickups_overdue += 1
            _month(state, op.requested_at + limits.sla_us, limits.tz).pickups_overdue += 1
            out.append(
                Emission(
                    "pickup_overdue",
                    state.village_id,
                    state.hub_id,
                    op.pickup_id,
                    trigger_at,
                    state.outstanding,
                    list(op.reasons),
                )
            )
        return out
    reasons = crossed(state, now, limits)
    if reasons:
        state.pickups_requested += 1
        kind = reason_kind(reasons[0])
        state.pickup_reasons[kind] = state.pickup_reasons.get(kind, 0) + 1
        _month(state, trigger_at, limits.tz).pickups_requested += 1
        pid = pickup_id_for(state.village_id, state.pickups_requested)
        state.open_pickup = OpenPickup(pid, trigger_at, reasons)
        out.append(
            Emission(
                "pickup_requested",
                state.village_id,
                state.hub_id,
                pid,
                trigger_at,
                state.outstanding,
                reasons,
            )
        )
    return out


def _day_key(at: int, tz: ZoneInfo) -> str:
    return from_us(at).astimezone(tz).date().isoformat()


def _month(state: VillageState, at: int, tz: ZoneInfo | None) -> MonthBucket:
    key = month_key(at, tz or UTC)  # type: ignore[arg-type]
    bucket = state.months.get(key)
    if bucket is None:
        bucket = state.months[key] = MonthBucket()
    return bucket


def _bucket(state: VillageState, at: int, tz: ZoneInfo) -> list[dict[str, int]]:
    key = _day_key(at, tz)
    bucket = state.days.get(key)
    if bucket is None:
        bucket = state.days[key] = [{}, {}]
    return bucket


def prune(state: VillageState, now: int, tz: ZoneInfo, horizon_us: int) -> None:
    """Forget dedupe ids and day buckets that fell behind stream time."""
    limit = now - horizon_us
    state.seen.prune(limit)
    if len(state.days) > DAY_BUCKETS_KEPT:
        oldest: date = from_us(now).astimezone(tz).date() - timedelta(days=DAY_BUCKETS_KEPT)
        cut = oldest.isoformat()
        for key in [k for k in state.days if k < cut]:
            del state.days[key]
    if len(state.months) > MONTH_BUCKETS_KEPT:
        local = from_us(now).astimezone(tz)
        n = local.year * 12 + local.month - 1 - (MONTH_BUCKETS_KEPT - 1)
        first = f"{n // 12:04d}-{n % 12 + 1:02d}"
        for key in [k for k in state.months if k < first]:
            del state.months[key]


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
        if not _known_pickup(state, event.pickup_id):
            raise Rejected(
                "unknown_pickup",
                f"pickup {event.pickup_id!r} was never requested for village {state.village_id}",
                "pickup_id",
            )


def _known_pickup(state: VillageState, pickup_id: str) -> bool:
    prefix = f"P-{state.village_id}-"
    if not pickup_id.startswith(prefix):
        return False
    tail = pickup_id[len(prefix) :]
    return tail.isdigit() and 1 <= int(tail) <= state.pickups_requested


def apply(
    state: VillageState,
    event: Any,
    at: int,
    tz: ZoneInfo,
    container_types: dict[str, tuple[str, int]],
) -> None:
    """Apply one checked hub event's effects (tallies, containers, pickup closing).

    Does not run the pickup trigger: the caller calls :func:`evaluate` after it.
    """
    before = state.outstanding_total
    gen = state.generated
    rec = state.recovered
    if isinstance(event, Shipment):
        if event.direction is Direction.DOWN:
            bucket = _bucket(state, at, tz)
            month = _month(state, at, tz)
            used = state.used_down
            for item in event.packaging:
                m = item.material.value
                _add(gen, m, item.grams)
                _add(bucket[0], m, item.grams)
                _add(month.generated, m, item.grams)
                _add(used, m, item.grams)
            for ref in event.containers:
                ct = ref.container_type.value
                pool = state.containers.get(ct)
                if pool is None:
                    pool = state.containers[ct] = ContainerPool()
                pool.issue(at, 1)
                month.container(ct)[0] += 1
        else:
            for item in event.packaging:
                _add(state.used_up, item.material.value, item.grams)
    elif isinstance(event, PackagingReturn):
        ct = event.container_type.value
        pool = state.containers[ct]
        n = event.count
        pool.take(n)
        month = _month(state, at, tz)
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
            _add(gen, material, n * unit)
            _add(_bucket(state, at, tz)[0], material, n * unit)
            _add(month.generated, material, n * unit)
    elif isinstance(event, RecyclingCollected):
        bucket = _bucket(state, at, tz)
        month = _month(state, at, tz)
        for material, grams in event.collected_grams.items():
            _add(rec, material.value, grams)
            _add(bucket[1], material.value, grams)
            _add(month.recovered, material.value, grams)
        op = state.open_pickup
        if op is not None and event.pickup_id == op.pickup_id:
            state.open_pickup = None
            state.pickups_collected += 1
            month.pickups_completed += 1
    elif isinstance(event, WasteAdjustment):
        bucket = _bucket(state, at, tz)
        month = _month(state, at, tz)
        for material, grams in event.generated_grams.items():
            _add(gen, material.value, grams)
            _add(bucket[0], material.value, grams)
            _add(month.generated, material.value, grams)
        for material, grams in event.recovered_grams.items():
            _add(rec, material.value, grams)
            _add(bucket[1], material.value, grams)
            _add(month.recovered, material.value, grams)
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
