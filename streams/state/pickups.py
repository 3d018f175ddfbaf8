"""The pickup state machine: thresholds, requests, overdue notices.

At most one pickup is open per village. Its id (``P-{village_id}-{n}``) and the
notices about it are derived from the village's state alone, so a notice sent again
after a crash is byte-for-byte the one sent before.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, tzinfo
from typing import TYPE_CHECKING, Any

from streams.state.tallies import month_bucket
from streams.state.times import DAY_US, HOUR_US

if TYPE_CHECKING:
    from streams.state.undo import Journal
    from streams.state.village import VillageState

#: The kinds of pickup threshold (the contract's ``reason`` label values); a pickup
#: is counted under the first threshold it crossed, in this order.
PICKUP_REASON_KINDS = ("outstanding_grams", "material_grams", "max_age_hours")


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
    #: the network's time zone (month buckets of pickups)
    tz: tzinfo = UTC
    #: how long a cancel holds back the next request unless it says (pickup_snooze_hours)
    snooze_us: int = 24 * HOUR_US

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
            snooze_us=int(round(network.pickup_snooze_hours * HOUR_US)),
        )


@dataclass(slots=True)
class OpenPickup:
    pickup_id: str
    requested_at: int
    reasons: list[str]
    overdue: bool = False


def pickup_id_for(village_id: str, n: int) -> str:
    return f"P-{village_id}-{n}"


def pickup_village_id(pickup_id: str) -> str | None:
    """The village ``pickup_id`` names when written as the worker numbers a village's
    pickups, ``P-{village}-{n}`` with n in ASCII digits without a leading zero; None
    otherwise."""
    body = pickup_id.removeprefix("P-")
    village_id, _, n = body.rpartition("-")
    if body == pickup_id or not village_id or not (n.isascii() and n.isdigit()) \
            or n.startswith("0"):
        return None
    return village_id


def is_pickup_of(pickup_id: str, village_id: str) -> bool:
    """Whether ``pickup_id`` is one of ``village_id``'s, as the worker numbers them."""
    return pickup_village_id(pickup_id) == village_id


def known_pickup(state: VillageState, pickup_id: str) -> bool:
    """Whether ``pickup_id`` is one of the pickups requested for this village so far."""
    # the number exactly as the worker writes it (`isdigit` alone took "²" and then failed
    # in int(), and "٣" or "01" named pickup 3 or 1 by another id)
    if not is_pickup_of(pickup_id, state.village_id):
        return False
    tail = pickup_id.removeprefix(f"P-{state.village_id}-")
    return 1 <= int(tail) <= state.pickup_base + state.pickups_requested


def reason_kind(reason: str) -> str:
    """``material_grams:eps_foam`` -> ``material_grams`` (the contract's reason value)."""
    return reason.split(":", 1)[0]


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


def snooze_until(state: VillageState, limits: Limits) -> int | None:
    """When the hold of the last cancel ends (stream time); None if nothing is held."""
    if state.snooze_from is None:
        return None
    if state.snooze_hours is None:
        return state.snooze_from + limits.snooze_us
    return state.snooze_from + int(round(state.snooze_hours * HOUR_US))


def snoozed(state: VillageState, now: int, limits: Limits) -> bool:
    """Whether a cancel still holds back a new request at stream time ``now``: until its
    snooze ends, unless waste generated after it reaches a weight threshold by itself."""
    until = snooze_until(state, limits)
    if until is None or now >= until:
        return False
    new = state.snooze_new
    if sum(new.values()) >= limits.outstanding_grams:
        return False
    return not any(new.get(m, 0) >= lim for m, lim in limits.material_grams.items())


def next_due(state: VillageState, limits: Limits) -> int | None:
    """The earliest stream time at which :func:`evaluate` could act without a new
    event for this village (pickup SLA expiry, the end of a snooze, the age threshold)."""
    op = state.open_pickup
    if op is not None:
        return None if op.overdue else op.requested_at + limits.sla_us + 1
    until = snooze_until(state, limits)
    if until is not None:
        return until
    if state.waste_since is not None:
        return state.waste_since + limits.max_age_us
    return None


def evaluate(
    state: VillageState, now: int, trigger_at: int, limits: Limits, undo: Journal | None = None
) -> list[Emission]:
    """Run the pickup state machine at stream time ``now``.

    An open pickup past its SLA goes overdue (once); with no pickup open and no cancel
    holding requests back (:func:`snoozed`), a crossed threshold opens the next one.
    ``trigger_at`` is when the request is raised: the stream time of the event or the
    timer that triggered it. With ``undo``, a month bucket is kept there before it changes
    (the rest of what this changes, the journal keeps when it opens).
    """
    out: list[Emission] = []
    op = state.open_pickup
    if op is not None:
        if not op.overdue and now > op.requested_at + limits.sla_us:
            op.overdue = True
            state.pickups_overdue += 1
            deadline = op.requested_at + limits.sla_us
            month_bucket(state.months, deadline, limits.tz, undo).pickups_overdue += 1
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
    if state.snooze_from is not None:
        if snoozed(state, now, limits):
            return out
        state.snooze_from = state.snooze_hours = None
        state.snooze_new = {}
    reasons = crossed(state, now, limits)
    if reasons:
        state.pickups_requested += 1
        kind = reason_kind(reasons[0])
        state.pickup_reasons[kind] = state.pickup_reasons.get(kind, 0) + 1
        if kind == "material_grams":
            material = reasons[0].split(":", 1)[1]
            state.pickup_materials[material] = state.pickup_materials.get(material, 0) + 1
        month_bucket(state.months, trigger_at, limits.tz, undo).pickups_requested += 1
        pid = pickup_id_for(state.village_id, state.pickup_base + state.pickups_requested)
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
