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


def reusable_costs_per_use(s: Scenario, r: ReusableType) -> tuple[float, float]:
    """(running, capital) cost of one use of a reusable container:

    - running  c_u = (1 − β + β/λ)·P + β(1 − 1/λ)·K: the containers lost or retired per use
      bought again at P (price plus priced production CO2e), the returned ones cleaned at K;
    - capital  a_u = P·(ℓ + 1)/(7A): a container added to the pool serves one use every
      ℓ + 1 days (issued, waiting ℓ days, picked up and cleaned) and is paid off over A
      weeks."""
    carbon = s.prices.carbon_cny_per_kg_co2e
    price = r.price_cny + carbon * r.production_co2e_kg
    clean = r.cleaning_cny + carbon * r.cleaning_co2e_kg
    beta, life = r.return_rate, r.cycle_life
    running = (1.0 - beta + beta / life) * price + beta * (1.0 - 1.0 / life) * clean
    return running, price * (r.return_lag_days + 1) / (7.0 * s.prices.pool_amortisation_weeks)


def single_use_cost(s: Scenario) -> dict[str, float]:
    """Cost per parcel of each single-use option: price, disposal and priced CO2e."""
    carbon = s.prices.carbon_cny_per_kg_co2e
    disposal = s.prices.disposal_cny_per_kg
    return {o.option_id: o.cost_cny + disposal * o.waste_grams / 1000.0 + carbon * o.co2e_kg
            for o in s.packaging.single_use}


@dataclass(frozen=True)
class PackagingRule:
    """The packaging desk's decision for a set of hubs.

    `options[(hub, class)]` lists (option, share): the class's parcels at the hub go in the
    first option, at most `share` of them, and the rest in the second (the class's cheapest
    single-use option); `expansion[(hub, type)]` is the pool expansion E_hu the rule sizes.
    With `pickup_when_due` (the rule's premise) every empty is picked up on the day it is
    due; without, the routing tool may leave it waiting (a sensitivity, not the baseline)."""

    options: dict[tuple[str, str], list[tuple[str, float]]]
    expansion: dict[tuple[str, str], float]
    pickup_when_due: bool = True


def packaging_rule(s: Scenario, hubs: list[str]) -> PackagingRule:
    """The rule, per hub h:

    - a class c goes in the reusable type u (the one of lowest running cost c_u that may
      carry it) if c_u is below the cost of c's cheapest single-use option, else in that
      option; transport is not looked at;
    - with every empty picked up when due, a day's issues come back ℓ_u days later,
      β_u(1 − 1/λ_u) of them to be cleaned: reuse is limited to the share
      σ_h = min(1, K_h / max_d Σ_u β_u(1 − 1/λ_u) N_hud) of the parcels, with K_h the hub's
      cleaning capacity and N_hud the parcels of u's classes due on day d (earliest service
      day);
    - the pool must hold the busiest day's issues ℓ_u + 1 times. It is expanded to
      E_hu = max(0, ⌈σ_h · max_d N_hud · (ℓ_u + 1)⌉ − P⁰_hu) if c_u + a_u is below the
      single-use cost of each of u's classes; otherwise the stated pool is used as far as it
      goes, reuse further limited to the share P⁰_hu / (max_d N_hud · (ℓ_u + 1)).

    The rest of a class's parcels go in its cheapest single-use option."""
    su_cost = single_use_cost(s)
    costs = {r.container_type: reusable_costs_per_use(s, r) for r in s.packaging.reusable}
    ru = {r.container_type: r for r in s.packaging.reusable}
    village_hub = {v.village_id: v.hub_id for v in s.villages}
    cheapest_su: dict[str, str] = {}
    reuse_in: dict[str, str] = {}
    for c in s.class_by_id():
        su = [o.option_id for o in s.packaging.single_use if c in o.class_ids]
        if su:
            cheapest_su[c] = min(su, key=lambda o: (su_cost[o], su.index(o)))
        types = [r.container_type for r in s.packaging.reusable if c in r.class_ids]
        if types:
            u = min(types, key=lambda u: (costs[u][0], types.index(u)))
            if c not in cheapest_su or costs[u][0] < su_cost[cheapest_su[c]]:
                reuse_in[c] = u
    due: dict[tuple[str, str, int], float] = defaultdict(float)  # (hub, type, day) -> parcels
    for g in s.demand:
        h = village_hub[g.village_id]
        if g.direction == "down" and g.parcels > 0 and h in hubs and g.class_id in reuse_in:
            due[(h, reuse_in[g.class_id], g.day)] += g.parcels
    days = range(s.horizon_days)
    cleaning = {hub.hub_id: hub.cleaning_capacity_per_day for hub in s.hubs}
    pool0 = {(p.hub_id, p.container_type): p.count for p in s.container_pools}
    share: dict[tuple[str, str], float] = {}
    expansion: dict[tuple[str, str], float] = {}
    for h in hubs:
        returns = max((sum(r.return_rate * (1.0 - 1.0 / r.cycle_life) * due[(h, u, d)]
                           for u, r in ru.items()) for d in days), default=0.0)
        clean_share = 1.0 if returns <= cleaning[h] else cleaning[h] / returns
        for u, r in ru.items():
            need = max((due[(h, u, d)] for d in days), default=0.0) * (r.return_lag_days + 1)
            # a plan with the containers on hand (the dispatch) has no expansion to size
            expand = not s.containers_on_hand and all(
                sum(costs[u]) < su_cost[cheapest_su[c]]
                for c, v in reuse_in.items() if v == u and c in cheapest_su)
            have = pool0.get((h, u), 0.0)
            if expand:
                share[(h, u)] = clean_share
                expansion[(h, u)] = float(max(0.0, math.ceil(clean_share * need - 1e-9) - have))
            else:
                share[(h, u)] = min(clean_share, have / need if need > 0 else 1.0)
                expansion[(h, u)] = 0.0
    options: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for h in hubs:
        for c in s.class_by_id():
            ct = reuse_in.get(c)
            if ct is None:
                options[(h, c)] = [(cheapest_su[c], 1.0)] if c in cheapest_su else []
            elif share[(h, ct)] < 1.0 and c in cheapest_su:
                options[(h, c)] = [(ct, share[(h, ct)]), (cheapest_su[c], 1.0)]
            else:
                options[(h, c)] = [(ct, 1.0)]
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
    if rule.pickup_when_due:
        for v in m.empties.values():
            v.fix(0.0)


def fix_routing(b: BuiltModel, single_use: BuiltModel) -> None:
    """Make the joint model `b` the packaging problem on the single-use plan's trips: every
    trip count fixed to the single-use plan's (0 for trip types it does not have, such as
    those offered only to pick up empties) and every presale group served on its days (each
    share fixed but the largest, which `serve_all` then sets exactly)."""
    counts: dict[TripType, int] = {
        t: int(round(pyo.value(single_use.model.trips[k]))) for k, t in enumerate(single_use.trips)
    }
    for k, t in enumerate(b.trips):
        b.model.trips[k].fix(counts.get(t, 0))
    for gi, days in b.flex_groups.items():
        share = {d: min(1.0, max(0.0, pyo.value(single_use.model.serve[gi, d]))) for d in days}
        largest = max(days, key=lambda d: share[d])
        for d in days:
            if d != largest:
                b.model.serve[gi, d].fix(share[d])


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
