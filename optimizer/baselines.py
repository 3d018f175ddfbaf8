"""The sequential baselines: plans made one decision after the other, as planners make them by
hand or with separate tools, so that the joint plan is measured against what people would
otherwise do rather than against a strawman (docs/optimizer.md, "Baselines").

- *Packaging first*: a packaging desk picks, per hub and temperature class, the option with
  the lowest cost per use (`unit_cost_per_use`), caps reuse at what the hub can clean and
  sizes the pool by a rule (`packaging_rule`); a routing tool then plans the trips with that
  packaging fixed and every empty picked up on the day it is due (`fix_packaging`).
- *Routing first*: the trips and service days of the single-use plan are kept, and
  packaging, pools and loads are chosen on those trips (`fix_routing`).

Both are the joint model with some variables fixed and a few rows added, so each is solved
by the same code as the joint plan, its plan is feasible for the joint model (the joint solve
starts from the better one), and `as_joint` turns such a model back into the joint model.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

import pyomo.environ as pyo

from optimizer.model import BuiltModel
from optimizer.scenario import ReusableType, Scenario
from optimizer.trips import TripType

# rows the baselines add to a joint model carry this prefix, so `as_joint` can drop them
ROW_PREFIX = "baseline_"


def reusable_cost_per_use(s: Scenario, r: ReusableType) -> float:
    """c_u = (1 − β + β/λ)·P + β(1 − 1/λ)·K + P·(ℓ + 1)/(7A): the containers lost or retired
    per use bought again at P (price plus priced production CO2e), the returned ones cleaned
    at K, and the pool's capital, a container serving one use every ℓ + 1 days paid off over
    A weeks."""
    carbon = s.prices.carbon_cny_per_kg_co2e
    price = r.price_cny + carbon * r.production_co2e_kg
    clean = r.cleaning_cny + carbon * r.cleaning_co2e_kg
    beta, life = r.return_rate, r.cycle_life
    capital = price * (r.return_lag_days + 1) / (7.0 * s.prices.pool_amortisation_weeks)
    return (1.0 - beta + beta / life) * price + beta * (1.0 - 1.0 / life) * clean + capital


def unit_cost_per_use(s: Scenario) -> dict[str, float]:
    """Cost per parcel packed in each option, transport left out: a single-use option's price,
    disposal and priced CO2e; a reusable type's `reusable_cost_per_use`."""
    carbon = s.prices.carbon_cny_per_kg_co2e
    disposal = s.prices.disposal_cny_per_kg
    out = {o.option_id: o.cost_cny + disposal * o.waste_grams / 1000.0 + carbon * o.co2e_kg
           for o in s.packaging.single_use}
    for r in s.packaging.reusable:
        out[r.container_type] = reusable_cost_per_use(s, r)
    return out


@dataclass(frozen=True)
class PackagingRule:
    """The packaging desk's decision for a set of hubs.

    `options[(hub, class)]` lists (option, share): the class's parcels at the hub go in the
    first option, at most `share` of them, and the rest in the second (the cheapest
    single-use option) when the hub cannot clean more containers; `expansion[(hub, type)]`
    is the pool expansion E_hu the rule sizes."""

    options: dict[tuple[str, str], list[tuple[str, float]]]
    expansion: dict[tuple[str, str], float]


