"""Property checks applied to every plan the tests produce.

Written against the plan JSON and the scenario only, with its own arithmetic, so that a
model bug and a KPI bug cannot cancel out.
"""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from optimizer import PlanResult, Scenario

TOL = 1e-5


def _close(a: float, b: float, what: str) -> None:
    assert math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-4), f"{what}: {a} != {b}"


def check_service(plan: dict, s: Scenario) -> None:
    """Every demand group is served in full, on days inside its window."""
    share = defaultdict(float)
    for row in plan["service"]:
        g = s.demand[row["demand_index"]]
        last = min(g.day + g.flex_days, s.horizon_days - 1)
        assert g.day <= row["day"] <= last, f"demand {row['demand_index']} served off-window"
        share[row["demand_index"]] += row["share"]
    hubs = set(plan["hubs"])
    vh = {v.village_id: v.hub_id for v in s.villages}
    for k, g in enumerate(s.demand):
        if vh[g.village_id] in hubs and g.parcels > 0:
            _close(share[k], 1.0, f"demand {k} served share")


def _option_litres(s: Scenario, option: str, class_id: str) -> float:
    """A delivered parcel of `class_id` in `option`: the option's litres, else the class's."""
    for o in [*s.packaging.single_use, *s.packaging.reusable]:
        if (getattr(o, "option_id", None) or getattr(o, "container_type", None)) == option:
            if o.litres_per_parcel is not None:
                return o.litres_per_parcel
    return s.class_by_id()[class_id].litres_per_parcel


def check_deliveries(plan: dict, s: Scenario) -> None:
    """Every parcel served is packed (delivered parcels always; farm shipments when some
    option packs their class up), in options allowed for its class and direction; the litres
    delivered per village, day and class are those of the parcels as packed, and the litres
    collected those of the farm shipments served."""
    served = {"down": defaultdict(float), "up": defaultdict(float)}
    want_up = defaultdict(float)
    for row in plan["service"]:
        g = s.demand[row["demand_index"]]
        key = (g.village_id, row["day"], g.class_id)
        served[g.direction][key] += row["share"] * g.parcels
        if g.direction == "up":
            vol = g.volume_litres if g.volume_litres is not None else (
                g.parcels * s.class_by_id()[g.class_id].litres_per_parcel)
            want_up[key] += row["share"] * vol
    packed = {"down": defaultdict(float), "up": defaultdict(float)}
    want_down = defaultdict(float)
    allowed = {"down": defaultdict(set), "up": defaultdict(set)}
    for o in s.packaging.single_use:
        for c in o.class_ids:
            allowed["down"][c].add(o.option_id)
        for c in o.up_class_ids:
            allowed["up"][c].add(o.option_id)
    for r in s.packaging.reusable:
        for c in r.class_ids:
            allowed["down"][c].add(r.container_type)
        for c in r.up_class_ids:
            allowed["up"][c].add(r.container_type)
    for p in plan["packaging"]:
        key = (p["village_id"], p["day"], p["class_id"])
        assert p["option"] in allowed[p["direction"]][p["class_id"]], f"packed in {p}"
        packed[p["direction"]][key] += p["parcels"]
        if p["direction"] == "down":
            want_down[key] += p["parcels"] * _option_litres(s, p["option"], p["class_id"])
    for key in set(served["down"]) | set(packed["down"]):
        _close(packed["down"][key], served["down"][key], f"parcels packed {key}")
    packs_up = {c for c, options in allowed["up"].items()
                if options & {o.option_id for o in s.packaging.single_use}}
    for key in set(served["up"]) | set(packed["up"]):
        if key[2] in packs_up:
            _close(packed["up"][key], served["up"][key], f"farm parcels packed {key}")
        else:
            assert not packed["up"][key], f"farm parcels {key} packed without an up option"
    got_down = defaultdict(float)
    got_up = defaultdict(float)
    for t in plan["trips"]:
        if t["kind"] != "milk_run":
            continue
        for i, sl in t["stop_loads"].items():
            for key, x in sl.items():
                if key.startswith("down_litres."):
                    got_down[(i, t["day"], key.split(".", 1)[1])] += x
                elif key.startswith("up_litres."):
                    got_up[(i, t["day"], key.split(".", 1)[1])] += x
    for key in set(want_down) | set(got_down):
        _close(got_down[key], want_down[key], f"down litres {key}")
    for key in set(want_up) | set(got_up):
        _close(got_up[key], want_up[key], f"up litres {key}")


