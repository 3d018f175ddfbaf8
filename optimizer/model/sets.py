"""The model's index sets (docs/optimizer.md, "Sets" and "Candidate trips"): which demand is
served on a fixed day and which may move, the packaging options of each class, the trip
types, and what each trip type may load where.

Plain data computed from the scenario and its candidate routes before any Pyomo variable
exists, so that every family builder indexes its variables and rows by the same sets.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from optimizer.routes import DistanceOracle, Route
from optimizer.scenario import (
    OutstandingWaste,
    ReusableType,
    Scenario,
    SingleUseOption,
    TemperatureClass,
    VehicleType,
)
from optimizer.trips import (
    ALL,
    WASTE,
    Mode,
    TripType,
    compatible_compartments,
    service_days,
    trip_minutes,
    trips_per_shift,
    trunk_legs_per_shift,
)

VillageDayClass = tuple[str, int, str]
#: demand the model cannot serve at all, found while building it: (village or hub, day,
#: class, what: down, up, trunk, trunk_up, pack); `optimizer.diagnose` explains each
Unservable = tuple[str, int, str, str]
ServeKey = tuple[int, int]  # (demand group, day)
LoadDownKey = tuple[int, str, str, str]  # (trip type, village, class, compartment)
LoadUpKey = tuple[int, str, str]  # (trip type, village, class)
PickKey = tuple[int, str, str]  # (trip type, village, container type)
CollectKey = tuple[int, str]  # (trip type, village)


@dataclass(frozen=True)
class MilkRunLoads:
    """What each milk-run trip type may load at each stop, with the groupings the rows sum
    over: by (village, day, class) for the demand rows, by (trip type, compartment) for the
    capacity rows."""

    down_keys: list[LoadDownKey]
    up_keys: list[LoadUpKey]
    pick_keys: list[PickKey]
    collect_keys: list[CollectKey]
    down_by_idc: dict[VillageDayClass, list[LoadDownKey]]
    down_passive_by_idc: dict[VillageDayClass, list[LoadDownKey]]
    down_by_tk: dict[tuple[int, str], list[LoadDownKey]]
    up_by_idc: dict[VillageDayClass, list[LoadUpKey]]
    up_by_tk: dict[tuple[int, str], list[LoadUpKey]]
    up_by_t: dict[int, list[LoadUpKey]]
    pick_by_t: dict[int, list[PickKey]]
    pick_by_ict_d: dict[tuple[str, str, int], list[PickKey]]
    collect_by_t: dict[int, list[CollectKey]]
    collect_by_i: dict[str, list[CollectKey]]
    collect_by_hd: dict[tuple[str, int], list[CollectKey]]


@dataclass(frozen=True)
class ModelSets:
    """Everything the family builders index by, for one mode and one set of hubs."""

    scenario: Scenario
    mode: Mode
    hubs: list[str]
    village_hub: dict[str, str]
    classes: dict[str, TemperatureClass]
    vehicle_types: dict[str, VehicleType]
    # demand: groups served on one day, and the days each flexible group may take
    fixed_service: dict[int, int]
    flex_groups: dict[int, list[int]]
    serve_keys: list[ServeKey]
    down_fixed: dict[VillageDayClass, float]  # parcels
    up_fixed: dict[VillageDayClass, float]  # litres
    up_parcels_fixed: dict[VillageDayClass, float]
    down_flex: dict[VillageDayClass, list[tuple[float, ServeKey]]]  # (parcels, serve key)
    up_flex: dict[VillageDayClass, list[tuple[float, ServeKey]]]  # (litres, serve key)
    up_parcels_flex: dict[VillageDayClass, list[tuple[float, ServeKey]]]  # (parcels, key)
    down_keys: list[VillageDayClass]
    up_keys: list[VillageDayClass]
    # packaging
    reusable: dict[str, ReusableType]
    single_use: dict[str, SingleUseOption]
    passive_options: set[str]
    pack_keys: list[tuple[str, int, str, str]]
    options_at: dict[VillageDayClass, list[str]]
    # farm shipments packed by the plan: the (village, day, class) with an up option, and
    # the options of each ((village, day, class, option) keys)
    packed_up_keys: list[VillageDayClass]
    pack_up_keys: list[tuple[str, int, str, str]]
    up_options_at: dict[VillageDayClass, list[str]]
    litres: dict[tuple[str, str], float]  # (class, option) -> litres of a delivered parcel
    container_types: list[str]
    pool_start: dict[tuple[str, str], float]  # (hub, container type) -> stated start pool
    # where recyclables and empties wait, and what moves on which day
    waste: dict[str, OutstandingWaste]
    empties_at: dict[str, list[str]]
    #: (village, container type, day) -> containers out at the start that wait empty from
    #: that day (scenario.containers_out)
    empties_arriving: dict[tuple[str, str, int], float]
    down_classes: dict[tuple[str, int], list[str]]
    up_classes: dict[tuple[str, int], list[str]]
    # trip types and their loads
    trips: list[TripType]
    trip_km: list[float]
    trip_minutes: list[float]  # one trip's driving and stops
    trips_per_vehicle: list[int]  # m_t: trips of this type one vehicle runs a day
    trunk_km: dict[str, float]
    has_trunk: bool
    loads: MilkRunLoads

    @property
    def days(self) -> int:
        return self.scenario.horizon_days


def model_sets(
    s: Scenario, routes: dict[str, list[Route]], mode: Mode, hubs: list[str] | None
) -> ModelSets:
    """The sets of the model of `s` in `mode` for `hubs` (default all)."""
    cls = s.class_by_id()
    vts = {v.vehicle_type: v for v in s.vehicle_types}
    hub_ids = hubs if hubs is not None else [h.hub_id for h in s.hubs]
    hub_set = set(hub_ids)
    village_hub = {v.village_id: v.hub_id for v in s.villages if v.hub_id in hub_set}

    flex_groups: dict[int, list[int]] = {}
    fixed_service: dict[int, int] = {}
    for gi, g in enumerate(s.demand):
        if g.village_id not in village_hub or g.parcels <= 0 and not g.volume_litres:
            continue
        days = service_days(s, gi, mode)
        if len(days) == 1:
            fixed_service[gi] = days[0]
        else:
            flex_groups[gi] = days
    serve_keys = [(gi, d) for gi, days in flex_groups.items() for d in days]
    down_flex: dict[VillageDayClass, list[tuple[float, ServeKey]]] = defaultdict(list)
    down_fixed: dict[VillageDayClass, float] = defaultdict(float)
    up_flex: dict[VillageDayClass, list[tuple[float, ServeKey]]] = defaultdict(list)
    up_fixed: dict[VillageDayClass, float] = defaultdict(float)
    up_parcels_flex: dict[VillageDayClass, list[tuple[float, ServeKey]]] = defaultdict(list)
    up_parcels_fixed: dict[VillageDayClass, float] = defaultdict(float)
    for gi, d in fixed_service.items():
        g = s.demand[gi]
        key = (g.village_id, d, g.class_id)
        if g.direction == "down":
            down_fixed[key] += g.parcels
        else:
            up_fixed[key] += s.down_volume_litres(g)
            up_parcels_fixed[key] += g.parcels
    for gi, d in serve_keys:
        g = s.demand[gi]
        key = (g.village_id, d, g.class_id)
        if g.direction == "down":
            down_flex[key].append((g.parcels, (gi, d)))
        else:
            up_flex[key].append((s.down_volume_litres(g), (gi, d)))
            up_parcels_flex[key].append((g.parcels, (gi, d)))
    down_keys = sorted(set(down_flex) | {k for k, v in down_fixed.items() if v > 0})
    up_keys = sorted(set(up_flex) | {k for k, v in up_fixed.items() if v > 0})

    reusable = [] if mode != "joint" else list(s.packaging.reusable)
    ru = {r.container_type: r for r in reusable}
    options_for: dict[str, list[str]] = {}
    for c in cls:
        options_for[c] = [o.option_id for o in s.packaging.single_use if c in o.class_ids] + [
            r.container_type for r in reusable if c in r.class_ids
        ]
    passive_opt = {o.option_id for o in s.packaging.single_use if o.passive} | {
        r.container_type for r in reusable if r.passive
    }
    pack_keys = [(i, d, c, o) for (i, d, c) in down_keys for o in options_for[c]]
    options_at: dict[VillageDayClass, list[str]] = defaultdict(list)
    for i, d, c, o in pack_keys:
        options_at[(i, d, c)].append(o)

    down_by_id: dict[tuple[str, int], list[str]] = defaultdict(list)
    for i, d, c in down_keys:
        down_by_id[(i, d)].append(c)
    up_by_id: dict[tuple[str, int], list[str]] = defaultdict(list)
    for i, d, c in up_keys:
        up_by_id[(i, d)].append(c)
    waste = {w.village_id: w for w in s.outstanding_waste if w.village_id in village_hub
             and w.grams > 0}
    empties_at: dict[str, list[str]] = defaultdict(list)
    for ct, r in ru.items():
        for i in sorted({i for (i, _d, c) in down_keys if c in r.class_ids}):
            empties_at[i].append(ct)
    empties_arriving: dict[tuple[str, str, int], float] = defaultdict(float)
    for co in s.containers_out:
        if co.village_id in village_hub and co.container_type in ru and co.count > 0:
            empties_arriving[(co.village_id, co.container_type, co.day)] += co.count
            if co.container_type not in empties_at[co.village_id]:
                empties_at[co.village_id].append(co.container_type)
    # farm shipments go up in single-use packaging, or in an empty waiting at the village
    up_options: dict[str, list[str]] = {
        c: [o.option_id for o in s.packaging.single_use if c in o.up_class_ids] for c in cls}
    packed_up_keys = [k for k in up_keys if up_options[k[2]]]
    pack_up_keys = [(i, d, c, o) for (i, d, c) in packed_up_keys for o in up_options[c]] + [
        (i, d, c, u) for (i, d, c) in packed_up_keys for u in empties_at.get(i, ())
        if c in ru[u].up_class_ids]
    up_options_at: dict[VillageDayClass, list[str]] = defaultdict(list)
    for i, d, c, o in pack_up_keys:
        up_options_at[(i, d, c)].append(o)
    litres = {(c, o.option_id): s.litres_per_parcel(o, c)
              for o in s.packaging.single_use for c in o.class_ids}
    litres.update({(c, r.container_type): s.litres_per_parcel(r, c)
                   for r in s.packaging.reusable for c in r.class_ids})
    ctypes = sorted(ru)
    pool0 = {(p.hub_id, p.container_type): p.count for p in s.container_pools}
    trips, trunk_km = _trip_types(s, routes, mode, hub_ids, village_hub, down_by_id, up_by_id,
                                  waste, empties_at)
    trip_km = [t.km if t.route is not None else trunk_km[t.hub_id] for t in trips]
    minutes = [trip_minutes(vts[t.vehicle_type], km, len(t.route.stops) if t.route else 1)
               for t, km in zip(trips, trip_km, strict=True)]
    return ModelSets(
        scenario=s, mode=mode, hubs=hub_ids, village_hub=village_hub, classes=cls,
        vehicle_types=vts, fixed_service=fixed_service, flex_groups=flex_groups,
        serve_keys=serve_keys, down_fixed=down_fixed, up_fixed=up_fixed, down_flex=down_flex,
        up_flex=up_flex, up_parcels_fixed=up_parcels_fixed, up_parcels_flex=up_parcels_flex,
        down_keys=down_keys, up_keys=up_keys, reusable=ru,
        single_use={o.option_id: o for o in s.packaging.single_use},
        passive_options=passive_opt, pack_keys=pack_keys, options_at=options_at,
        packed_up_keys=packed_up_keys, pack_up_keys=pack_up_keys, up_options_at=up_options_at,
        litres=litres,
        container_types=ctypes,
        pool_start={(h, ct): pool0.get((h, ct), 0.0) for h in hub_ids for ct in ctypes},
        waste=waste,
        empties_at=empties_at, empties_arriving=dict(empties_arriving),
        down_classes=down_by_id, up_classes=up_by_id, trips=trips,
        trip_km=trip_km, trip_minutes=minutes,
        trips_per_vehicle=[trips_per_shift(vts[t.vehicle_type], mins)
                           for t, mins in zip(trips, minutes, strict=True)],
        trunk_km=trunk_km, has_trunk=any(vt.base == "county" for vt in s.vehicle_types),
        loads=_milk_run_loads(s, trips, vts, down_by_id, up_by_id, empties_at, waste),
    )


def _trip_types(
    s: Scenario, routes: dict[str, list[Route]], mode: Mode, hub_ids: list[str],
    village_hub: dict[str, str], down_by_id: dict[tuple[str, int], list[str]],
    up_by_id: dict[tuple[str, int], list[str]], waste: dict[str, OutstandingWaste],
    empties_at: dict[str, list[str]],
) -> tuple[list[TripType], dict[str, float]]:
    """Trip types T, and the km of each hub's trunk leg. A milk run is offered on a day when
    one of its villages has something to move then (empties and recyclables wait any day),
    for each vehicle type that can drive it within its `max_route_km`, `max_stops` and
    shift; a trunk leg on a day when one of the hub's villages has. In the uncoordinated
    baseline each trip type has one purpose."""
    D = s.horizon_days
    cls = s.class_by_id()
    oracle = DistanceOracle(s)
    active_days: dict[str, set[int]] = defaultdict(set)
    for i, d in list(down_by_id) + list(up_by_id):
        active_days[i].add(d)
    for i in list(waste) + list(empties_at):
        active_days[i].update(range(D))

    purposes = [ALL] if mode != "uncoordinated" else [*cls.keys(), WASTE]

    def carries(purpose: str, i: str, d: int) -> bool:
        if purpose == ALL:
            return True
        if purpose == WASTE:
            return i in waste
        return purpose in down_by_id.get((i, d), ()) or purpose in up_by_id.get((i, d), ())

    trips: list[TripType] = []
    for h in hub_ids:
        for route in routes.get(h, []):
            for vt in s.vehicle_types:
                if vt.base != "hub" or route.km > vt.max_route_km + 1e-9:
                    continue
                if len(route.stops) > vt.max_stops or s.hub_vehicle_count(vt, h) <= 0:
                    continue
                if trips_per_shift(vt, trip_minutes(vt, route.km, len(route.stops))) == 0:
                    continue
                for d in range(D):
                    if not any(d in active_days[i] for i in route.stops):
                        continue
                    for p in purposes:
                        if any(carries(p, i, d) for i in route.stops):
                            trips.append(TripType(h, route, vt.vehicle_type, d, p))
    county_vts = [vt for vt in s.vehicle_types if vt.base == "county"]
    trunk_km = {h: oracle.trunk_km(h) for h in hub_ids}
    hub_days_active: dict[str, set[int]] = defaultdict(set)
    for i, ds in active_days.items():
        for d in ds:
            if (i, d) in down_by_id or (i, d) in up_by_id or i in waste:
                hub_days_active[village_hub[i]].add(d)
    for h in hub_ids:
        for vt in county_vts:
            if trunk_legs_per_shift(vt, trunk_km[h]) == 0:
                continue
            for d in sorted(hub_days_active[h]):
                for p in purposes:
                    trips.append(TripType(h, None, vt.vehicle_type, d, p))
    return trips, trunk_km


def _milk_run_loads(
    s: Scenario, trips: list[TripType], vts: dict[str, VehicleType],
    down_by_id: dict[tuple[str, int], list[str]], up_by_id: dict[tuple[str, int], list[str]],
    empties_at: dict[str, list[str]], waste: dict[str, OutstandingWaste],
) -> MilkRunLoads:
    """Per milk-run trip type and stop: deliveries by class into each compartment the class
    may use, farm shipments into their own compartment, empties (all-purpose trips) and
    recyclables (all-purpose and waste trips)."""
    ld_keys: list[LoadDownKey] = []
    lu_keys: list[LoadUpKey] = []
    pick_keys: list[PickKey] = []
    col_keys: list[CollectKey] = []
    for t, tt in enumerate(trips):
        if tt.route is None:
            continue
        vt = vts[tt.vehicle_type]
        for i in tt.route.stops:
            for c in down_by_id.get((i, tt.day), ()):
                if tt.purpose not in (ALL, c):
                    continue
                for k, _passive in compatible_compartments(s, vt, c):
                    ld_keys.append((t, i, c, k))
            for c in up_by_id.get((i, tt.day), ()):
                if tt.purpose not in (ALL, c) or c not in vt.compartments_litres:
                    continue
                lu_keys.append((t, i, c))
            if tt.purpose == ALL:
                for ct in empties_at.get(i, ()):
                    pick_keys.append((t, i, ct))
            if i in waste and tt.purpose in (ALL, WASTE):
                col_keys.append((t, i))

    ld_by_idc: dict[VillageDayClass, list[LoadDownKey]] = defaultdict(list)
    ld_passive_by_idc: dict[VillageDayClass, list[LoadDownKey]] = defaultdict(list)
    ld_by_tk: dict[tuple[int, str], list[LoadDownKey]] = defaultdict(list)
    for ld_key in ld_keys:
        t, i, c, k = ld_key
        ld_by_idc[(i, trips[t].day, c)].append(ld_key)
        if k != c:
            ld_passive_by_idc[(i, trips[t].day, c)].append(ld_key)
        ld_by_tk[(t, k)].append(ld_key)
    lu_by_idc: dict[VillageDayClass, list[LoadUpKey]] = defaultdict(list)
    lu_by_tk: dict[tuple[int, str], list[LoadUpKey]] = defaultdict(list)
    lu_by_t: dict[int, list[LoadUpKey]] = defaultdict(list)
    for lu_key in lu_keys:
        t, i, c = lu_key
        lu_by_idc[(i, trips[t].day, c)].append(lu_key)
        lu_by_tk[(t, c)].append(lu_key)
        lu_by_t[t].append(lu_key)
    pick_by_t: dict[int, list[PickKey]] = defaultdict(list)
    pick_by_ict_d: dict[tuple[str, str, int], list[PickKey]] = defaultdict(list)
    for pick_key in pick_keys:
        t, i, ct = pick_key
        pick_by_t[t].append(pick_key)
        pick_by_ict_d[(i, ct, trips[t].day)].append(pick_key)
    col_by_t: dict[int, list[CollectKey]] = defaultdict(list)
    col_by_i: dict[str, list[CollectKey]] = defaultdict(list)
    col_by_hd: dict[tuple[str, int], list[CollectKey]] = defaultdict(list)
    for col_key in col_keys:
        t, i = col_key
        col_by_t[t].append(col_key)
        col_by_i[i].append(col_key)
        col_by_hd[(trips[t].hub_id, trips[t].day)].append(col_key)
    return MilkRunLoads(
        down_keys=ld_keys, up_keys=lu_keys, pick_keys=pick_keys, collect_keys=col_keys,
        down_by_idc=ld_by_idc, down_passive_by_idc=ld_passive_by_idc, down_by_tk=ld_by_tk,
        up_by_idc=lu_by_idc, up_by_tk=lu_by_tk, up_by_t=lu_by_t, pick_by_t=pick_by_t,
        pick_by_ict_d=pick_by_ict_d, collect_by_t=col_by_t, collect_by_i=col_by_i,
        collect_by_hd=col_by_hd,
    )
