"""Fleet (docs/optimizer.md, "Fleet"): how many trips the vehicles can run."""

from __future__ import annotations

from collections import defaultdict

import pyomo.environ as pyo

from optimizer.model.sets import ModelSets


def add_fleet(m: pyo.ConcreteModel, x: ModelSets) -> None:
    """A trip of type t takes τ_t = 60 κ_t / speed_v + service_v × stops minutes, and one
    vehicle runs m_t = min(max_trips_per_day_v, ⌊shift_v / τ_t⌋) trips of it a day (trip
    types with m_t = 0 are not offered); a trip of type t uses 1/m_t of a vehicle-day:

    `fleet_hub`, per hub h, vehicle type v, day d:

        Σ_{t = (h, ·, v, d, ·)} y_t / m_t ≤ n_vh     (vehicles);

    `fleet_county`, per county vehicle type v with a stated count and day d:

        Σ_h Σ_{t = (h, trunk, v, d, ·)} y_t / m_t ≤ n_v,

    the only row that links the hubs. A vehicle whose trips' shares add up to at most 1
    drives at most its shift and at most `max_trips_per_day` trips."""
    s = x.scenario
    vts = x.vehicle_types
    share = [1.0 / m_t for m_t in x.trips_per_vehicle]
    fleet_hub: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    fleet_county: dict[tuple[str, int], list[int]] = defaultdict(list)
    for t, tt in enumerate(x.trips):
        if tt.route is not None:
            fleet_hub[(tt.hub_id, tt.vehicle_type, tt.day)].append(t)
        else:
            fleet_county[(tt.vehicle_type, tt.day)].append(t)
    m.fleet_hub = pyo.Constraint(
        sorted(fleet_hub),
        rule=lambda m, h, v, d: sum(share[t] * m.trips[t] for t in fleet_hub[(h, v, d)])
        <= s.hub_vehicle_count(vts[v], h),
    )
    county_count = {v: vt.count for v, vt in vts.items() if vt.count is not None}
    m.fleet_county = pyo.Constraint(
        [k for k in sorted(fleet_county) if k[0] in county_count],
        rule=lambda m, v, d: sum(share[t] * m.trips[t] for t in fleet_county[(v, d)])
        <= county_count[v],
    )