def check_shifts(minutes: list[float], vt, vehicles: int, what: str) -> None:
    """The trips of one vehicle type, base and day can be given to `vehicles` vehicles so
    that none drives longer than its shift or more than `max_trips_per_day` trips.

    A trip that fits m times in a shift (at most `max_trips_per_day`) takes 1/m of a
    vehicle-day; trips go largest share first to the first vehicle with room."""

    def share(mins: float) -> float:
        m = min(vt.max_trips_per_day, math.floor(vt.shift_minutes / mins + 1e-9))
        assert m >= 1, f"{what}: a trip of {mins:.0f} min is longer than the shift"
        return 1 / m

    days: list[list[float]] = []
    for mins in sorted(minutes, reverse=True):
        for vehicle in days:
            if sum(share(x) for x in vehicle) + share(mins) <= 1 + 1e-9:
                vehicle.append(mins)
                break
        else:
            days.append([mins])
    assert len(days) <= vehicles, f"{what}: {len(minutes)} trips need {len(days)} vehicles"
    for vehicle in days:
        assert sum(vehicle) <= vt.shift_minutes + 1e-6 and len(vehicle) <= vt.max_trips_per_day


def check_capacity_and_temperature(plan: dict, s: Scenario) -> None:
    """Compartment and return-leg capacities hold (milk runs and trunk legs), classes ride
    only where allowed, cold goods outside a cold compartment are covered by passive
    packaging, trips last as the vehicle's speed and stops say, and each day's trips fit on
    the vehicles within their shifts."""
    vts = {v.vehicle_type: v for v in s.vehicle_types}
    cls = s.class_by_id()
    ru = {r.container_type: r for r in s.packaging.reusable}
    lpw = {w.village_id: w.litres_per_kg / 1000 for w in s.outstanding_waste}
    vh = {v.village_id: v.hub_id for v in s.villages}
    passive_needed = defaultdict(float)
    fleet: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for t in plan["trips"]:
        vt = vts[t["vehicle_type"]]
        assert t["km"] <= vt.max_route_km + TOL
        stops = len(t["stops"]) if t["kind"] == "milk_run" else 1
        _close(t["minutes"], 60 * t["km"] / vt.speed_kmh + vt.service_minutes_per_stop * stops,
               "trip minutes")
        if t["kind"] == "milk_run":
            assert len(t["stops"]) <= vt.max_stops
            fleet[(t["hub_id"], t["vehicle_type"], t["day"])].append(t["minutes"])
        else:
            fleet[("county", t["vehicle_type"], t["day"])].append(t["minutes"])
        for k, c in t["compartments_litres"].items():
            assert c["down"] <= c["capacity"] * (1 + 1e-7) + TOL, f"outbound {k} over capacity"
            assert c["up"] <= c["capacity"] * (1 + 1e-7) + TOL, f"return {k} over capacity"
        back = sum(t["loads"]["up_litres"].values())
        back += sum(ru[ct].nested_litres * n for ct, n in t["loads"]["empties"].items())
        for i, sl in t.get("stop_loads", {}).items():
            back += sl.get("recyclables_grams", 0.0) * lpw.get(i, 0.0)
            for key, x in sl.items():
                if key.startswith("passive_in_"):
                    comp, c = key[len("passive_in_"):].split("_litres.")
                    assert cls[c].refrigerated and not cls[comp].refrigerated
                    assert vt.passive_cold_allowed
                    passive_needed[(i, t["day"], c)] += x
        if t["kind"] == "trunk":  # recyclables ride mixed: the hub's bulkiest litres per gram
            back += t["loads"]["recyclables_grams"] * max(
                (w.litres_per_kg / 1000 for w in s.outstanding_waste
                 if w.grams > 0 and vh[w.village_id] == t["hub_id"]), default=0.0)
        assert back <= sum(vt.compartments_litres.values()) * (1 + 1e-7) + TOL, (
            f"{t['kind']} on day {t['day']} over capacity on its way back")
        for c in t["loads"]["down_litres"]:
            assert c in vt.compartments_litres or (cls[c].refrigerated and vt.passive_cold_allowed)
        for c in t["loads"]["up_litres"]:
            assert c in vt.compartments_litres, "farm shipments ride in their own compartment"
    passive_opts = {o.option_id for o in s.packaging.single_use if o.passive} | {
        r.container_type for r in s.packaging.reusable if r.passive}
    passive_packed = defaultdict(float)
    for p in plan["packaging"]:
        if p["option"] in passive_opts and p["direction"] == "down":
            passive_packed[(p["village_id"], p["day"], p["class_id"])] += (
                p["parcels"] * _option_litres(s, p["option"], p["class_id"]))
    for key, x in passive_needed.items():
        assert x <= passive_packed[key] + 1e-4, f"cold goods without passive packaging {key}"
    for (h, v, d), minutes in fleet.items():
        vt = vts[v]
        limit = vt.count if h == "county" else s.hub_vehicle_count(vt, h)
        if limit is not None:
            check_shifts(minutes, vt, limit, f"{v} at {h} on day {d}")


