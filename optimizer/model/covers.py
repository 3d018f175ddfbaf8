"""Valid rows on the trip counts (docs/optimizer.md, "Capacity covers" and
"Trip-cost floors"); the rows are computed from the trip types by optimizer.cuts and
optimizer.floors."""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.cuts import capacity_cover_rows
from optimizer.floors import Floors, trip_cost_floors
from optimizer.model.objective import trip_costs
from optimizer.model.sets import ModelSets, model_sets
from optimizer.routes import Route
from optimizer.scenario import Scenario


def add_capacity_covers(m: pyo.ConcreteModel, x: ModelSets) -> None:
    """`cap_cover` (valid inequalities): for a unit u (a component of villages linked by
    common routes, or a hub's trunk legs), a span of days [a, z], a kind of load needing V
    litres and each δ among the litres a_t one trip of type t can carry of it,

        Σ_{t ∈ T(u, [a, z])} ⌈a_t / δ⌉ y_t ≥ ⌈V / δ⌉     (Chvátal–Gomory rounding).

    Every plan satisfies them, so they change no optimum; they round up the fractional
    trips of the LP relaxation."""
    rows = capacity_cover_rows(x.scenario, x.trips, x.mode, x.hubs, x.has_trunk)
    m.cap_cover = pyo.Constraint(
        list(rows),
        rule=lambda m, *r: sum(c * m.trips[t] for t, c in rows[r][0].items()) >= rows[r][1],
    )


def add_trip_cost_floors(m: pyo.ConcreteModel, x: ModelSets,
                         floors: Floors | None = None) -> Floors:
    """`trip_floor` (valid inequalities): for a unit u and day d, the milk runs' cost is at
    least the optimum F_ud of the unit-day's own small trip MILP (`optimizer.floors`),

        Σ_{t ∈ T(u, d)} c_t y_t ≥ F_ud.

    It stops the relaxation from running a second van half a time where every plan runs it
    whole. `floors` computed once (on the joint model's sets, `joint_floors`) are reused
    where they hold; otherwise they are computed on `x`."""
    cost = trip_costs(x)
    if floors is None:
        floors = trip_cost_floors(x, cost)
    rows = floors.rows_for(x)
    m.trip_floor = pyo.Constraint(
        sorted(rows),
        rule=lambda m, u, d: sum(cost[t] * m.trips[t] for t in rows[(u, d)][0])
        >= rows[(u, d)][1],
    )
    return floors


def joint_floors(scenario: Scenario, routes: dict[str, list[Route]], hubs: list[str]) -> Floors:
    """The floors of the joint model of `hubs`, for every stage of a hub group to share."""
    x = model_sets(scenario, routes, "joint", hubs)
    return trip_cost_floors(x, trip_costs(x))
