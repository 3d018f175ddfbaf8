"""Fleet (docs/optimizer.md, "Fleet"): how many trips the vehicles can run."""

from __future__ import annotations

from collections import defaultdict

import pyomo.environ as pyo

from optimizer.model.sets import ModelSets


def add_fleet(m: pyo.ConcreteModel, x: ModelSets) -> None:
    """`fleet_hub`, per hub h, vehicle type v, day d:

        Σ_{t = (h, ·, v, d, ·)} y_t ≤ n_vh · m_v     (vehicles × trips per day);

    `fleet_county`, per county vehicle type v with a stated count and day d:

        Σ_h y_(h, trunk, v, d, ·) ≤ n_v · m_v,

    the only row that links the hubs."""
    s = x.scenario
    vts = x.vehicle_types
    fleet_hub: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    fleet_county: dict[tuple[str, int], list[int]] = defaultdict(list)
    for t, tt in enumerate(x.trips):
        if tt.route is not None:
            fleet_hub[(tt.hub_id, tt.vehicle_type, tt.day)].append(t)
        else:
            fleet_county[(tt.vehicle_type, tt.day)].append(t)
    m.fleet_hub = pyo.Constraint(
        sorted(fleet_hub),
        rule=lambda m, h, v, d: sum(m.trips[t] for t in fleet_hub[(h, v, d)])
        <= s.hub_vehicle_count(vts[v], h) * vts[v].max_trips_per_day,
    )
    county_count = {v: vt.count for v, vt in vts.items() if vt.count is not None}
    m.fleet_county = pyo.Constraint(
        [k for k in sorted(fleet_county) if k[0] in county_count],
        rule=lambda m, v, d: sum(m.trips[t] for t in fleet_county[(v, d)])
        <= county_count[v] * vts[v].max_trips_per_day,
    )