def _stop_loads(sl: dict, s: Scenario) -> tuple[dict, dict, float, float]:
    """One stop of one trip: litres delivered and picked up per compartment, and litres
    delivered and picked up in all (empties nested; recyclables are the caller's)."""
    ru = {r.container_type: r for r in s.packaging.reusable}
    down_k: dict[str, float] = defaultdict(float)
    up_k: dict[str, float] = defaultdict(float)
    down = back = 0.0
    for key, x in sl.items():
        if key.startswith("down_litres."):
            down_k[key.split(".", 1)[1]] += x
            down += x
        elif key.startswith("passive_in_"):
            comp, c = key[len("passive_in_"):].split("_litres.")
            down_k[comp] += x
            down_k[c] -= x
        elif key.startswith("up_litres."):
            up_k[key.split(".", 1)[1]] += x
            back += x
        elif key.startswith("empties."):
            back += ru[key.split(".", 1)[1]].nested_litres * x
    return down_k, up_k, down, back


def check_tour_loads(plan: dict, s: Scenario) -> None:
    """At every point of every milk run, in its stop order, the goods still to deliver plus
    everything picked up so far fit, per compartment and in total."""
    vts = {v.vehicle_type: v for v in s.vehicle_types}
    lpw = {w.village_id: w.litres_per_kg / 1000 for w in s.outstanding_waste}
    for t in plan["trips"]:
        if t["kind"] != "milk_run":
            continue
        vt = vts[t["vehicle_type"]]
        per_stop = []
        for i in t["stops"]:
            sl = t["stop_loads"].get(i, {})
            down_k, up_k, down, back = _stop_loads(sl, s)
            back += sl.get("recyclables_grams", 0.0) * lpw.get(i, 0.0)
            per_stop.append((down_k, up_k, down, back))
        for j in range(len(per_stop) + 1):
            ahead, behind = per_stop[j:], per_stop[:j]
            for k, cap in vt.compartments_litres.items():
                load = sum(p[0].get(k, 0.0) for p in ahead) + sum(p[1].get(k, 0.0)
                                                                  for p in behind)
                assert load <= cap * (1 + 1e-7) + TOL, (
                    f"{k} compartment over capacity after stop {j} of {t['stops']}: {load}")
            load = sum(p[2] for p in ahead) + sum(p[3] for p in behind)
            assert load <= sum(vt.compartments_litres.values()) * (1 + 1e-7) + TOL, (
                f"trip over capacity after stop {j} of {t['stops']}: {load}")


def _issues_and_pickups(plan: dict, s: Scenario) -> tuple[dict, dict]:
    """Containers issued, and containers leaving a village (empties picked up, or filled
    with farm goods), per (village, container type, day)."""
    ru = {r.container_type for r in s.packaging.reusable}
    issued: dict[tuple[str, str, int], float] = defaultdict(float)
    picked: dict[tuple[str, str, int], float] = defaultdict(float)
    for p in plan["packaging"]:
        if p["option"] in ru:
            into = issued if p["direction"] == "down" else picked  # up: back full, same day
            into[(p["village_id"], p["option"], p["day"])] += p["parcels"]
    for t in plan["trips"]:
        for i, sl in t.get("stop_loads", {}).items():
            for key, x in sl.items():
                if key.startswith("empties."):
                    picked[(i, key.split(".", 1)[1], t["day"])] += x
    return issued, picked


