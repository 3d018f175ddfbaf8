"""Loads on milk runs and the visit covers (docs/optimizer.md, "Milk runs"):
what each trip type t (vehicle v, compartments k of Q_vk litres, Q_v in all) carries out to
its villages and back from them."""

from __future__ import annotations

from collections import defaultdict

import pyomo.environ as pyo

from optimizer.model.service import litres_packed, litres_up, parcels_down
from optimizer.model.sets import LoadDownKey, LoadUpKey, ModelSets, PickKey, Unservable


def add_milk_run_loads(m: pyo.ConcreteModel, x: ModelSets) -> list[Unservable]:
    """Variables `load_down` ℓ^dn_tick, `load_up` ℓ^up_tic, `pick` π_iut (empties of
    container type u), `collect` γ_ti (grams of recyclables), all ≥ 0, and the rows

    - `deliver`:  Σ_{t ∋ i, d} Σ_k ℓ^dn_tick = Σ_o φ_co x_idco  (φ_co litres of a parcel of
      class c packed in option o: an EPS box with ice and an insulated box differ);
    - `ship_up`:  Σ_{t ∋ i, d} ℓ^up_tic = M_idc, in the class's own compartment only;
    - `passive`:  Σ_t Σ_{k ≠ c} ℓ^dn_tick ≤ Σ_{o ∈ O_c ∩ O^pas} φ_co x_idco  for a cold
      class c: outside its own compartment it rides only in passive packaging;
    - `collect_all`:  Σ_t γ_ti = W_i, the village's outstanding recyclables;
    - and the loads along each tour, `add_tour_loads`.

    Returns the demand no trip type can carry at all (the rows are skipped; the caller
    reports it instead of solving)."""
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
        return sum(m.load_down[k] for k in keys) == litres_packed(m, x, (i, d, c))

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
        <= litres_packed(m, x, (i, d, c), x.passive_options),
    )
    for i in sorted(x.waste):
        if not loads.collect_by_i[i]:
            unservable.append((i, -1, "recyclables", "up"))
    m.collect_all = pyo.Constraint(
        sorted(i for i in x.waste if loads.collect_by_i[i]),
        rule=lambda m, i: sum(m.collect[k] for k in loads.collect_by_i[i]) == x.waste[i].grams,
    )
    return unservable


def _positions(delivers: list[bool], picks: list[bool]) -> list[int]:
    """Positions j = 0..n (after the j-th stop) whose load can be the tour's highest.

    The load after stop j is the one after stop j−1, less what is delivered at j, plus what
    is picked up there. With nothing to pick up at stop j it cannot exceed the load before
    (j is left out); with something to pick up at stop j+1 and nothing to deliver there, it
    cannot exceed the load after j+1. Each step from a position left out to the one that
    bounds it crosses a stop in one direction only, so every position left out is bounded
    by one kept."""
    n = len(picks)
    return [j for j in range(n + 1)
            if not (j >= 1 and not picks[j - 1])
            and not (j < n and not delivers[j] and picks[j])]


def add_tour_loads(m: pyo.ConcreteModel, x: ModelSets) -> None:
    """Loads along each milk run, in its fixed stop order i_1 … i_n: after the j-th stop
    (j = 0 is the departure, j = n the return to the hub) a trip carries the deliveries for
    the stops still to come and everything picked up so far,

    - `tour_load`, per compartment k:
      Σ_{p > j} Σ_c ℓ^dn_{t i_p c k} + Σ_{p ≤ j} ℓ^up_{t i_p k} ≤ Q_vk y_t;
    - `tour_load_total` (the backhaul coupling):
      Σ_{p > j} Σ_{c,k} ℓ^dn_{t i_p c k} + Σ_{p ≤ j} (Σ_c ℓ^up_{t i_p c} + Σ_u ν_u π_{i_p u t}
      + ρ_{i_p} γ_{t i_p}) ≤ Q_v y_t,

    with ν_u the nested litres of an empty of container type u and ρ_i the litres per gram
    of village i's recyclables. j = 0 bounds the outbound load, j = n the return leg; the
    rows in between keep a trip from being overloaded part-way (goods still to deliver plus
    what was already picked up). Positions whose load cannot be the tour's highest are left
    out (`_positions`)."""
    vts = x.vehicle_types
    trips = x.trips
    loads = x.loads
    down_at: dict[tuple[int, str, str], list[LoadDownKey]] = defaultdict(list)
    for dkey in loads.down_keys:
        down_at[(dkey[0], dkey[1], dkey[3])].append(dkey)
    up_at: dict[tuple[int, str, str], list[LoadUpKey]] = defaultdict(list)
    for ukey in loads.up_keys:
        up_at[(ukey[0], ukey[1], ukey[2])].append(ukey)
    pick_at: dict[tuple[int, str], list[PickKey]] = defaultdict(list)
    for pkey in loads.pick_keys:
        pick_at[(pkey[0], pkey[1])].append(pkey)
    collects = set(loads.collect_keys)
    rows: dict[tuple[int, int, str], tuple[tuple[str, ...], tuple[str, ...]]] = {}
    total_rows: dict[tuple[int, int], tuple[tuple[str, ...], tuple[str, ...]]] = {}
    for t, tt in enumerate(trips):
        if tt.route is None:
            continue
        stops = tt.route.stops
        comps = list(vts[tt.vehicle_type].compartments_litres)
        for k in comps:
            delivers = [bool(down_at.get((t, i, k))) for i in stops]
            picks = [bool(up_at.get((t, i, k))) for i in stops]
            if any(delivers) or any(picks):
                for j in _positions(delivers, picks):
                    rows[(t, j, k)] = (stops[j:], stops[:j])
        delivers = [any(down_at.get((t, i, k)) for k in comps) for i in stops]
        picks = [any(up_at.get((t, i, k)) for k in comps) or bool(pick_at.get((t, i)))
                 or (t, i) in collects for i in stops]
        if any(picks):
            for j in _positions(delivers, picks):
                total_rows[(t, j)] = (stops[j:], stops[:j])

    def down(m, t, stops, comps):
        return sum(m.load_down[key] for i in stops for k in comps
                   for key in down_at.get((t, i, k), ()))

    def back(m, t, stops, comps):
        out = sum(m.load_up[key] for i in stops for k in comps
                  for key in up_at.get((t, i, k), ()))
        out += sum(x.reusable[key[2]].nested_litres * m.pick[key]
                   for i in stops for key in pick_at.get((t, i), ()))
        return out + sum(x.waste[i].litres_per_kg / 1000.0 * m.collect[t, i]
                         for i in stops if (t, i) in collects)

    m.tour_load = pyo.Constraint(
        sorted(rows),
        rule=lambda m, t, j, k: down(m, t, rows[(t, j, k)][0], [k])
        + sum(m.load_up[key] for i in rows[(t, j, k)][1] for key in up_at.get((t, i, k), ()))
        <= vts[trips[t].vehicle_type].compartments_litres[k] * m.trips[t],
    )

    def tour_load_total(m, t, j):
        vt = vts[trips[t].vehicle_type]
        ahead, behind = total_rows[(t, j)]
        comps = list(vt.compartments_litres)
        return (down(m, t, ahead, comps) + back(m, t, behind, comps)
                <= sum(vt.compartments_litres.values()) * m.trips[t])

    m.tour_load_total = pyo.Constraint(sorted(total_rows), rule=tour_load_total)


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
