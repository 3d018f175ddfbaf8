"""Capacity covers: valid inequalities that round the trip counts the LP relaxation needs.

The relaxation of the joint model lets a trip run a fraction of a time: the overflow of a
cluster's parcels that does not fit on its milk run rides on 0.1 of an extra van, and a hub's
trunk leg runs 1.1 times a day. That rounding is most of the gap between the relaxation and
the optimum, and without the covers the branch and bound spends its time proving it (figures
in docs/optimizer.md). Each cover here says: the trips that can reach a set of villages
in a span of days must together offer room for the litres that have to move there then, and
since trips come whole, after dividing by a capacity δ the count rounds up (Chvátal–Gomory):

    Σ_t ⌈a_t / δ⌉ y_t ≥ ⌈V / δ⌉       for every δ among the trips' capacities a_t.

Every feasible plan satisfies them, so the optimum is unchanged (the brute-force tests check
the model's optima with and without them); the maths is in docs/optimizer.md.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from optimizer.scenario import ReusableType, Scenario, SingleUseOption
from optimizer.trips import ALL, WASTE, Mode, TripType, compatible_compartments, service_days

# what must fit: ("down", class | ALL), ("up", class), ("back", ALL)
Kind = tuple[str, str]
Unit = tuple[str, str]  # ("milk", component root village) or ("trunk", hub)
EPS = 1e-6


def components(trips: Sequence[TripType]) -> dict[str, str]:
    """Villages linked by a common candidate route, as village -> representative.

    No route leaves its component, so only trips of a component can serve its villages: with
    sweep clusters a component is a cluster, with exact enumeration the hub's villages."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for t in trips:
        if t.route is None:
            continue
        first = find(t.route.stops[0])
        for other in t.route.stops[1:]:
            root = find(other)
            if root != first:
                parent[root] = first
    return {i: find(i) for i in parent}


CoverKey = tuple[str, str, str, str, int, int, float]


def capacity_cover_rows(
    s: Scenario, trips: Sequence[TripType], mode: Mode, hubs: Sequence[str], has_trunk: bool,
) -> dict[CoverKey, tuple[dict[int, int], int]]:
    """The covers over the trip types `trips` of a model built in `mode` for `hubs`, as
    key -> (coefficient per index into `trips`, right-hand side). The key says
    what the row is, for infeasibility diagnoses: (unit, village or hub, direction, class,
    first day, last day, δ). A cover over several days is kept only if it says more than the
    single days it spans."""
    cls = s.class_by_id()
    vts = {v.vehicle_type: v for v in s.vehicle_types}
    # a parcel's litres in its least bulky packaging of this mode (V must hold for any plan)
    options: list[SingleUseOption | ReusableType] = [
        *s.packaging.single_use, *(s.packaging.reusable if mode == "joint" else [])]
    smallest = {c: min((s.litres_per_parcel(o, c) for o in options if c in o.class_ids),
                       default=cls[c].litres_per_parcel) for c in cls}
    hub_of = {v.village_id: v.hub_id for v in s.villages}
    hub_set = set(hubs)
    comp = components(trips)
    last = s.horizon_days - 1

    vol: dict[tuple[Unit, tuple[int, int], Kind], float] = defaultdict(float)
    for gi, g in enumerate(s.demand):
        if hub_of.get(g.village_id) not in hub_set:
            continue
        days = service_days(s, gi, mode)
        span = (days[0], days[-1])
        units: list[Unit] = [("trunk", hub_of[g.village_id])] if has_trunk else []
        if g.village_id in comp:
            units.append(("milk", comp[g.village_id]))
        if g.direction == "down":
            litres = g.parcels * smallest[g.class_id]
            kinds: list[Kind] = [("down", g.class_id), ("down", ALL)]
        else:
            litres = s.down_volume_litres(g)
            kinds = [("up", g.class_id), ("back", ALL)]
        for u in units:
            for k in kinds:
                vol[(u, span, k)] += litres
    for w in s.outstanding_waste:
        # collected on any day of the horizon, on milk runs (the trunk's volume per gram is
        # the hub's bulkiest waste, so it is left out there rather than approximated)
        if w.grams > 0 and hub_of.get(w.village_id) in hub_set and w.village_id in comp:
            vol[(("milk", comp[w.village_id]), (0, last), ("back", ALL))] += (
                w.grams * w.litres_per_kg / 1000.0)

    def room(t: int, kind: Kind) -> float:
        """Litres of `kind` one trip of type t can carry."""
        tt = trips[t]
        vt = vts[tt.vehicle_type]
        direction, c = kind
        if direction == "back":
            return sum(vt.compartments_litres.values())
        if tt.purpose == WASTE or (tt.purpose != ALL and c not in (ALL, tt.purpose)):
            return 0.0
        if direction == "up":
            return vt.compartments_litres.get(c, 0.0)
        classes = [tt.purpose] if tt.purpose != ALL else (list(cls) if c == ALL else [c])
        comps = {k for x in classes for k, _passive in compatible_compartments(s, vt, x)}
        return sum(vt.compartments_litres[k] for k in comps)

    trips_of: dict[tuple[Unit, int], list[int]] = defaultdict(list)
    for t, tt in enumerate(trips):
        u = ("trunk", tt.hub_id) if tt.route is None else ("milk", comp[tt.route.stops[0]])
        trips_of[(u, tt.day)].append(t)

    by_unit_kind: dict[tuple[Unit, Kind], dict[tuple[int, int], float]] = defaultdict(dict)
    for (u, span, k), x in vol.items():
        by_unit_kind[(u, k)][span] = x
    rows: dict[CoverKey, tuple[dict[int, int], int]] = {}
    for (u, kind), spans in sorted(by_unit_kind.items()):
        windows = {(d, d) for d in range(last + 1)} | set(spans) | {(0, last)}
        single: dict[tuple[int, float], int] = {}
        for a, z in sorted(windows, key=lambda w: (w[1] - w[0], w)):
            need = sum(x for (p, q), x in spans.items() if a <= p and q <= z)
            if need <= EPS:
                continue
            rooms = {t: room(t, kind) for d in range(a, z + 1) for t in trips_of.get((u, d), ())}
            rooms = {t: r for t, r in rooms.items() if r > EPS}
            for delta in sorted(set(rooms.values())):
                rhs = math.ceil(need / delta - EPS)
                if a == z:
                    single[(a, delta)] = rhs
                elif rhs <= sum(single.get((d, delta), 0) for d in range(a, z + 1)):
                    continue
                if rhs >= 1:
                    key = (*u, *kind, a, z, delta)
                    rows[key] = ({t: math.ceil(r / delta - EPS) for t, r in rooms.items()}, rhs)
    return rows