def check_pools(plan: dict, s: Scenario) -> None:
    """Containers are issued only from stock and the stock balances day by day; empties are
    picked up only after their return lag; on every day the pool owned covers the containers
    at the hub, waiting at the villages and still with the customers (cyclic: those out across
    the week's boundary too); cleaning stays within capacity; the horizon's end condition
    holds."""
    days = s.horizon_days
    cyclic = s.horizon_end == "cyclic"
    ru = {r.container_type: r for r in s.packaging.reusable}
    vh = {v.village_id: v.hub_id for v in s.villages}
    issued, picked = _issues_and_pickups(plan, s)
    # containers out at the start: not in the stated pool; they wait empty from their day
    arriving: dict[tuple[str, str, int], float] = defaultdict(float)
    for co in s.containers_out:
        arriving[(co.village_id, co.container_type, co.day)] += co.count
    cleaned: dict[tuple[str, int], float] = defaultdict(float)
    for c in plan["containers"]:
        h, ct = c["hub_id"], c["container_type"]
        r = ru[ct]
        lag, rate, keep = r.return_lag_days, r.return_rate, 1 - 1 / r.cycle_life
        villages = sorted({i for (i, u, _d) in list(issued) + list(picked) + list(arriving)
                           if u == ct and vh[i] == h} | set(c["empties_at_villages_end"]))

        def q(i: str, d: int, ct: str = ct) -> float:
            if d < 0 and not cyclic:
                return 0.0
            return issued.get((i, ct, d % days), 0.0)

        def with_customers(d: int, villages: list[str] = villages, lag: int = lag,
                           rate: float = rate) -> float:
            return rate * sum(q(i, d - k) for i in villages for k in range(lag))

        waiting = {i: c["empties_at_villages_end"].get(i, 0.0) if cyclic else 0.0
                   for i in villages}
        owned = c["start_pool"] + c["expansion"]
        stock = c["stock_start"]
        if s.containers_on_hand:  # the dispatch: tomorrow's boxes are the ones held
            assert c["expansion"] <= 1e-6, f"pool {h}/{ct} expanded with containers on hand"
            assert sum(q(i, 0) for i in villages) <= stock + 1e-4, (
                f"pool {h}/{ct} issues more on day 0 than its stock at the start")
        assert stock + sum(waiting.values()) + with_customers(-1) <= owned + 1e-4, (
            f"pool {h}/{ct} does not cover the containers in circulation at the start")
        for d, row in enumerate(c["days"]):
            _close(row["issued"], sum(q(i, d) for i in villages), f"issued {h}/{ct} day {d}")
            assert stock + row["bought"] - row["issued"] >= -1e-6, "issued more than in stock"
            picks = 0.0
            for i in villages:
                owned += arriving.get((i, ct, d), 0.0)
                waiting[i] += (rate * q(i, d - lag) + arriving.get((i, ct, d), 0.0)
                               - picked.get((i, ct, d), 0.0))
                picks += picked.get((i, ct, d), 0.0)
                assert waiting[i] >= -1e-4, f"empties picked up at {i} before their return lag"
            _close(row["picked_up"] + row["used_up"], picks, f"collected {h}/{ct} day {d}")
            _close(row["returned_to_pool"], keep * picks, f"returned {h}/{ct} day {d}")
            cleaned[(h, d)] += row["returned_to_pool"]
            stock = stock + row["bought"] - row["issued"] + row["returned_to_pool"]
            _close(stock, row["stock_end"], "pool balance")
            assert row["stock_end"] >= -1e-6
            _close(sum(waiting.values()), row["empties_at_villages"], f"empties {h}/{ct} day {d}")
            owned += row["bought"] - (1 - rate) * row["issued"] - (1 - keep) * picks
            assert stock + sum(waiting.values()) + with_customers(d) <= owned + 1e-4, (
                f"pool {h}/{ct} does not cover the containers in circulation on day {d}")
        for i in villages:
            _close(waiting[i], c["empties_at_villages_end"].get(i, 0.0), f"empties at {i} end")
        if cyclic:
            assert stock >= c["stock_start"] - 1e-5, f"pool {h}/{ct} ends below its start"
        else:
            out = sum(waiting.values()) + rate * sum(
                q(i, d) for i in villages for d in range(max(0, days - lag), days))
            was_out = sum(n for (i, u, _d), n in arriving.items() if u == ct and vh[i] == h)
            assert stock + keep * out >= c["start_pool"] + c["expansion"] + keep * was_out \
                - 1e-5, (
                f"pool {h}/{ct} not restored by the horizon's end")
    capacity = {hub.hub_id: hub.cleaning_capacity_per_day for hub in s.hubs}
    for (h, d), n in cleaned.items():
        assert n <= capacity[h] * (1 + 1e-7) + TOL, f"cleaning capacity of {h} on day {d}"


