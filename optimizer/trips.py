"""The vocabulary the model, its cuts, the plan reader and the KPIs share: what a trip type
is, what it may carry, on which days a demand group may be served and where a class may ride.

It lives apart from the model so that code reasoning about trips (the capacity covers, the
KPIs, the warm starts) does not have to import the Pyomo builder to speak of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from optimizer.routes import Route
from optimizer.scenario import Scenario, VehicleType

Mode = Literal["joint", "single_use", "uncoordinated"]
ALL = "all"
WASTE = "waste"


@dataclass(frozen=True)
class TripType:
    """A way to run a trip: route, vehicle type, day, and what it may carry (`purpose`)."""

    hub_id: str
    route: Route | None  # None for a trunk leg county <-> hub
    vehicle_type: str
    day: int
    purpose: str  # ALL, a class id, or WASTE

    @property
    def km(self) -> float:
        return self.route.km if self.route is not None else 0.0


def service_days(scenario: Scenario, group_index: int, mode: Mode) -> list[int]:
    """Days on which a demand group may be served: its window, clipped to the horizon."""
    g = scenario.demand[group_index]
    if mode == "uncoordinated":
        return [g.day]
    return list(range(g.day, min(g.day + g.flex_days, scenario.horizon_days - 1) + 1))


def compatible_compartments(
    scenario: Scenario, vt: VehicleType, class_id: str
) -> list[tuple[str, bool]]:
    """Compartments a class may ride in on this vehicle, each with `needs_passive`.

    Its own compartment always; a non-refrigerated compartment too when the class is
    refrigerated, the vehicle allows passive cold packaging and the parcel is so packed.
    """
    cls = scenario.class_by_id()
    out = []
    if class_id in vt.compartments_litres:
        out.append((class_id, False))
    if cls[class_id].refrigerated and vt.passive_cold_allowed:
        for k in vt.compartments_litres:
            if k != class_id and not cls[k].refrigerated:
                out.append((k, True))
    return out


def vehicle_co2e_per_km(vt: VehicleType) -> float:
    """Tailpipe CO2e per km, raised by the reefer uplift for a refrigerated vehicle."""
    return vt.co2e_per_km_kg * (1.0 + (vt.reefer_uplift if vt.refrigerated else 0.0))


def trip_minutes(vt: VehicleType, km: float, stops: int) -> float:
    """Duration of one trip: driving at the vehicle's speed plus its time at each stop."""
    return 60.0 * km / vt.speed_kmh + vt.service_minutes_per_stop * stops


def trunk_legs_per_shift(vt: VehicleType, km: float) -> int:
    """Trunk legs of `km` (one stop, the hub) one vehicle of `vt` runs a day; 0 where the
    leg is beyond its `max_route_km` or its shift."""
    if km > vt.max_route_km + 1e-9:
        return 0
    return trips_per_shift(vt, trip_minutes(vt, km, 1))


def trips_per_shift(vt: VehicleType, minutes: float) -> int:
    """How many trips of this duration one vehicle runs a day: as many as fit in its shift,
    at most `max_trips_per_day` (0: the trip does not fit in a shift)."""
    return min(vt.max_trips_per_day, math.floor(vt.shift_minutes / minutes + 1e-9)) if (
        minutes > 0) else vt.max_trips_per_day
