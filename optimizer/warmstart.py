"""Starting points for HiGHS from another stage's solution.

Every stage of a hub group is built by the same model code from the same data, so a
variable of one stage is found in the next by its name and index. A start that is
feasible for the next model lets HiGHS begin with an incumbent: the sequential plan
for the joint solve (joint <= sequential even when the joint solve stops at its
gap), the uncoordinated plan for the single-use stage (sequential <= uncoordinated),
and a hub group's own incumbent for its second pass.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from typing import Any

import pyomo.environ as pyo

from optimizer.model import BuiltModel
from optimizer.trips import ALL, TripType

Values = dict[tuple[str, Any], float]


def values_of(model: pyo.ConcreteModel, nonzero: bool = True) -> Values:
    """A solved model's values by (variable name, index); only the non-zero ones unless
    told otherwise (a start kept for later need not carry the zeros)."""
    return {(comp.name, idx): v.value
            for comp in model.component_objects(pyo.Var, active=True)
            for idx, v in comp.items() if v.value or not nonzero}


def set_values(model: pyo.ConcreteModel, values: Values, *, zero_rest: bool = False,
               strict: bool = False) -> bool:
    """Set `values` as the start of `model`, each clipped to its variable's bounds (a trip
    count summed from several trips may exceed the count one trip type allows).

    With `zero_rest`, variables not in `values` start at 0 (a start must give every
    variable a value to be checked as a whole). With `strict`, a value whose variable is
    missing makes it return False (the caller then starts cold); otherwise such values are
    skipped."""
    if zero_rest:
        for comp in model.component_objects(pyo.Var, active=True):
            for v in comp.values():
                v.set_value(0.0, skip_validation=True)
    for (name, idx), x in values.items():
        comp = model.find_component(name)
        if comp is None or idx not in comp:
            if strict:
                return False
            continue
        var = comp[idx]
        if x is not None:
            if var.ub is not None:
                x = min(x, var.ub)
            if var.lb is not None:
                x = max(x, var.lb)
        var.set_value(x, skip_validation=True)
    return True


def copy_values(src: pyo.ConcreteModel, dst: pyo.ConcreteModel) -> None:
    """Stage-2 (joint, trips fixed) values as the joint model's starting point."""
    set_values(dst, values_of(src, nonzero=False))


#: the variables indexed by a trip type: 0, the index is t; 1, t comes first
TRIP_INDEXED = {"trips": 0, "trunk_collect": 0, "load_down": 1, "load_up": 1, "pick": 1,
                "collect": 1, "trunk_down": 1, "trunk_up": 1}


def trip_of(name: str, index: Any) -> int | None:
    """The trip type variable `name`'s `index` names; None for a variable not indexed by one."""
    where = TRIP_INDEXED.get(name)
    return None if where is None else index if where == 0 else index[0]


def uncoordinated_as_start(src: BuiltModel, dst: BuiltModel) -> bool:
    """Set the single-use model's variables to the uncoordinated plan, which is feasible for
    it: each single-purpose trip becomes a trip of the same route, vehicle and day that may
    carry everything (counts added up, capped at the trip type's bound, which still has room
    for all its villages may need), presale groups on their first day. Returns False if a trip
    has no counterpart (then the stage starts cold).

    With it the single-use stage never ends worse than the uncoordinated baseline, so
    sequential <= uncoordinated holds by construction, and a single-use stage cut short by the
    deadline still has a plan to hand on."""
    return uncoordinated_values_as_start(src.trips, values_of(src.model), dst)


def uncoordinated_values_as_start(trips: list[TripType], values: Values,
                                  dst: BuiltModel) -> bool:
    """`uncoordinated_as_start` from the uncoordinated model's trips and (non-zero) values,
    which, unlike the model, travel between processes."""
    index = {t: k for k, t in enumerate(dst.trips)}
    mapped = []
    for t in trips:
        k = index.get(dataclasses.replace(t, purpose=ALL))
        if k is None:
            return False
        mapped.append(k)
    vals: dict[tuple[str, Any], float] = defaultdict(float)
    for (name, idx), x in values.items():
        if not x:
            continue
        where = TRIP_INDEXED.get(name)
        if where == 0:
            idx = mapped[idx]
        elif where == 1:
            idx = (mapped[idx[0]], *idx[1:])
        vals[(name, idx)] += x
    for gi, days in dst.flex_groups.items():
        vals[("serve", (gi, days[0]))] = 1.0
    return set_values(dst.model, vals, zero_rest=True, strict=True)
