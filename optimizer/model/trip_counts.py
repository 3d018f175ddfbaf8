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

        y_t ≤ min(n_v · m_v, n_t^need)

    with n_v · m_v the vehicles times trips per day, and for an all-purpose trip n_t^need
    the number of trips of t's vehicle type that could carry, on their own, everything t's
    villages may need that day (flexible groups counted on every day of their window, all
    possible empties and all outstanding recyclables on the return leg). If more ran, those
    trips alone could carry it all, so any further trip through those villages could be
    dropped, and every trip costs money: the bound keeps every optimum. With `fixed_trips`
    (stage 2 of the sequential baseline) every count is fixed, to 0 where not given."""
    need = _needed_trips(x)
    s = x.scenario
    village_hub = x.village_hub

    def y_bounds(m: pyo.ConcreteModel, t: int) -> tuple[float, float]:
        tt = x.trips[t]
        vt = x.vehicle_types[tt.vehicle_type]
        n = s.hub_vehicle_count(vt, tt.hub_id) if vt.base == "hub" else (
            vt.count if vt.count is not None else 10**6)
        ub: float = n * vt.max_trips_per_day
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
    down_max: dict[VillageDayClass, float] = defaultdict(float)
    up_max: dict[VillageDayClass, float] = defaultdict(float)
    for gi in list(x.fixed_service) + list(x.flex_groups):
        g = s.demand[gi]
        for d in ([x.fixed_service[gi]] if gi in x.fixed_service else x.flex_groups[gi]):
            if g.direction == "down":
                lpp = cls[g.class_id].litres_per_parcel
                down_max[(g.village_id, d, g.class_id)] += g.parcels * lpp
            else:
                up_max[(g.village_id, d, g.class_id)] += s.down_volume_litres(g)
    empties_max: dict[str, float] = defaultdict(float)
    for (i, _d, c), litres in down_max.items():
        nested = max((r.nested_litres for r in x.reusable.values() if c in r.class_ids),
                     default=0.0)
        empties_max[i] += litres / cls[c].litres_per_parcel * nested
    waste = x.waste
    waste_max = {i: w.grams * w.litres_per_kg / 1000.0 for i, w in waste.items()}

    def needed(vt: VehicleType, villages: Iterable[str], d: int, trunk: bool) -> float:
        out_by_k: dict[str | tuple[str, str], float] = defaultdict(float)
        back_total = 0.0
        for i in villages:
            for c in cls:
                down = down_max.get((i, d, c), 0.0)
                if down:
                    if c not in vt.compartments_litres:
                        return math.inf
                    out_by_k[c] += down
                up = up_max.get((i, d, c), 0.0)
                if up:
                    if c not in vt.compartments_litres:
                        return math.inf
                    out_by_k[("up", c)] += up
                    back_total += up
            back_total += empties_max.get(i, 0.0) + waste_max.get(i, 0.0)
            if trunk and i in waste:  # trunk legs count the hub's bulkiest waste per gram
                back_total += waste[i].grams * max(w.litres_per_kg for w in waste.values()) / 1e3
        n = math.ceil(back_total / sum(vt.compartments_litres.values()) - 1e-9)
        for k, litres in out_by_k.items():
            cap = vt.compartments_litres[k[1] if isinstance(k, tuple) else k]
            n = max(n, math.ceil(litres / cap - 1e-9))
        return max(n, 1)

    return needed
