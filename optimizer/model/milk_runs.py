"""Loads on milk runs and the visit covers (docs/optimizer.md, "Milk runs"):
what each trip type t (vehicle v, compartments k of Q_vk litres, Q_v in all) carries out to
its villages and back from them."""

from __future__ import annotations

from collections import defaultdict

import pyomo.environ as pyo

from optimizer.model.service import litres_up, parcels_down
from optimizer.model.sets import ModelSets

Unservable = tuple[str, int, str, str]  # (village or hub, day, class, direction)


def add_milk_run_loads(m: pyo.ConcreteModel, x: ModelSets) -> list[Unservable]:
    """Variables `load_down` ℓ^dn_tick, `load_up` ℓ^up_tic, `pick` π_iut (empties of
    container type u), `collect` γ_ti (grams of recyclables), all ≥ 0, and the rows

    - `deliver`:  Σ_{t ∋ i, d} Σ_k ℓ^dn_tick = φ_c N_idc  (φ_c litres per parcel);
    - `ship_up`:  Σ_{t ∋ i, d} ℓ^up_tic = M_idc, in the class's own compartment only;
    - `passive`:  Σ_t Σ_{k ≠ c} ℓ^dn_tick ≤ φ_c Σ_{o ∈ O_c ∩ O^pas} x_idco  for a cold class
      c: outside its own compartment it rides only in passive packaging;
    - `cap_out`:  Σ_{i,c} ℓ^dn_tick ≤ Q_vk y_t  per compartment;
    - `cap_back_class`:  Σ_i ℓ^up_tik ≤ Q_vk y_t;
    - `cap_back` (the backhaul coupling):
      Σ_{i,c} ℓ^up_tic + Σ_{i,u} ν_u π_iut + Σ_i ρ_i γ_ti ≤ Q_v y_t, with ν_u the nested
      litres of an empty and ρ_i the litres per gram of the village's recyclables (the
      return leg is loaded after the deliveries, so out and back are separate rows);
    - `collect_all`:  Σ_t γ_ti = W_i, the village's outstanding recyclables.

    Returns the demand no trip type can carry at all (the rows are skipped; the caller
    reports it instead of solving)."""
    cls = x.classes
    vts = x.vehicle_types
    trips = x.trips
    loads = x.loads
    m.load_down = pyo.Var(loads.down_keys, domain=pyo.NonNegativeReals)
    m.load_up = pyo.Var(loads.up_keys, domain=pyo.NonNegativeReals)
    m.pick = pyo.Var(loads.pick_keys, domain=pyo.NonNegativeReals)
    m.collect = pyo.Var(loads.collect_keys, domain=pyo.NonNegativeReals)
    unservable: list[Unservable] = []

    def deliver(m, i, d, c):
        keys = loads.down_by_idc[(i, d, c)]
        no_passive = not any(o in x.passive_options for o in x.options_at[(i, d, c)])
        if no_passive and all(k[3] != c for k in keys):
            keys = []  # only compartments that need passive packaging, and there is none
        if not keys:
            if (i, d, c) not in x.down_flex:
                unservable.append((i, d, c, "down"))
                return pyo.Constraint.Skip
            return parcels_down(m, x, (i, d, c)) == 0
        return sum(m.load_down[k] for k in keys) == (
            cls[c].litres_per_parcel * parcels_down(m, x, (i, d, c)))

    def ship_up(m, i, d, c):
        if not loads.up_by_idc[(i, d, c)]:
            if (i, d, c) not in x.up_flex:
                unservable.append((i, d, c, "up"))
                return pyo.Constraint.Skip
            return litres_up(m, x, (i, d, c)) == 0
        return sum(m.load_up[k] for k in loads.up_by_idc[(i, d, c)]) == litres_up(m, x, (i, d, c))

    m.deliver = pyo.Constraint(x.down_keys, rule=deliver)
    m.ship_up = pyo.Constraint(x.up_keys, rule=ship_up)
    m.passive = pyo.Constraint(
        [k for k in x.down_keys if loads.down_passive_by_idc.get(k)],
        rule=lambda m, i, d, c: sum(m.load_down[k] for k in loads.down_passive_by_idc[(i, d, c)])
        <= cls[c].litres_per_parcel
        * sum(m.pack[i, d, c, o] for o in x.options_at[(i, d, c)] if o in x.passive_options),
    )
    m.cap_out = pyo.Constraint(
        sorted(loads.down_by_tk),
        rule=lambda m, t, k: sum(m.load_down[key] for key in loads.down_by_tk[(t, k)])
        <= vts[trips[t].vehicle_type].compartments_litres[k] * m.trips[t],
    )
    m.cap_back_class = pyo.Constraint(
        sorted(loads.up_by_tk),
        rule=lambda m, t, k: sum(m.load_up[key] for key in loads.up_by_tk[(t, k)])
        <= vts[trips[t].vehicle_type].compartments_litres[k] * m.trips[t],
    )
    back_trips = sorted(set(loads.up_by_t) | set(loads.pick_by_t) | set(loads.collect_by_t))
    m.cap_back = pyo.Constraint(
        back_trips,
        rule=lambda m, t: sum(m.load_up[key] for key in loads.up_by_t[t])
        + sum(x.reusable[key[2]].nested_litres * m.pick[key] for key in loads.pick_by_t[t])
        + sum(x.waste[key[1]].litres_per_kg / 1000.0 * m.collect[key]
              for key in loads.collect_by_t[t])
        <= sum(vts[trips[t].vehicle_type].compartments_litres.values()) * m.trips[t],
    )
    for i in sorted(x.waste):
        if not loads.collect_by_i[i]:
            unservable.append((i, -1, "recyclables", "up"))
    m.collect_all = pyo.Constraint(
        sorted(i for i in x.waste if loads.collect_by_i[i]),
        rule=lambda m, i: sum(m.collect[k] for k in loads.collect_by_i[i]) == x.waste[i].grams,
    )
    return unservable


def add_visit_covers(m: pyo.ConcreteModel, x: ModelSets) -> None:
    """`visit` (valid inequalities): demand fixed to a day needs a trip through its village
    that day able to carry it,

        Σ_{t ∈ T_idc} y_t ≥ 1.

    Implied by the integer model, not by its LP relaxation, where a trip can run 5 % of a
    time; these rows close most of the root gap."""
    trips = x.trips
    need_visit: dict[tuple[str, int, str, str], bool] = {}
    for key, parcels in x.down_fixed.items():
        if parcels > 0:
            need_visit[(key[0], key[1], "down", key[2])] = True
    for key, litres in x.up_fixed.items():
        if litres > 0:
            need_visit[(key[0], key[1], "up", key[2])] = True
    cover_trips: dict[tuple[str, int, str, str], list[int]] = defaultdict(list)
    able: dict[tuple[str, int, str, str], set[int]] = defaultdict(set)
    for (t, i, c, _k) in x.loads.down_keys:
        able[(i, trips[t].day, "down", c)].add(t)
    for (t, i, c) in x.loads.up_keys:
        able[(i, trips[t].day, "up", c)].add(t)
    for visit_key in need_visit:
        cover_trips[visit_key] = sorted(able.get(visit_key, ()))
    m.visit = pyo.Constraint(
        sorted(k for k in cover_trips if cover_trips[k]),
        rule=lambda m, i, d, w, c: sum(m.trips[t] for t in cover_trips[(i, d, w, c)]) >= 1,
    )
