"""Service and packaging (docs/optimizer.md, "Service and packaging"): on which
day each demand group is served, and how each village's parcels are packed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyomo.environ as pyo
from pyomo.core.expr.numvalue import is_constant

from optimizer.model.sets import ModelSets, Unservable, VillageDayClass


def parcels_down(m: pyo.ConcreteModel, x: ModelSets, key: VillageDayClass) -> Any:
    """N_idc = Σ_{g down at i, class c} n_g s_gd: parcels delivered to village i on day d,
    an affine expression (a constant for groups fixed to the day)."""
    return x.down_fixed.get(key, 0.0) + sum(n * m.serve[sk] for n, sk in x.down_flex.get(key, ()))


def litres_up(m: pyo.ConcreteModel, x: ModelSets, key: VillageDayClass) -> Any:
    """M_idc = Σ_{g up at i, class c} L_g s_gd: litres of farm shipments leaving village i on
    day d."""
    return x.up_fixed.get(key, 0.0) + sum(v * m.serve[sk] for v, sk in x.up_flex.get(key, ()))


def parcels_up(m: pyo.ConcreteModel, x: ModelSets, key: VillageDayClass) -> Any:
    """P_idc: parcels of farm shipments leaving village i on day d."""
    return x.up_parcels_fixed.get(key, 0.0) + sum(
        n * m.serve[sk] for n, sk in x.up_parcels_flex.get(key, ()))


def litres_packed(m: pyo.ConcreteModel, x: ModelSets, key: VillageDayClass,
                  options: Iterable[str] | None = None) -> Any:
    """Σ_o φ_co x_idco: litres of the parcels of village i, day d, class c as packed (in
    `options` only, if given), φ_co the litres of a parcel of class c in option o."""
    i, d, c = key
    return sum(x.litres[(c, o)] * m.pack[i, d, c, o] for o in x.options_at[key]
               if options is None or o in options)


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


def add_packaging(m: pyo.ConcreteModel, x: ModelSets) -> list[Unservable]:
    """`pack` x_idco ≥ 0 (integer with `whole_parcels`), the parcels of village i, day d,
    class c delivered in option o, and `pack_all`:

        Σ_{o ∈ O_c} x_idco = N_idc;

    `pack_up` x^up_idco ≥ 0, the farm shipments packed in option o (a single-use option
    that lists the class in `up_class_ids`, or an empty container waiting at the village
    whose type lists it), and `pack_up_all`:

        Σ_{o ∈ O^up_c} x^up_idco = P_idc    for the classes some single-use option packs up.

    The reusable options exist in the joint mode only (the baselines are single-use)."""
    domain = pyo.NonNegativeIntegers if x.scenario.packaging.whole_parcels else (
        pyo.NonNegativeReals)
    m.pack = pyo.Var(x.pack_keys, domain=domain)
    unpackable: list[Unservable] = []

    def pack_all(m, i, d, c):
        parcels = parcels_down(m, x, (i, d, c))
        if not x.options_at.get((i, d, c)):  # a class only reusable options list, and
            if is_constant(parcels):          # this mode has none (the baselines)
                unpackable.append((i, d, c, "pack"))
                return pyo.Constraint.Skip
            return parcels == 0
        return sum(m.pack[i, d, c, o] for o in x.options_at[(i, d, c)]) == parcels

    m.pack_all = pyo.Constraint(x.down_keys, rule=pack_all)
    m.pack_up = pyo.Var(x.pack_up_keys, domain=domain)
    m.pack_up_all = pyo.Constraint(
        x.packed_up_keys,
        rule=lambda m, i, d, c: sum(m.pack_up[i, d, c, o] for o in x.up_options_at[(i, d, c)])
        == parcels_up(m, x, (i, d, c)),
    )
    return unpackable
