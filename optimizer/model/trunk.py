"""Trunk legs county ↔ hub (docs/optimizer.md, "Trunk legs"): per hub h and
day d, the hub's deliveries, farm shipments and collected recyclables travel the same day
between the county and the hub. Only for scenarios with county vehicles."""

from __future__ import annotations

from collections import defaultdict

import pyomo.environ as pyo
from pyomo.core.expr.numvalue import is_constant

from optimizer.model.service import litres_packed, litres_up
from optimizer.model.sets import ModelSets, Unservable, VillageDayClass
from optimizer.trips import ALL, WASTE, compatible_compartments


def add_trunk_legs(m: pyo.ConcreteModel, x: ModelSets) -> list[Unservable]:
    """Variables `trunk_down` (litres of class c in compartment k of trunk trip type t),
    `trunk_up` (farm litres of class c), `trunk_collect` (grams of recyclables), all ≥ 0, and
    for hub h, day d, class c:

    - `trunk_deliver`:  Σ_{t,k} trunk_down_tck = Σ_{i ∈ I_h} Σ_o φ_co x_idco, the hub's
      deliveries as packed;
    - `trunk_passive`:  the cold goods outside their own compartment ≤ the litres of the
      hub's passively packed parcels, as `passive` on the milk runs;
    - `trunk_ship_up`:  Σ_t trunk_up_tc = Σ_{i ∈ I_h} M_idc;
    - `trunk_collect_all`:  Σ_t trunk_collect_t = Σ_{i ∈ I_h, t'} γ_t'i  (what the milk runs
      collected that day);
    - `trunk_cap_out`, `trunk_cap_back_class` per compartment, and `trunk_cap_back`: farm
      litres plus ρ_h × grams ≤ Q_v y_t, with ρ_h the litres per gram of the hub's bulkiest
      recyclables (conservative: the trunk carries them mixed).

    Returns the deliveries to a hub that no county vehicle can carry."""
    vts = x.vehicle_types
    trips = x.trips
    village_hub = x.village_hub
    col_by_hd = x.loads.collect_by_hd
    tdown_keys: list[tuple[int, str, str]] = []
    tup_keys: list[tuple[int, str]] = []
    tcol_keys: list[int] = []
    hub_down: dict[tuple[str, int], list[str]] = defaultdict(list)
    for i, d, c in x.down_keys:
        if c not in hub_down[(village_hub[i], d)]:
            hub_down[(village_hub[i], d)].append(c)
    hub_up: dict[tuple[str, int], list[str]] = defaultdict(list)
    for i, d, c in x.up_keys:
        if c not in hub_up[(village_hub[i], d)]:
            hub_up[(village_hub[i], d)].append(c)
    for t, tt in enumerate(trips):
        if tt.route is not None:
            continue
        vt = vts[tt.vehicle_type]
        for c in hub_down.get((tt.hub_id, tt.day), ()):
            if tt.purpose in (ALL, c):
                for k, _p in compatible_compartments(x.scenario, vt, c):
                    tdown_keys.append((t, c, k))
        for c in hub_up.get((tt.hub_id, tt.day), ()):
            if tt.purpose in (ALL, c) and c in vt.compartments_litres:
                tup_keys.append((t, c))
        if tt.purpose in (ALL, WASTE) and col_by_hd.get((tt.hub_id, tt.day)):
            tcol_keys.append(t)
    m.trunk_down = pyo.Var(tdown_keys, domain=pyo.NonNegativeReals)
    m.trunk_up = pyo.Var(tup_keys, domain=pyo.NonNegativeReals)
    m.trunk_collect = pyo.Var(tcol_keys, domain=pyo.NonNegativeReals)
    td_by_hdc: dict[tuple[str, int, str], list[tuple[int, str, str]]] = defaultdict(list)
    td_pass_by_hdc: dict[tuple[str, int, str], list[tuple[int, str, str]]] = defaultdict(list)
    td_by_tk: dict[tuple[int, str], list[tuple[int, str, str]]] = defaultdict(list)
    for td_key in tdown_keys:
        t, c, k = td_key
        td_by_hdc[(trips[t].hub_id, trips[t].day, c)].append(td_key)
        if k != c:
            td_pass_by_hdc[(trips[t].hub_id, trips[t].day, c)].append(td_key)
        td_by_tk[(t, k)].append(td_key)
    tu_by_hdc: dict[tuple[str, int, str], list[tuple[int, str]]] = defaultdict(list)
    tu_by_t: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for tu_key in tup_keys:
        t, c = tu_key
        tu_by_hdc[(trips[t].hub_id, trips[t].day, c)].append(tu_key)
        tu_by_t[t].append(tu_key)
    tc_by_hd: dict[tuple[str, int], list[int]] = defaultdict(list)
    for t in tcol_keys:
        tc_by_hd[(trips[t].hub_id, trips[t].day)].append(t)
    vill_by_hdc: dict[tuple[str, int, str], list[VillageDayClass]] = defaultdict(list)
    for i, d, c in x.down_keys:
        vill_by_hdc[(village_hub[i], d, c)].append((i, d, c))
    uvill_by_hdc: dict[tuple[str, int, str], list[VillageDayClass]] = defaultdict(list)
    for i, d, c in x.up_keys:
        uvill_by_hdc[(village_hub[i], d, c)].append((i, d, c))
    unservable: list[Unservable] = []

    def trunk_deliver(m, h, d, c):
        need = sum(litres_packed(m, x, key) for key in vill_by_hdc[(h, d, c)])
        if not td_by_hdc[(h, d, c)]:
            if all(key not in x.down_flex for key in vill_by_hdc[(h, d, c)]):
                unservable.append((h, d, c, "trunk"))
                return pyo.Constraint.Skip
            return need == 0
        return sum(m.trunk_down[k] for k in td_by_hdc[(h, d, c)]) == need

    m.trunk_deliver = pyo.Constraint(sorted(vill_by_hdc), rule=trunk_deliver)
    m.trunk_passive = pyo.Constraint(
        sorted(k for k in vill_by_hdc if td_pass_by_hdc.get(k)),
        rule=lambda m, h, d, c: sum(m.trunk_down[k] for k in td_pass_by_hdc[(h, d, c)])
        <= sum(litres_packed(m, x, key, x.passive_options) for key in vill_by_hdc[(h, d, c)]),
    )
    def trunk_ship_up(m, h, d, c):
        need = sum(litres_up(m, x, key) for key in uvill_by_hdc[(h, d, c)])
        if not tu_by_hdc[(h, d, c)]:  # no trunk leg can take it up (as trunk_deliver)
            if is_constant(need):
                unservable.append((h, d, c, "trunk_up"))
                return pyo.Constraint.Skip
            return need == 0
        return sum(m.trunk_up[k] for k in tu_by_hdc[(h, d, c)]) == need

    m.trunk_ship_up = pyo.Constraint(sorted(uvill_by_hdc), rule=trunk_ship_up)
    m.trunk_collect_all = pyo.Constraint(
        sorted(col_by_hd),
        rule=lambda m, h, d: sum(m.trunk_collect[t] for t in tc_by_hd[(h, d)])
        == sum(m.collect[k] for k in col_by_hd[(h, d)]),
    )
    m.trunk_cap_out = pyo.Constraint(
        sorted(td_by_tk),
        rule=lambda m, t, k: sum(m.trunk_down[key] for key in td_by_tk[(t, k)])
        <= vts[trips[t].vehicle_type].compartments_litres[k] * m.trips[t],
    )
    m.trunk_cap_back_class = pyo.Constraint(
        tup_keys,
        rule=lambda m, t, c: m.trunk_up[t, c]
        <= vts[trips[t].vehicle_type].compartments_litres[c] * m.trips[t],
    )
    litres_per_gram_hub = {}
    for h in x.hubs:
        ws = [w for w in x.waste.values() if village_hub[w.village_id] == h]
        litres_per_gram_hub[h] = max((w.litres_per_kg for w in ws), default=0.0) / 1000.0
    m.trunk_cap_back = pyo.Constraint(
        sorted(set(tu_by_t) | set(tcol_keys)),
        rule=lambda m, t: sum(m.trunk_up[key] for key in tu_by_t[t])
        + (litres_per_gram_hub[trips[t].hub_id] * m.trunk_collect[t]
           if t in tcol_keys else 0.0)
        <= sum(vts[trips[t].vehicle_type].compartments_litres.values()) * m.trips[t],
    )
    return unservable
