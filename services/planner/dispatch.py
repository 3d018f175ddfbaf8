"""Tomorrow's dispatch: the first day of a rolling-horizon plan cut into one run sheet per hub.

The plan covers the dispatch date (day 0, which is what gets published and then stays
fixed) and the days after it as look-ahead. A hub's run sheet is its day-0 milk runs —
trunk legs are the county's trucks, not the hub's vans — put on vans, in the plan's stop
order, with planned times and, per stop, what to hand over and what to bring back.

The plan carries loads in litres per stop (``stop_loads``); the sheet gives parcels. A
village's day-0 delivery of a class is packed in one or more options, each with its own
litres per parcel, and may be split over trips, so a stop's parcels are its litres times
the village's parcels per litre of that class (from the plan's packaging rows), and the
reusable boxes to drop are the share of those parcels packed in each container type.
Farm shipments (up) convert with the demand's own parcels per litre.

Every hub of the network gets a sheet (the job's options list them): a hub the plan leaves
out, the state having shown it no activity, gets one with no trips, so that it can tell
"nothing to do" from "no plan". A hub whose own data admit no plan (the planner's
``leave_out_infeasible``: the other hubs are planned) gets one with no trips, plan status
``infeasible``, ``no_plan`` saying why, and a warning. A sheet warns when its stops drop
more reusable boxes of a type than the hub holds
(`services.reports.run_sheet.box_shortfalls`).
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, BeforeValidator, Field


def _calendar_date(value: Any) -> Any:
    """A dispatch date as written, YYYY-MM-DD: pydantic's own date parsing took the number
    20261208 as a timestamp ("Datetimes provided to dates should have zero time") and
    "2026-12-08T00:00:00" as the date."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise ValueError(f"must be a date YYYY-MM-DD, not {value!r}")
    return value


#: a dispatch date in requests (`POST /v1/dispatch`, the gateway's `?date=`)
CalendarDate = Annotated[date, BeforeValidator(_calendar_date)]

#: the dispatch message's format version
DISPATCH_VERSION = 1
#: what the dispatch topic's records are signed for (`services.auth.signing`)
DISPATCH_PURPOSE = "dispatch"


class Stop(BaseModel):
    seq: int = Field(description="1 for the first village of the trip.")
    village_id: str
    village_name: str = ""
    arrive_at: str = Field(description="Planned arrival, RFC 3339 local time.")
    depart_at: str = Field(description="Planned departure, RFC 3339 local time.")
    deliver_parcels: dict[str, float] = Field(
        description="Parcels to deliver per temperature class.")
    collect_parcels: dict[str, float] = Field(
        description="Farm shipments to take back to the hub, per temperature class.")
    boxes_to_drop: dict[str, float] = Field(
        description="Reusable containers (per type) the delivered parcels travel in.")
    empties_to_collect: dict[str, float] = Field(
        description="Empty reusable containers to bring back, per type.")
    recyclables_grams: float = Field(description="Packaging waste to bring back (grams).")


class Trip(BaseModel):
    trip_no: int = Field(description="1.. within the hub's day, by van and start time.")
    van: str = Field(description="Vehicle type and number, e.g. multi_temp_van 2.")
    vehicle_type: str
    van_no: int
    purpose: str
    depart_at: str = Field(description="Leaves the hub, RFC 3339 local time.")
    return_at: str = Field(description="Back at the hub, RFC 3339 local time.")
    km: float
    minutes: float
    stops: list[Stop]


class Dispatch(BaseModel):
    """One hub's run sheet for one date (the ``dispatch`` topic's value, key ``hub_id``)."""

    version: int = DISPATCH_VERSION
    hub_id: str
    hub_name: str = ""
    date: str = Field(description="The dispatch date, YYYY-MM-DD (local).")
    timezone: str
    job_id: str = Field(description="The plan job it was cut from.")
    planned_at: str | None = Field(None, description="When the plan was stored (RFC 3339).")
    horizon_days: int = Field(description="Days the plan looked ahead, the date included.")
    plan_status: str | None = None
    gap: float | None = None
    containers_at_hub: dict[str, float] = Field(
        default_factory=dict,
        description="Reusable containers at the hub when the plan was made (owned less "
        "those issued and not returned, lost or damaged).")
    no_plan: str | None = Field(
        default=None, description="Why this hub has no plan on this date (its own fleet, pools or "
        "demand admit none; the other hubs are planned): its trips are not planned, as "
        "opposed to an empty `trips` with this null, which means nothing to do.")
    warnings: list[str] = Field(
        default_factory=list,
        description="What the hub should check before loading, e.g. stops that drop more "
        "reusable boxes of a type than the hub holds.")
    trips: list[Trip] = Field(description="Empty: nothing to do on this date.")