def recompute_cost(plan: dict, s: Scenario) -> float:
    """Total cost from the plan with this file's own arithmetic."""
    vts = {v.vehicle_type: v for v in s.vehicle_types}
    su = {o.option_id: o for o in s.packaging.single_use}
    ru = {r.container_type: r for r in s.packaging.reusable}
    carbon = s.prices.carbon_cny_per_kg_co2e
    total = 0.0
    for t in plan["trips"]:
        vt = vts[t["vehicle_type"]]
        f = vt.co2e_per_km_kg * (1 + (vt.reefer_uplift if vt.refrigerated else 0))
        total += vt.fixed_cost_cny + t["km"] * (vt.cost_per_km_cny + carbon * f)
    for p in plan["packaging"]:
        o = su.get(p["option"])
        if o is not None:
            total += p["parcels"] * (o.cost_cny + s.prices.disposal_cny_per_kg * o.waste_grams
                                     / 1000 + carbon * o.co2e_kg)
        else:
            r = ru[p["option"]]
            total += p["parcels"] * (r.per_use_cost_cny + s.prices.disposal_cny_per_kg
                                     * r.per_use_waste_grams / 1000 + carbon * r.per_use_co2e_kg)
    for c in plan["containers"]:
        r = ru[c["container_type"]]
        unit = r.price_cny + carbon * r.production_co2e_kg
        total += unit * c["expansion"] * s.horizon_days / 7 / s.prices.pool_amortisation_weeks
        for d in c["days"]:
            total += unit * d["bought"]
            total += (r.cleaning_cny + carbon * r.cleaning_co2e_kg) * d["returned_to_pool"]
    return total


def check_recyclables(plan: dict, s: Scenario) -> None:
    """Every village's outstanding recyclables are collected, in full."""
    hubs = set(plan["hubs"])
    vh = {v.village_id: v.hub_id for v in s.villages}
    got = defaultdict(float)
    for r in plan["recyclables"]:
        got[r["village_id"]] += r["grams"]
    for w in s.outstanding_waste:
        if vh[w.village_id] in hubs:
            _close(got[w.village_id], w.grams, f"recyclables at {w.village_id}")


def check_plan(plan: dict, s: Scenario, kpis: dict | None = None) -> None:
    """Every property above; with `kpis`, that they agree with the plan's own arithmetic."""
    check_service(plan, s)
    check_deliveries(plan, s)
    check_capacity_and_temperature(plan, s)
    check_tour_loads(plan, s)
    check_pools(plan, s)
    check_recyclables(plan, s)
    cost = recompute_cost(plan, s)
    if kpis is not None:
        _close(kpis["cost_cny"]["total"], cost, "KPI total vs recomputed")
        km = sum(t["km"] for t in plan["trips"])
        _close(kpis["km"], km, "KPI km")
        assert kpis["trips"] == len(plan["trips"])


def check_stage(outcome, s: Scenario, hubs: list[str]) -> None:
    """One stage's plan for `hubs` (optimizer.stages.StageOutcome): every property, and its
    objective the cost recomputed from it."""
    assert outcome.plan is not None, f"no plan: {outcome.status} {outcome.diagnosis}"
    check_plan({**outcome.plan, "hubs": hubs}, s)
    assert recompute_cost(outcome.plan, s) == pytest.approx(outcome.objective, rel=1e-6,
                                                            abs=1e-4)


def check_objective(objective: float | None, kpis: dict | None, what: str) -> None:
    """A reported objective is the cost of its own plan: the KPIs' total (which leaves out
    the whole-box `rounding` extra) within 1e-4 relative."""
    assert objective is not None and kpis is not None, f"{what}: no objective or no KPIs"
    assert objective == pytest.approx(kpis["cost_cny"]["total"], rel=1e-4), (
        f"{what}: objective {objective} but the plan costs {kpis['cost_cny']['total']}")


def check_result(res: PlanResult, s: Scenario) -> dict:
    """A solve's result: the joint plan's properties, its objective equal to the cost
    recomputed from the plan and to its KPIs' total, and each baseline's objective equal to
    its KPIs' total. Returns the JSON document."""
    assert res.plan is not None, f"no plan: {res.status} {res.diagnosis}"
    check_plan(res.plan, s, res.kpis)
    assert recompute_cost(res.plan, s) == pytest.approx(res.objective, rel=1e-6, abs=1e-4)
    check_objective(res.objective, res.kpis, "joint")
    d = res.to_json_dict()
    for name, b in d["baselines"].items():
        if b.get("objective") is not None:
            check_objective(b["objective"], b.get("kpis"), name)
    return d
