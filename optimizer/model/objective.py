"""The objective (docs/optimizer.md, "Objective"): the plan's cost in CNY, carbon priced in."""

from __future__ import annotations

import pyomo.environ as pyo

from optimizer.model.pools import PoolFlows
from optimizer.model.sets import ModelSets
from optimizer.trips import vehicle_co2e_per_km


def add_objective(m: pyo.ConcreteModel, x: ModelSets, flows: PoolFlows) -> None:
    """`cost`, minimised:

        Σ_t y_t (f_v + c_v κ_t + p_CO2 ε_v κ_t)
        + Σ_{idco} (x_idco + x^up_idco) (cost_o + p_disp waste_o + p_CO2 co2_o)
        + Σ_hud [(clean_u + p_CO2 co2clean_u) b_hud + (price_u + p_CO2 co2prod_u) B_hud]
        + Σ_hu (price_u + p_CO2 co2prod_u) (|D|/7)/A · E_hu

    with κ_t the trip's km, ε_v kg CO2e per km (reefer uplift included), A the pool
    amortisation in weeks, and for a reusable option o cost_o, waste_o, co2_o the single-use
    items that go with each use (ice packs in an insulated box). A container is paid once,
    when bought: replacements at full price, a pool expansion spread over A weeks; no per-use
    depreciation on top."""
    s = x.scenario
    carbon = s.prices.carbon_cny_per_kg_co2e
    weeks = x.days / 7.0 / s.prices.pool_amortisation_weeks
    trip_cost = trip_costs(x)
    per_parcel = pack_costs(x)
    obj = sum(trip_cost[t] * m.trips[t] for t in range(len(x.trips)))
    for var, keys in ((m.pack, x.pack_keys), (m.pack_up, x.pack_up_keys)):
        obj += sum(per_parcel[k[3]] * var[k] for k in keys)
    for h in x.hubs:
        for ct in x.container_types:
            r = x.reusable[ct]
            clean = r.cleaning_cny + carbon * r.cleaning_co2e_kg
            unit = r.price_cny + carbon * r.production_co2e_kg
            obj += unit * weeks * m.expand[h, ct]
            for d in range(x.days):
                obj += unit * m.buy[h, ct, d] + clean * flows.returned(m, h, ct, d)
    m.cost = pyo.Objective(expr=obj, sense=pyo.minimize)
    add_criteria(m, x, flows)


def pack_costs(x: ModelSets) -> dict[str, float]:
    """cost_o + p_disp waste_o + p_CO2 co2_o per packaging option: the objective's coefficient
    of a parcel packed in o (also the floor bound's, `model.covers.cost_floor`, which must be
    the same). For a reusable option what goes with each use; washing and buying are the
    pools' terms."""
    s = x.scenario
    carbon = s.prices.carbon_cny_per_kg_co2e
    disposal = s.prices.disposal_cny_per_kg
    out = {u: r.per_use_cost_cny + disposal * r.per_use_waste_grams / 1000.0
           + carbon * r.per_use_co2e_kg for u, r in x.reusable.items()}
    out.update({o: r.cost_cny + disposal * r.waste_grams / 1000.0 + carbon * r.co2e_kg
                for o, r in x.single_use.items()})
    return out


def trip_costs(x: ModelSets) -> list[float]:
    """f_v + c_v κ_t + p_CO2 ε_v κ_t per trip type: the objective's coefficient of y_t (also
    the trip-cost floors' costs, which must be the same)."""
    carbon = x.scenario.prices.carbon_cny_per_kg_co2e
    out = []
    for t, tt in enumerate(x.trips):
        vt = x.vehicle_types[tt.vehicle_type]
        km = x.trip_km[t]
        out.append(vt.fixed_cost_cny + vt.cost_per_km_cny * km
                   + carbon * vehicle_co2e_per_km(vt) * km)
    return out


def add_criteria(m: pyo.ConcreteModel, x: ModelSets, flows: PoolFlows) -> None:
    """`co2e_kg` and `single_use_grams`, the plan's other two criteria as expressions (not
    rows): the trade-off frontier (`optimizer.frontier`) bounds one of them while it
    minimises `cost`. The same sums as `optimizer.kpis`:

        co2e = Σ_t y_t ε_v κ_t + Σ_{idco} (x_idco + x^up_idco) co2_o
               + Σ_hud (co2clean_u b_hud + co2prod_u B_hud) + Σ_hu co2prod_u (|D|/7)/A E_hu
        single-use grams = Σ_{idco} (x_idco + x^up_idco) waste_o"""
    s = x.scenario
    weeks = x.days / 7.0 / s.prices.pool_amortisation_weeks
    co2_of = {o: opt.co2e_kg for o, opt in x.single_use.items()}
    co2_of.update({u: r.per_use_co2e_kg for u, r in x.reusable.items()})
    grams_of = {o: opt.waste_grams for o, opt in x.single_use.items()}
    grams_of.update({u: r.per_use_waste_grams for u, r in x.reusable.items()})
    co2 = sum(vehicle_co2e_per_km(x.vehicle_types[tt.vehicle_type]) * x.trip_km[t] * m.trips[t]
              for t, tt in enumerate(x.trips))
    grams = 0.0
    for var, keys in ((m.pack, x.pack_keys), (m.pack_up, x.pack_up_keys)):
        co2 += sum(co2_of[k[3]] * var[k] for k in keys if co2_of[k[3]])
        grams += sum(grams_of[k[3]] * var[k] for k in keys if grams_of[k[3]])
    for h in x.hubs:
        for ct in x.container_types:
            r = x.reusable[ct]
            co2 += r.production_co2e_kg * weeks * m.expand[h, ct]
            for d in range(x.days):
                co2 += (r.production_co2e_kg * m.buy[h, ct, d]
                        + r.cleaning_co2e_kg * flows.returned(m, h, ct, d))
    m.co2e_kg = pyo.Expression(expr=co2)
    m.single_use_grams = pyo.Expression(expr=grams)
