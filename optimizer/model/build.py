"""`build_model`: the sets first, then one builder per constraint family, in the order of
docs/optimizer.md."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import pyomo.environ as pyo

from optimizer.floors import Floors
from optimizer.model.covers import add_capacity_covers, add_trip_cost_floors
from optimizer.model.fleet import add_fleet
from optimizer.model.milk_runs import add_milk_run_loads, add_tour_loads, add_visit_covers
from optimizer.model.objective import add_objective
from optimizer.model.pools import add_container_pools
from optimizer.model.service import add_packaging, add_service
from optimizer.model.sets import Unservable, model_sets
from optimizer.model.trip_counts import add_trip_counts
from optimizer.model.trunk import add_trunk_legs
from optimizer.routes import Route
from optimizer.scenario import Scenario
from optimizer.trips import Mode, TripType


@dataclass
class BuiltModel:
    """The Pyomo model plus the index lists needed to read a plan back out of it."""

    model: pyo.ConcreteModel
    mode: Mode
    trips: list[TripType]
    trip_km: list[float]
    trip_minutes: list[float]
    trunk_km: dict[str, float]
    down_keys: list[tuple[str, int, str]]
    pack_keys: list[tuple[str, int, str, str]]
    pack_up_keys: list[tuple[str, int, str, str]]
    flex_groups: dict[int, list[int]]
    fixed_service: dict[int, int]
    hubs: list[str]
    ctypes: list[str]
    pool_start: dict[tuple[str, str], float]
    has_trunk: bool
    build_s: float = 0.0
    unservable: list[Unservable] = field(default_factory=list)


def build_model(
    scenario: Scenario,
    routes: dict[str, list[Route]],
    *,
    mode: Mode = "joint",
    hubs: list[str] | None = None,
    fixed_trips: dict[TripType, int] | None = None,
    capacity_covers: bool = True,
    trip_floors: bool | Floors = True,
) -> BuiltModel:
    """Build the MILP for `hubs` (default all) over the candidate `routes`.

    `fixed_trips` fixes every trip count (stage 2 of the sequential baseline);
    `capacity_covers` adds the rounded capacity covers, valid rows that only tighten the
    relaxation (off only to check that they change no optimum); `trip_floors` likewise the
    trip-cost floors (not built when every trip count is fixed), computed here or given
    (`Floors` shared by a hub group's stages)."""
    t0 = time.perf_counter()
    x = model_sets(scenario, routes, mode, hubs)
    m = pyo.ConcreteModel(name=f"packloop_{mode}")
    add_service(m, x)
    unservable = add_packaging(m, x)
    add_trip_counts(m, x, fixed_trips)
    unservable += add_milk_run_loads(m, x)
    add_tour_loads(m, x)
    add_visit_covers(m, x)
    if x.has_trunk:
        unservable += add_trunk_legs(m, x)
    add_fleet(m, x)
    flows = add_container_pools(m, x)
    add_objective(m, x, flows)
    if capacity_covers:
        add_capacity_covers(m, x)
    if trip_floors is not False and fixed_trips is None:
        add_trip_cost_floors(m, x, trip_floors if isinstance(trip_floors, Floors) else None)
    return BuiltModel(
        model=m,
        mode=mode,
        trips=x.trips,
        trip_km=x.trip_km,
        trip_minutes=x.trip_minutes,
        trunk_km=x.trunk_km,
        down_keys=x.down_keys,
        pack_keys=x.pack_keys,
        pack_up_keys=x.pack_up_keys,
        flex_groups=x.flex_groups,
        fixed_service=x.fixed_service,
        hubs=x.hubs,
        ctypes=x.container_types,
        pool_start=x.pool_start,
        has_trunk=x.has_trunk,
        unservable=unservable,
        build_s=time.perf_counter() - t0,
    )
