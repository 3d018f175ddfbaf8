"""Container pools (docs/optimizer.md, "Containers" and "Horizon ends"): the
reusable containers issued at the hubs, waiting empty at the villages, picked up, cleaned,
retired and bought, per container type u with return rate β_u, return lag ℓ_u days and
cycle life λ_u."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pyomo.environ as pyo
from pyomo.core.expr.numvalue import is_constant

from optimizer.model.sets import ModelSets


class PoolFlows:
    """The pools' affine expressions: containers issued at a village (q_iud), issued at a
    hub, filled with farm goods at a village (r_iud), and returned to a hub's pool (b_hud)."""

    def __init__(self, x: ModelSets) -> None:
        self.x = x
        self.issue_keys: dict[tuple[str, str, int], list[tuple[str, int, str, str]]] = (
            defaultdict(list))
        for key in x.pack_keys:
            i, d, _c, o = key
            if o in x.reusable:
                self.issue_keys[(i, o, d)].append(key)
        self.up_keys: dict[tuple[str, str, int], list[tuple[str, int, str, str]]] = (
            defaultdict(list))
        for key in x.pack_up_keys:
            i, d, _c, o = key
            if o in x.reusable:
                self.up_keys[(i, o, d)].append(key)
        self.villages_of_hub: dict[str, list[str]] = defaultdict(list)
        for i, h in x.village_hub.items():
            self.villages_of_hub[h].append(i)

    def issued(self, m: pyo.ConcreteModel, i: str, ct: str, d: int) -> Any:
        """q_iud = Σ_c x_idcu; a day before the horizon wraps (cyclic) or issued none."""
        days = self.x.days
        if d < 0:
            if self.x.scenario.horizon_end != "cyclic":
                return 0.0
            d %= days
        return sum(m.pack[k] for k in self.issue_keys.get((i, ct, d), ()))

    def issued_at_hub(self, m: pyo.ConcreteModel, h: str, ct: str, d: int) -> Any:
        return sum(self.issued(m, i, ct, d) for i in self.villages_of_hub[h]
                   if ct in self.x.empties_at.get(i, ()))

    def used_up(self, m: pyo.ConcreteModel, i: str, ct: str, d: int) -> Any:
        """r_iud = Σ_c x^up_idcu: empties at village i filled with farm goods on day d."""
        return sum(m.pack_up[k] for k in self.up_keys.get((i, ct, d), ()))

    def returned(self, m: pyo.ConcreteModel, h: str, ct: str, d: int) -> Any:
        """b_hud = (1 - 1/λ_u) Σ_{i ∈ I_h} (Σ_{t ∋ i, d} π_iut + r_iud): the empties picked up
        and the containers that came up full, less the share that retires at the end of its
        cycle life."""
        keep = 1.0 - 1.0 / self.x.reusable[ct].cycle_life
        pick_by_ict_d = self.x.loads.pick_by_ict_d
        return keep * sum(
            sum(m.pick[k] for k in pick_by_ict_d.get((i, ct, d), ())) + self.used_up(m, i, ct, d)
            for i in self.villages_of_hub[h])