def _round(x: float) -> float:
    return round(float(x), 2)


def _clock(day: date, minutes: float, tz: ZoneInfo, shift_start: time) -> str:
    start = datetime.combine(day, shift_start, tzinfo=tz)
    return (start + timedelta(minutes=minutes)).isoformat(timespec="minutes")


def assign_vans(trips: list[dict[str, Any]], vans: dict[str, int],
                shift_minutes: dict[str, float], max_trips: dict[str, int]
                ) -> list[tuple[dict[str, Any], int, float]]:
    """(trip, van number, start minute after the shift start) per trip: first fit by
    decreasing duration into each type's vans, each running its trips back to back
    within its shift and its trips-per-day cap; a trip that fits nowhere goes to the van
    of its type that is free first (the plan counted trips per kind, not per van)."""
    placed: list[tuple[dict[str, Any], int, float]] = []
    by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for t in trips:
        by_type[t["vehicle_type"]].append(t)
    for vt, group in sorted(by_type.items()):
        used = [0.0] * max(1, vans.get(vt, 1))
        runs = [0] * len(used)
        for t in sorted(group, key=lambda t: (-t["minutes"], t["stops"])):
            fits = [k for k in range(len(used))
                    if used[k] + t["minutes"] <= shift_minutes.get(vt, math.inf) + 1e-6
                    and runs[k] < max_trips.get(vt, 10**6)]
            k = fits[0] if fits else min(range(len(used)), key=lambda j: used[j])
            placed.append((t, k + 1, used[k]))
            used[k] += t["minutes"]
            runs[k] += 1
    placed.sort(key=lambda p: (p[0]["vehicle_type"], p[1], p[2]))
    return placed


#: a stop load at most this (a thousandth of a litre, gram or box) is the solver's noise,
#: not work for a driver
WORK_EPS = 1e-3


def _with_work_only(trip: dict[str, Any], vt: Any, oracle: Any) -> dict[str, Any] | None:
    """`trip` without its stops that have nothing to deliver, drop or collect (the plan's
    tours may pass villages whose loads rode on another trip of the same tour), its km and
    minutes those of the stops kept, in the plan's order; None when no stop has any. A run
    sheet listed such a stop with nothing on it, and the driver went there for nothing."""
    from optimizer.trips import trip_minutes

    loads = trip.get("stop_loads") or {}
    kept = [v for v in trip["stops"]
            if any(x > WORK_EPS for x in (loads.get(v) or {}).values())]
    if not kept:
        return None
    if len(kept) == len(trip["stops"]):
        return trip
    path = [trip["hub_id"], *kept, trip["hub_id"]]
    km = sum(oracle.km(a, b) for a, b in zip(path, path[1:], strict=False))
    return {**trip, "stops": kept, "km": km, "minutes": trip_minutes(vt, km, len(kept))}


