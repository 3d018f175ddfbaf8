"""Service and packaging (docs/optimizer.md, "Service and packaging"): on which
day each demand group is served, and how each village's parcels are packed."""

from __future__ import annotations

from typing import Any

import pyomo.environ as pyo

from optimizer.model.sets import ModelSets, VillageDayClass


def parcels_down(m: pyo.ConcreteModel, x: ModelSets, key: VillageDayClass) -> Any:
    """N_idc = Σ_{g down at i, class c} n_g s_gd: parcels delivered to village i on day d,
    an affine expression (a constant for groups fixed to the day)."""
    return x.down_fixed.get(key, 0.0) + sum(n * m.serve[sk] for n, sk in x.down_flex.get(key, ()))


def litres_up(m: pyo.ConcreteModel, x: ModelSets, key: VillageDayClass) -> Any:
    """M_idc = Σ_{g up at i, class c} L_g s_gd: litres of farm shipments leaving village i on
    day d."""
    return x.up_fixed.get(key, 0.0) + sum(v * m.serve[sk] for v, sk in x.up_flex.get(key, ()))


def add_service(m: pyo.ConcreteModel, x: ModelSets) -> None:
    """`serve` s_gd ∈ [0, 1], the share of flexible group g served on day d ∈ D_g, and
    `serve_all`:

        Σ_{d ∈ D_g} s_gd = 1     for every flexible group g.

    Windows are clipped at the horizon's end; a group with one service day is a constant."""
    m.serve = pyo.Var(x.serve_keys, bounds=(0, 1))
    m.serve_all = pyo.Constraint(
        list(x.flex_groups),
        rule=lambda m, gi: sum(m.serve[gi, d] for d in x.flex_groups[gi]) == 1,
    )


def add_packaging(m: pyo.ConcreteModel, x: ModelSets) -> None:
    """`pack` x_idco ≥ 0 (integer with `whole_parcels`), the parcels of village i, day d,
    class c packed in option o, and `pack_all`:

        Σ_{o ∈ O_c} x_idco = N_idc.

    The reusable options exist in the joint mode only (the baselines are single-use)."""
    domain = pyo.NonNegativeIntegers if x.scenario.packaging.whole_parcels else (
        pyo.NonNegativeReals)
    m.pack = pyo.Var(x.pack_keys, domain=domain)
    m.pack_all = pyo.Constraint(
        x.down_keys,
        rule=lambda m, i, d, c: sum(m.pack[i, d, c, o] for o in x.options_at[(i, d, c)])
        == parcels_down(m, x, (i, d, c)),
    )