def add_container_pools(m: pyo.ConcreteModel, x: ModelSets) -> PoolFlows:
    """Variables `empties` e_iud (waiting at village i at the end of day d), `expand` E_hu
    (pool expansion over the stated start P⁰_hu), `stock` S_hud (at the hub at the end of
    day d), `stock_start` S_hu,-1 and `buy` B_hud, all ≥ 0:

    - `empties_balance`:  e_iud = e_iu,d-1 + β_u q_iu,d-ℓ_u + o_iud − Σ_{t ∋ i, d} π_iut
      − r_iud (r_iud: empties filled with farm goods at the village, which ride up full and
      are back in the hub's pool that evening; o_iud: containers out at the start that wait
      empty from day d, `containers_out`, boundary horizon only: they are not in P⁰);
    - `pool_covers`:  S_hu,-1 + Σ_{i ∈ I_h} (e_iu,-1 + β_u Σ_{k=1..ℓ_u} q_iu,-k) ≤ P⁰_hu + E_hu:
      the pool owned at the start covers the containers at the hub, those waiting empty at
      the villages and those still with the customers. Cyclic: day −1 is day |D|−1 and
      days before 0 wrap modulo |D|, so what circulates across the week's boundary is paid
      for; boundary: nothing is in flight at the start. With the balances below, on every
      day d the containers at the hub, at the villages and with the customers add up to
      P⁰ + E + what was bought − what was lost or retired;
    - `pool_issue`:  S_hu,d-1 + B_hud − Σ_{i ∈ I_h} q_iud ≥ 0  (issue only from stock);
    - `pool_balance`:  S_hud = S_hu,d-1 + B_hud − Σ_i q_iud + b_hud;
    - `pool_end`:  cyclic: S_hu,|D|-1 ≥ S_hu,-1 (with the wrapped empties and issues, the
      circulation ends where it started); boundary: the end pool plus everything still in
      flight (waiting empties, and containers issued in the last ℓ_u days at the return
      rate, less retirements) ≥ P⁰_hu + E_hu (+ the containers out at the start, less
      retirements);
    - `cleaning_capacity`:  Σ_u b_hud ≤ the hub's cleaning capacity per day;
    - with `containers_on_hand` (the daily dispatch): E_hu = 0 and `pool_on_hand`
      S_hu,-1 − Σ_i q_iu0 ≥ 0 (day 0's issues from the stock at the start, not from
      containers bought that day).

    Returns the flows, which the objective prices."""
    D = x.days
    cyclic = x.scenario.horizon_end == "cyclic"
    ru = x.reusable
    flows = PoolFlows(x)
    hub_ct = [(h, ct) for h in x.hubs for ct in x.container_types]
    ev_keys = [(i, ct, d) for i, cts in x.empties_at.items() for ct in cts for d in range(D)]
    m.empties = pyo.Var(ev_keys, domain=pyo.NonNegativeReals)

    def ev_prev(m, i, ct, d):
        if d > 0:
            return m.empties[i, ct, d - 1]
        return m.empties[i, ct, D - 1] if cyclic else 0.0

    m.empties_balance = pyo.Constraint(
        ev_keys,
        rule=lambda m, i, ct, d: m.empties[i, ct, d]
        == ev_prev(m, i, ct, d)
        + ru[ct].return_rate * flows.issued(m, i, ct, d - ru[ct].return_lag_days)
        + x.empties_arriving.get((i, ct, d), 0.0)
        - sum(m.pick[k] for k in x.loads.pick_by_ict_d.get((i, ct, d), ()))
        - flows.used_up(m, i, ct, d),
    )
    m.expand = pyo.Var(hub_ct, domain=pyo.NonNegativeReals)
    pool_days = [(h, ct, d) for h, ct in hub_ct for d in range(D)]
    m.stock = pyo.Var(pool_days, domain=pyo.NonNegativeReals)
    m.buy = pyo.Var(pool_days, domain=pyo.NonNegativeReals)
    m.stock_start = pyo.Var(hub_ct, domain=pyo.NonNegativeReals)

    def stock_prev(m, h, ct, d):
        return m.stock[h, ct, d - 1] if d > 0 else m.stock_start[h, ct]

    def pool_covers(m, h, ct):
        r = ru[ct]
        out_at_start = 0.0
        if cyclic:
            out_at_start = sum(
                m.empties[i, ct, D - 1] + r.return_rate * sum(
                    flows.issued(m, i, ct, -k) for k in range(1, r.return_lag_days + 1))
                for i in flows.villages_of_hub[h] if ct in x.empties_at.get(i, ()))
        return m.stock_start[h, ct] + out_at_start <= x.pool_start[(h, ct)] + m.expand[h, ct]

    m.pool_covers = pyo.Constraint(hub_ct, rule=pool_covers)

    m.pool_issue = pyo.Constraint(
        pool_days,
        rule=lambda m, h, ct, d: stock_prev(m, h, ct, d) + m.buy[h, ct, d]
        - flows.issued_at_hub(m, h, ct, d) >= 0,
    )
    m.pool_balance = pyo.Constraint(
        pool_days,
        rule=lambda m, h, ct, d: m.stock[h, ct, d]
        == stock_prev(m, h, ct, d) + m.buy[h, ct, d] - flows.issued_at_hub(m, h, ct, d)
        + flows.returned(m, h, ct, d),
    )

    def pool_end(m, h, ct):
        r = ru[ct]
        end = m.stock[h, ct, D - 1]
        if cyclic:
            return end >= m.stock_start[h, ct]
        keep = 1.0 - 1.0 / r.cycle_life
        in_flight = sum(
            m.empties[i, ct, D - 1] + r.return_rate * sum(
                flows.issued(m, i, ct, d) for d in range(max(0, D - r.return_lag_days), D))
            for i in flows.villages_of_hub[h] if ct in x.empties_at.get(i, ()))
        # the containers out at the start are the hub's too: they must be back or still
        # out at the end (less retirements, as the plan's own)
        out = sum(n for (i, u, _d), n in x.empties_arriving.items()
                  if u == ct and x.village_hub[i] == h)
        return end + keep * in_flight >= x.pool_start[(h, ct)] + m.expand[h, ct] + keep * out

    m.pool_end = pyo.Constraint(hub_ct, rule=pool_end)
    if x.scenario.containers_on_hand:
        # A run sheet drops the boxes the hub has: planned with expansion, tomorrow's sheet
        # told a hub holding 367 crates to drop 841 (an outside audit). Buying stays open
        # from day 1 on (replacing losses, as the end condition asks).
        for key in hub_ct:
            m.expand[key].setub(0.0)
        m.pool_on_hand = pyo.Constraint(
            hub_ct, rule=lambda m, h, ct: m.stock_start[h, ct]
            - flows.issued_at_hub(m, h, ct, 0) >= 0)
    ctypes = x.container_types
    def cleaning_capacity(m, h, d):
        returned = sum(flows.returned(m, h, ct, d) for ct in ctypes)
        if is_constant(returned):  # nothing can come back that day: no row (capacity ≥ 0)
            return pyo.Constraint.Skip
        return returned <= next(hub.cleaning_capacity_per_day for hub in x.scenario.hubs
                                if hub.hub_id == h)

    m.cleaning_capacity = pyo.Constraint(
        [(h, d) for h in x.hubs for d in range(D)] if ctypes else [], rule=cleaning_capacity)
    return flows