def run_sheets(scenario: dict[str, Any], result: dict[str, Any], dispatch_date: date, *,
               job_id: str, timezone: str, shift_start: time = time(8, 0),
               planned_at: str | None = None, hubs: Mapping[str, str] | None = None,
               containers: Mapping[str, Mapping[str, float]] | None = None
               ) -> list[Dispatch]:
    """One run sheet per hub of the scenario and of ``hubs`` (id -> name: the network's),
    by hub id, from the plan's day 0. A hub without a milk run that day, or not in the
    scenario at all (the live state showed it no activity), gets a sheet with no trips:
    nothing to do is an answer too. ``containers``: the containers at each hub (the job's
    inputs), for the hubs not in the scenario."""
    import optimizer
    from optimizer import DistanceOracle
    from services.reports.run_sheet import box_warnings

    sc = optimizer.load_scenario(scenario)
    tz = ZoneInfo(timezone)
    vts = {v.vehicle_type: v for v in sc.vehicle_types}
    classes = sc.class_by_id()
    reusable = {r.container_type: r for r in sc.packaging.reusable}
    options: dict[str, Any] = {o.option_id: o for o in sc.packaging.single_use}
    options.update(reusable)
    names = {v.village_id: v.name for v in sc.villages}
    oracle = DistanceOracle(sc)

    # village x class: parcels, litres and parcels per container type delivered on day 0
    parcels: dict[tuple[str, str], float] = defaultdict(float)
    litres: dict[tuple[str, str], float] = defaultdict(float)
    boxed: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for row in result.get("packaging") or []:
        if row["day"] != 0 or row["direction"] != "down":
            continue
        key = (row["village_id"], row["class_id"])
        parcels[key] += row["parcels"]
        litres[key] += row["parcels"] * sc.litres_per_parcel(options[row["option"]],
                                                             row["class_id"])
        if row["option"] in reusable:
            boxed[key][row["option"]] += row["parcels"]
    up_parcels: dict[tuple[str, str], float] = defaultdict(float)
    up_litres: dict[tuple[str, str], float] = defaultdict(float)
    for g in sorted(sc.demand, key=lambda g: g.day != 0):  # day 0's groups first
        key = (g.village_id, g.class_id)
        if g.direction == "up" and (g.day == 0 or key not in up_litres):
            up_parcels[key] += g.parcels
            up_litres[key] += sc.down_volume_litres(g)

    def stop_of(seq: int, village: str, loads: dict[str, float], arrive: str,
                depart: str) -> Stop:
        deliver: dict[str, float] = {}
        collect: dict[str, float] = {}
        boxes: dict[str, float] = defaultdict(float)
        empties: dict[str, float] = {}
        for name, x in loads.items():
            kind, _, what = name.partition(".")
            if kind == "down_litres":
                key = (village, what)
                per_litre = parcels[key] / litres[key] if litres[key] else \
                    1.0 / classes[what].litres_per_parcel
                deliver[what] = _round(x * per_litre)
                for ct, n in boxed[key].items():
                    boxes[ct] += x * per_litre * n / parcels[key]
            elif kind == "up_litres":
                key = (village, what)
                per_litre = up_parcels[key] / up_litres[key] if up_litres[key] else \
                    1.0 / classes[what].litres_per_parcel
                collect[what] = _round(x * per_litre)
            elif kind == "empties":
                empties[what] = _round(x)
        return Stop(seq=seq, village_id=village, village_name=names.get(village, ""),
                    arrive_at=arrive, depart_at=depart, deliver_parcels=deliver,
                    collect_parcels=collect,
                    boxes_to_drop={ct: _round(n) for ct, n in sorted(boxes.items())},
                    empties_to_collect=empties,
                    recyclables_grams=_round(loads.get("recyclables_grams", 0.0)))

    day0 = [kept for t in result.get("trips") or []
            if t["day"] == 0 and t["kind"] == "milk_run"
            and (kept := _with_work_only(t, vts[t["vehicle_type"]], oracle)) is not None]
    pools: dict[str, dict[str, float]] = defaultdict(dict)
    for p in sc.container_pools:
        pools[p.hub_id][p.container_type] = p.count
    in_plan = {hub.hub_id: hub.name for hub in sc.hubs}
    for h, held in (containers or {}).items():
        if h not in in_plan:
            pools[h] = {ct: float(n) for ct, n in held.items()}
    hub_names = {**(hubs or {}), **in_plan}
    left_out: dict[str, str] = (result.get("stats") or {}).get("left_out") or {}
    sheets = []
    for h in sorted(hub_names):
        mine = [t for t in day0 if t["hub_id"] == h]  # none for a hub left out
        placed = [] if not mine else assign_vans(
            mine, {vt: sc.hub_vehicle_count(v, h) for vt, v in vts.items()},
            {vt: v.shift_minutes for vt, v in vts.items()},
            {vt: v.max_trips_per_day for vt, v in vts.items()})
        trips = []
        for n, (t, van_no, start) in enumerate(placed, 1):
            vt = vts[t["vehicle_type"]]
            clock = start
            stops = []
            here = h
            for seq, village in enumerate(t["stops"], 1):
                clock += 60.0 * oracle.km(here, village) / vt.speed_kmh
                arrive = clock
                clock += vt.service_minutes_per_stop
                stops.append(stop_of(seq, village, t["stop_loads"].get(village, {}),
                                     _clock(dispatch_date, arrive, tz, shift_start),
                                     _clock(dispatch_date, clock, tz, shift_start)))
                here = village
            trips.append(Trip(
                trip_no=n, van=f"{t['vehicle_type']} {van_no}", vehicle_type=t["vehicle_type"],
                van_no=van_no, purpose=t["purpose"],
                depart_at=_clock(dispatch_date, start, tz, shift_start),
                return_at=_clock(dispatch_date, start + t["minutes"], tz, shift_start),
                km=_round(t["km"]), minutes=_round(t["minutes"]), stops=stops))
        no_plan = left_out.get(h)
        sheet = Dispatch(
            hub_id=h, hub_name=hub_names[h], date=dispatch_date.isoformat(), timezone=timezone,
            job_id=job_id, planned_at=planned_at, horizon_days=sc.horizon_days,
            plan_status="infeasible" if no_plan else result.get("status"),
            gap=None if no_plan else result.get("gap"),
            containers_at_hub=dict(sorted(pools.get(h, {}).items())), trips=trips,
            no_plan=no_plan)
        sheet.warnings = box_warnings(sheet.model_dump(mode="json"))
        sheets.append(sheet)
    return sheets