def packaging_rule(s: Scenario, hubs: list[str]) -> PackagingRule:
    """Per hub h and class c, the option o with the lowest `unit_cost_per_use` (first listed on
    a tie). When a reusable type u wins for some classes:

    - cleaning cap: with every empty picked up when due, a day's issues come back
      ℓ_u days later, β_u(1 − 1/λ_u) of them to be cleaned; reuse is limited to the share
      σ_h = min(1, K_h / max_d Σ_u β_u(1 − 1/λ_u) N_hud) of those parcels, with K_h the
      hub's cleaning capacity and N_hud the parcels of u's classes due on day d (earliest
      service day); the rest go in the class's cheapest single-use option;
    - pool sizing: a container is out for ℓ_u + 1 days (issued, waiting ℓ_u days, picked up
      and cleaned), so the pool must hold the busiest day's issues that many times:
      E_hu = max(0, ⌈σ_h · max_d N_hud · (ℓ_u + 1)⌉ − P⁰_hu).

    Transport is not looked at: that is the routing tool's job, given this packaging."""
    unit = unit_cost_per_use(s)
    ru = {r.container_type: r for r in s.packaging.reusable}
    village_hub = {v.village_id: v.hub_id for v in s.villages}
    best: dict[str, str] = {}
    cheapest_su: dict[str, str] = {}
    for c in s.class_by_id():
        su = [o.option_id for o in s.packaging.single_use if c in o.class_ids]
        allowed = su + [r.container_type for r in s.packaging.reusable if c in r.class_ids]
        if allowed:
            best[c] = min(allowed, key=lambda o: (unit[o], allowed.index(o)))
        if su:
            cheapest_su[c] = min(su, key=lambda o: (unit[o], su.index(o)))
    due: dict[tuple[str, str, int], float] = defaultdict(float)  # (hub, type, day) -> parcels
    for g in s.demand:
        h = village_hub[g.village_id]
        if g.direction == "down" and g.parcels > 0 and h in hubs and best.get(g.class_id) in ru:
            due[(h, best[g.class_id], g.day)] += g.parcels
    cleaning = {hub.hub_id: hub.cleaning_capacity_per_day for hub in s.hubs}
    share: dict[str, float] = {}
    for h in hubs:
        returns = [sum(ru[u].return_rate * (1.0 - 1.0 / ru[u].cycle_life) * due[(h, u, d)]
                       for u in ru) for d in range(s.horizon_days)]
        peak = max(returns, default=0.0)
        share[h] = 1.0 if peak <= cleaning[h] else cleaning[h] / peak
    options: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for h in hubs:
        for c, o in best.items():
            if o in ru and share[h] < 1.0 and c in cheapest_su:
                options[(h, c)] = [(o, share[h]), (cheapest_su[c], 1.0)]
            else:
                options[(h, c)] = [(o, 1.0)]
    pool0 = {(p.hub_id, p.container_type): p.count for p in s.container_pools}
    expansion = {}
    for h in hubs:
        for u, r in ru.items():
            peak = max((due[(h, u, d)] for d in range(s.horizon_days)), default=0.0)
            need = math.ceil(share[h] * peak * (r.return_lag_days + 1) - 1e-9)
            expansion[(h, u)] = float(max(0.0, need - pool0.get((h, u), 0.0)))
    return PackagingRule(options, expansion)


def fix_packaging(b: BuiltModel, s: Scenario, rule: PackagingRule) -> None:
    """Make the joint model `b` the routing tool's problem under `rule`: options the rule did
    not pick fixed to 0, reuse limited to its share (`baseline_share`, whole parcels rounded
    down), the pool expansion fixed, and no empty left waiting at a village after the day it
    is due (waiting empties fixed to 0)."""
    m = b.model
    village_hub = {v.village_id: v.hub_id for v in s.villages}
    keys_of: dict[tuple[str, int, str], list[tuple[str, int, str, str]]] = defaultdict(list)
    for key in b.pack_keys:
        keys_of[key[:3]].append(key)
    share_rows: list[tuple[str, int, str]] = []
    share_of: dict[tuple[str, int, str], tuple[str, float]] = {}
    for idc, keys in keys_of.items():
        chosen = dict(rule.options.get((village_hub[idc[0]], idc[2]), []))
        for key in keys:
            if key[3] not in chosen:
                m.pack[key].fix(0.0)
        first, first_share = next(iter(chosen.items()), ("", 1.0))
        if first_share < 1.0:
            share_rows.append(idc)
            share_of[idc] = (first, first_share)
    whole = 1.0 if s.packaging.whole_parcels else 0.0

    def total(m, idc):
        return sum(m.pack[k] for k in keys_of[idc])

    m.add_component(ROW_PREFIX + "share_max", pyo.Constraint(
        share_rows, rule=lambda m, i, d, c: m.pack[i, d, c, share_of[(i, d, c)][0]]
        <= share_of[(i, d, c)][1] * total(m, (i, d, c))))
    m.add_component(ROW_PREFIX + "share_min", pyo.Constraint(
        share_rows, rule=lambda m, i, d, c: m.pack[i, d, c, share_of[(i, d, c)][0]]
        >= share_of[(i, d, c)][1] * total(m, (i, d, c)) - whole))
    for (h, u), e in rule.expansion.items():
        if (h, u) in m.expand:
            m.expand[h, u].fix(e)
    for v in m.empties.values():
        v.fix(0.0)


def fix_routing(b: BuiltModel, single_use: BuiltModel) -> None:
    """Make the joint model `b` the packaging problem on the single-use plan's trips: every
    trip count fixed to the single-use plan's (0 for trip types it does not have, such as
    those offered only to pick up empties) and every presale group served on its days."""
    counts: dict[TripType, int] = {
        t: int(round(pyo.value(single_use.model.trips[k]))) for k, t in enumerate(single_use.trips)
    }
    for k, t in enumerate(b.trips):
        b.model.trips[k].fix(counts.get(t, 0))
    for idx, v in b.model.serve.items():
        v.fix(pyo.value(single_use.model.serve[idx]))


def as_joint(b: BuiltModel) -> None:
    """Undo `fix_packaging` / `fix_routing`: free every variable and drop the rows they added,
    leaving the joint model with the baseline's plan as its values (a feasible start)."""
    m = b.model
    for comp in m.component_objects(pyo.Var, active=True):
        for v in comp.values():
            v.unfix()
    for comp in list(m.component_objects(pyo.Constraint, active=True)):
        if comp.name.startswith(ROW_PREFIX):
            comp.deactivate()
