"""Trip counts y_t and their upper bounds (docs/optimizer.md, "Variables" and
"Trip-count bounds")."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable

import pyomo.environ as pyo

from optimizer.model.sets import ModelSets, VillageDayClass
from optimizer.scenario import VehicleType
from optimizer.trips import ALL, TripType


def add_trip_counts(
    m: pyo.ConcreteModel, x: ModelSets, fixed_trips: dict[TripType, int] | None
) -> None:
    """`trips` y_t ∈ ℤ≥0 for every trip type t, bounded by

        y_t ≤ min(n_v · m_t, n_t^need)

    with n_v · m_t the vehicles times the trips of this type one of them runs a day
    (docs/optimizer.md, "Fleet"), and for an all-purpose trip n_t^need
    the number of trips of t's vehicle type that could carry, on their own, everything t's
    villages may need that day, deliveries and pickups aboard together (flexible groups
    counted on every day of their window, all possible empties and all outstanding
    recyclables): per compartment, and in total. If more ran, those trips alone could carry
    it all, at every point of their tour, so any further trip through those villages could
    be dropped, and every trip costs money: the bound keeps every optimum. With `fixed_trips`
    (stage 2 of the sequential baseline) every count is fixed, to 0 where not given."""
    need = _needed_trips(x)
    s = x.scenario
    village_hub = x.village_hub

    def y_bounds(m: pyo.ConcreteModel, t: int) -> tuple[float, float]:
        tt = x.trips[t]
        vt = x.vehicle_types[tt.vehicle_type]
        n = s.hub_vehicle_count(vt, tt.hub_id) if vt.base == "hub" else (
            vt.count if vt.count is not None else 10**6)
        ub: float = n * x.trips_per_vehicle[t]
        villages = tt.route.stops if tt.route is not None else [
            i for i in village_hub if village_hub[i] == tt.hub_id]
        if tt.purpose == ALL:
            ub = min(ub, need(vt, villages, tt.day, tt.route is None))
        return (0, ub)

    m.trips = pyo.Var(range(len(x.trips)), domain=pyo.NonNegativeIntegers, bounds=y_bounds)
    if fixed_trips is not None:
        for t, tt in enumerate(x.trips):
            m.trips[t].fix(fixed_trips.get(tt, 0))


def _needed_trips(x: ModelSets) -> Callable[[VehicleType, Iterable[str], int, bool], float]:
    """n^need(v, villages, d, trunk): trips of vehicle type v that carry, on their own, all
    the given villages may need on day d, per compartment and on the return leg."""
    s = x.scenario
    cls = x.classes
    # a parcel's litres in its bulkiest packaging of this mode
    bulkiest = {c: max((litres for (c2, o), litres in x.litres.items()
                        if c2 == c and (o in x.single_use or o in x.reusable)), default=0.0)
                for c in cls if any(c2 == c for c2, _o in x.litres)}
    down_max: dict[VillageDayClass, float] = defaultdict(float)
    down_parcels: dict[VillageDayClass, float] = defaultdict(float)
    up_max: dict[VillageDayClass, float] = defaultdict(float)
    for gi in list(x.fixed_service) + list(x.flex_groups):
        g = s.demand[gi]
        for d in ([x.fixed_service[gi]] if gi in x.fixed_service else x.flex_groups[gi]):
            key = (g.village_id, d, g.class_id)
            if g.direction == "down":
                down_max[key] += g.parcels * bulkiest[g.class_id]
                down_parcels[key] += g.parcels
            else:
                up_max[key] += s.down_volume_litres(g)
    empties_max: dict[str, float] = defaultdict(float)
    for (i, _d, c), parcels in down_parcels.items():
        nested = max((r.nested_litres for r in x.reusable.values() if c in r.class_ids),
                     default=0.0)
        empties_max[i] += parcels * nested
    waste = x.waste
    waste_max = {i: w.grams * w.litres_per_kg / 1000.0 for i, w in waste.items()}

    def needed(vt: VehicleType, villages: Iterable[str], d: int, trunk: bool) -> float:
        # what a compartment holds at most part-way round a tour: all its deliveries and all
        # its pickups; likewise for the whole vehicle
        by_k: dict[str, float] = defaultdict(float)
        total = 0.0
        for i in villages:
            for c in cls:
                litres = down_max.get((i, d, c), 0.0) + up_max.get((i, d, c), 0.0)
                if litres:
                    if c not in vt.compartments_litres:
                        return math.inf
                    by_k[c] += litres
                    total += litres
            total += empties_max.get(i, 0.0) + waste_max.get(i, 0.0)
            if trunk and i in waste:  # trunk legs count the hub's bulkiest waste per gram
                total += waste[i].grams * max(w.litres_per_kg for w in waste.values()) / 1e3
        n = math.ceil(total / sum(vt.compartments_litres.values()) - 1e-9)
        for k, litres in by_k.items():
            n = max(n, math.ceil(litres / vt.compartments_litres[k] - 1e-9))
        return max(n, 1)

    return needed
