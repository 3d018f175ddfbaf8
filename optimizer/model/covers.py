"""Valid rows on the trip counts (docs/optimizer.md, "Capacity covers" and
"Trip-cost floors"); the rows are computed from the trip types by optimizer.cuts and
optimizer.floors."""

from __future__ import annotations

import dataclasses

import pyomo.environ as pyo

from optimizer.cuts import capacity_cover_rows
from optimizer.floors import Floors, trip_cost_floors
from optimizer.model.objective import pack_costs, trip_costs
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


def joint_floors(scenario: Scenario, routes: dict[str, list[Route]], hubs: list[str],
                 budget_s: float | None = None) -> Floors:
    """The floors of the joint model of `hubs`, for every stage of a hub group to share, with
    `cost_floor` as their `bound`; computing them stops after `budget_s`."""
    x = model_sets(scenario, routes, "joint", hubs)
    floors = trip_cost_floors(x, trip_costs(x), budget_s)
    return dataclasses.replace(floors, bound=cost_floor(x, floors))


def cost_floor(x: ModelSets, floors: Floors) -> float:
    """A lower bound on the cost of every plan of the model of `x`, known before any solve:

        Σ_{(u, d)} F_ud + Σ_{parcels} min_{o} p_o,

    the milk runs' floors (disjoint sets of trip types) and each parcel, down or up, in its
    cheapest packaging at the objective's per-parcel cost p_o (`pack_costs`). Every other
    term of the objective (trunk legs, washing, buying and expanding pools) is ≥ 0. It is
    the bound of a hub group whose joint solve stopped before HiGHS had one (the smallest
    groups, scheduled last, at 200 % of the county in 120 s): weak, but a valid bound where
    there would be none, so the county's gap is known."""
    per_parcel = pack_costs(x)
    total = sum(f for _trips, f in floors.rows.values())  # computed on x: all hold
    for fixed, flex, options in ((x.down_fixed, x.down_flex, x.options_at),
                                 (x.up_parcels_fixed, x.up_parcels_flex, x.up_options_at)):
        group_min: dict[int, tuple[float, float]] = {}  # flexible group -> (parcels, least)
        for key, opts in options.items():
            if not opts:
                continue
            least = min(per_parcel[o] for o in opts)
            total += fixed.get(key, 0.0) * least
            for n, (gi, _d) in flex.get(key, ()):
                before = group_min.get(gi, (n, least))
                group_min[gi] = (n, min(before[1], least))
        total += sum(n * least for n, least in group_min.values())
    return max(0.0, total)
