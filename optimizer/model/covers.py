"""Capacity covers in the model (docs/optimizer.md, "Capacity covers"); the rows themselves are
computed from the trip types by optimizer.cuts."""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.cuts import capacity_cover_rows
from optimizer.model.sets import ModelSets


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
