"""The objective (docs/optimizer.md, "Objective"): the plan's cost in CNY, carbon priced in."""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.model.pools import PoolFlows
from optimizer.model.sets import ModelSets
from optimizer.trips import vehicle_co2e_per_km


def add_objective(m: pyo.ConcreteModel, x: ModelSets, flows: PoolFlows) -> None:
    """`cost`, minimised:

        Σ_t y_t (f_v + c_v κ_t + p_CO2 ε_v κ_t)
        + Σ_{idco, o single-use} x_idco (cost_o + p_disp waste_o + p_CO2 co2_o)
        + Σ_hud [(clean_u + p_CO2 co2clean_u) b_hud + (price_u + p_CO2 co2prod_u) B_hud]
        + Σ_hu (price_u + p_CO2 co2prod_u) (|D|/7)/A · E_hu

    with κ_t the trip's km, ε_v kg CO2e per km (reefer uplift included) and A the pool
    amortisation in weeks. A container is paid once, when bought: replacements at full
    price, a pool expansion spread over A weeks; no per-use depreciation on top."""
    s = x.scenario
    vts = x.vehicle_types
    su = x.single_use
    carbon = s.prices.carbon_cny_per_kg_co2e
    disposal = s.prices.disposal_cny_per_kg
    weeks = x.days / 7.0 / s.prices.pool_amortisation_weeks
    trip_cost = []
    for t, tt in enumerate(x.trips):
        vt = vts[tt.vehicle_type]
        km = x.trip_km[t]
        trip_cost.append(
            vt.fixed_cost_cny + vt.cost_per_km_cny * km + carbon * vehicle_co2e_per_km(vt) * km
        )
    su_unit = {
        o: su[o].cost_cny + disposal * su[o].waste_grams / 1000.0 + carbon * su[o].co2e_kg
        for o in su
    }
    obj = sum(trip_cost[t] * m.trips[t] for t in range(len(x.trips)))
    obj += sum(su_unit[k[3]] * m.pack[k] for k in x.pack_keys if k[3] in su)
    for h in x.hubs:
        for ct in x.container_types:
            r = x.reusable[ct]
            clean = r.cleaning_cny + carbon * r.cleaning_co2e_kg
            unit = r.price_cny + carbon * r.production_co2e_kg
            obj += unit * weeks * m.expand[h, ct]
            for d in range(x.days):
                obj += unit * m.buy[h, ct, d] + clean * flows.returned(m, h, ct, d)
    m.cost = pyo.Objective(expr=obj, sense=pyo.minimize)
