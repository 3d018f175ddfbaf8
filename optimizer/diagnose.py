"""Explain infeasibility in the planner's words: which demand cannot be served and why,
instead of a bare solver status."""

from __future__ import annotations

import math
import re
from typing import Any

from optimizer.routes import DistanceOracle
from optimizer.scenario import ReusableType, Scenario, SingleUseOption
from optimizer.trips import (
    ALL,
    compatible_compartments,
    trip_minutes,
    trips_per_shift,
    trunk_legs_per_shift,
)


def describe_unservable(s: Scenario, items: list[tuple[str, int, str, str]]) -> list[dict]:
    """Demand for which no candidate trip exists at all (found while building the model)."""
    out = []
    oracle = DistanceOracle(s)
    vhub = {v.village_id: v.hub_id for v in s.villages}
    for village, day, class_id, direction in items:
        if direction == "trunk":
            out.append({"what": f"trunk deliveries of class {class_id!r} to hub {village} on "
                        f"day {day}", "why": "no county vehicle can carry that class to the hub"
                        f" ({_trunk_reasons(s, oracle, village, class_id, True)})"})
            continue
        if direction == "trunk_up":
            why = _trunk_reasons(s, oracle, village, class_id, False)
            out.append({"what": f"farm shipments of class {class_id!r} from hub {village} to "
                        f"the county on day {day}", "why": "no county vehicle can carry that "
                        f"class from the hub ({why})"})
            continue
        if direction == "pack":
            out.append({"what": f"down demand of class {class_id!r} at {village} on day {day}",
                        "why": "no single-use packaging option lists the class, and plans "
                        "without reuse (the uncoordinated and sequential baselines) pack "
                        "only in single-use options"})
            continue
        hub = vhub[village]
        km = oracle.km(hub, village) + oracle.km(village, hub)
        reasons = []
        hub_vts = [v for v in s.vehicle_types if v.base == "hub"
                   and s.hub_vehicle_count(v, hub) > 0]
        if not hub_vts:
            reasons.append(f"hub {hub} has no vehicles")
        reach = [v for v in hub_vts if v.max_route_km >= km]
        if hub_vts and not reach:
            limits = ", ".join(f"{v.vehicle_type}: {v.max_route_km:g}" for v in hub_vts)
            reasons.append(
                f"the round trip {hub}->{village}->{hub} is {km:.1f} km, longer than every "
                f"vehicle's max_route_km ({limits})"
            )
        in_shift = [v for v in reach if trips_per_shift(v, trip_minutes(v, km, 1)) > 0]
        if reach and not in_shift:
            # a trip no vehicle can drive within its shift is never offered either: say so,
            # as for max_route_km, instead of "no candidate trip can carry it"
            takes = ", ".join(f"{v.vehicle_type}: {trip_minutes(v, km, 1):.1f} min against "
                              f"{v.shift_minutes:g}" for v in reach)
            reasons.append(
                f"the round trip {hub}->{village}->{hub} ({km:.1f} km and one stop) takes "
                f"longer than every vehicle's shift_minutes ({takes})"
            )
            reach = []
        if class_id == "recyclables":
            what = f"outstanding recyclables at {village}"
        else:
            what = f"{direction} demand of class {class_id!r} at {village} on day {day}"
            if direction == "down":
                own = [v for v in reach if class_id in v.compartments_litres]
                passive_ok = [v for v in reach if compatible_compartments(s, v, class_id)]
                options: list[SingleUseOption | ReusableType] = [
                    *s.packaging.single_use, *s.packaging.reusable]
                has_passive = any(class_id in o.class_ids and o.passive for o in options)
                if reach and not own:
                    if not passive_ok:
                        reasons.append(f"no vehicle at {hub} has a {class_id!r} compartment and "
                                       "passive cold packaging is not allowed on them")
                    elif not has_passive:
                        reasons.append(f"no vehicle at {hub} has a {class_id!r} compartment and "
                                       f"no passive packaging option covers {class_id!r}")
            else:
                fits = [v for v in reach if class_id in v.compartments_litres]
                if reach and not fits:
                    reasons.append(f"no vehicle at {hub} has a {class_id!r} compartment for "
                                   "farm shipments")
        out.append({"what": what, "why": "; ".join(reasons) or "no candidate trip can carry it"})
    return out


def _trunk_reasons(s: Scenario, oracle: DistanceOracle, hub: str, class_id: str,
                   down: bool) -> str:
    """Why each county vehicle type cannot run hub `hub`'s trunk leg for `class_id`, in
    figures (the leg's km and minutes against its limits), as the milk runs' reasons do."""
    km = oracle.trunk_km(hub)
    county = [v for v in s.vehicle_types if v.base == "county"]
    if not county:
        return "there is no vehicle type with base 'county'"
    why = []
    for v in county:
        # a fleet of 0 alone never makes a class unservable (that is the fleet row's
        # shortage): the leg's own limits first, the count last
        if km > v.max_route_km + 1e-9:
            why.append(f"{v.vehicle_type}: the leg depot->{hub}->depot is {km:.1f} km, over its "
                       f"max_route_km {v.max_route_km:g}")
        elif trunk_legs_per_shift(v, km) == 0:
            why.append(f"{v.vehicle_type}: the leg ({km:.1f} km) takes "
                       f"{trip_minutes(v, km, 1):.1f} min, over its shift_minutes "
                       f"{v.shift_minutes:g}")
        elif down and not compatible_compartments(s, v, class_id):
            why.append(f"{v.vehicle_type}: no {class_id!r} compartment, and passive packaging "
                       "is not allowed or does not cover the class")
        elif not down and class_id not in v.compartments_litres:
            why.append(f"{v.vehicle_type}: no {class_id!r} compartment")
        elif v.count is not None and v.count <= 0:
            why.append(f"{v.vehicle_type}: count 0")
        else:
            why.append(f"{v.vehicle_type}: the class's packaging or compartment rules")
    return "; ".join(why)


#: row families that are valid inequalities (`covers`, `milk_runs.add_visit_covers`): the
#: integer model implies them, so an infeasibility is never theirs to explain
IMPLIED_ROWS = frozenset({"visit", "cap_cover", "trip_floor"})
#: variables whose upper bounds repeat what rows say (a trip count's n_v m_t is the fleet
#: row's, its n^need a dominance bound): the rows, not the bounds, name a shortage
ROW_BOUNDED_VARS = frozenset({"trips"})

_ROW = re.compile(r"^(\w+)\[(.*)\]$")

#: the families of rows the model builders (optimizer/model/*.py), the baselines'
#: packaging rules and the frontier's criterion rows add, in words: (template over the
#: row's index, the unit of its violation). The solver names a row by family and index
#: (`trunk_ship_up[H01,1,chilled]`), which a planner cannot act on; the words name what
#: cannot move and the fleet that should move it (`_context`), so the cause can be found
#: in the scenario (a county fleet of 0 trunk vehicles, a hub short of vans).
ROW_WORDS: dict[str, tuple[str, str]] = {
    # service and packaging (model/service.py)
    "serve_all": ("demand group {0} cannot be served within its window",
                  "(a share of the group)"),
    "pack_all": ("down demand of class '{2}' at {0} on day {1} cannot all be sent out "
                 "({way0})", "parcels"),
    "pack_up_all": ("farm shipments of class '{2}' at {0} on day {1} cannot all be packed "
                    "(single-use options listing the class in up_class_ids, or empty "
                    "containers waiting at the village)", "parcels"),
    # milk runs (model/milk_runs.py)
    "deliver": ("down demand of class '{2}' at {0} on day {1} cannot all be delivered by "
                "hub {hub0}'s vehicles ({fleet0})", "litres"),
    "ship_up": ("farm shipments of class '{2}' at {0} on day {1} cannot all be picked up by "
                "hub {hub0}'s vehicles ({fleet0})", "litres"),
    "passive": ("cold goods of class '{2}' at {0} on day {1} ride outside a '{2}' "
                "compartment without enough passive packaging", "litres"),
    "collect_all": ("outstanding recyclables at {0} cannot all be collected by hub "
                    "{hub0}'s vehicles ({fleet0})", "grams"),
    "tour_load": ("compartment '{2}' of a milk run is over capacity {after1}", "litres"),
    "tour_load_total": ("a milk run is over capacity {after1} (goods still to deliver, "
                        "empties, recyclables and farm goods aboard)", "litres"),
    "visit": ("no trip able to carry the {goods2} of class '{3}' reaches {0} on day {1}",
              "trips"),
    # fleet (model/fleet.py)
    "fleet_hub": ("not enough {1} vehicles at hub {0} on day {2} ({count1} available)",
                  "vehicle-days"),  # `_fleet_why` says it in trips and vehicles
    "fleet_county": ("not enough county {0} vehicles on day {1} for the trunk legs "
                     "({count0} available)", "vehicle-days"),
    # trunk legs (model/trunk.py)
    "trunk_deliver": ("{county} cannot carry hub {0}'s '{2}' deliveries down to it on day "
                      "{1}", "litres"),
    "trunk_passive": ("cold goods of class '{2}' for hub {0} on day {1} ride outside a '{2}' "
                      "compartment of a trunk vehicle without enough passive packaging",
                      "litres"),
    "trunk_ship_up": ("{county} cannot carry hub {0}'s '{2}' farm shipments up on day {1}",
                      "litres"),
    "trunk_collect_all": ("{county} cannot carry the recyclables collected around hub {0} "
                          "on day {1} to the county", "grams"),
    "trunk_cap_out": ("a trunk leg's '{1}' compartment is over capacity on the way to its "
                      "hub ({county_list})", "litres"),
    "trunk_cap_back_class": ("a trunk leg's '{1}' compartment is over capacity on the way "
                             "back to the county ({county_list})", "litres"),
    "trunk_cap_back": ("a trunk leg is over capacity on the way back to the county (farm "
                       "shipments and recyclables; {county_list})", "litres"),
    # reusable containers (model/pools.py)
    "empties_balance": ("empty {1} containers at {0} on day {2} do not add up (returned, "
                        "picked up, refilled with farm shipments)", "containers"),
    "pool_covers": ("container pool {1} at hub {0} cannot cover the containers in "
                    "circulation", "containers"),
    "pool_issue": ("container pool {1} at hub {0} runs out on day {2}", "containers"),
    "pool_balance": ("the stock of container pool {1} at hub {0} does not add up on day {2}",
                     "containers"),
    "pool_end": ("container pool {1} at hub {0} cannot be restored by the horizon's end",
                 "containers"),
    "pool_on_hand": ("container pool {1} at hub {0} holds too few on day 0 (planned with "
                     "the containers on hand: none bought for the first day)", "containers"),
    "cleaning_capacity": ("cleaning capacity of hub {0} ({cap0} containers a day) is "
                          "exceeded on day {1}", "containers"),
    # valid inequalities (model/covers.py, model/milk_runs.py)
    "cap_cover": ("{unit} lack room for the {load} that must move then",
                  "trips"),
    "trip_floor": ("the milk runs of {0} and the villages linked with it on day {1} cost "
                   "less than their least possible cost", "CNY"),
    # the sequential baseline's packaging rule (baselines.py, ROW_PREFIX)
    "baseline_share_max": ("the baseline's packaging shares for class '{2}' at {0} on day "
                           "{1} cannot hold", "parcels"),
    "baseline_share_min": ("the baseline's packaging shares for class '{2}' at {0} on day "
                           "{1} cannot hold", "parcels"),
    # the frontier's criterion rows (frontier_model.py)
    "fr_cap": ("the frontier's bound on a criterion (cost, single-use packaging or CO2e) "
               "cannot be met", "(in the criterion's units)"),
    "fr_eps": ("the frontier's target for a criterion (single-use packaging or CO2e) "
               "cannot be met", "(in the criterion's units)"),
}

_LOADS = {("down", ALL): "deliveries", ("back", ALL): "loads back (farm shipments, empties "
          "and recyclables)"}


def _split_index(text: str) -> list[str]:
    """A Pyomo row index `H01,1,chilled` as its parts; Pyomo quotes a part holding a comma,
    bracket or space (`'a,b'`)."""
    parts: list[str] = []
    cur, quote = "", ""
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
            else:
                cur += ch
        elif ch in "'\"":
            quote = ch
        elif ch == ",":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def _county_counts(s: Scenario) -> str:
    """The county's trunk vehicles and how many there are: an empty fleet is the usual
    reason a hub's trunk rows cannot hold."""
    return ", ".join(f"{v.vehicle_type}: {'unlimited' if v.count is None else v.count} "
                     "available" for v in s.vehicle_types if v.base == "county")


def _context(s: Scenario, family: str, idx: list[str]) -> dict[str, str]:
    """The words a template takes besides its index: the fleets and capacities that bound
    the row (a row with an index too short for them gets '?')."""
    hub_of = {v.village_id: v.hub_id for v in s.villages}
    vts = {v.vehicle_type: v for v in s.vehicle_types}
    first = idx[0] if idx else "?"
    second = idx[1] if len(idx) > 1 else "?"
    hub0 = hub_of.get(first, first)
    county = _county_counts(s)
    hub_counts = ", ".join(f"{v.vehicle_type}: {s.hub_vehicle_count(v, hub0)}"
                           for v in s.vehicle_types if v.base == "hub")
    out = {
        "hub0": hub0,
        "county": f"the county's trunk vehicles ({county})" if county
        else "the county, which has no trunk vehicles,",
        "county_list": f"county trunk vehicles: {county}" if county
        else "the county has no trunk vehicles",
        "fleet0": hub_counts or "it has none",
        "way0": f"packed, carried to hub {hub0} on the trunk legs and delivered on its milk "
        "runs" if any(v.base == "county" for v in s.vehicle_types)
        else f"packed and delivered on hub {hub0}'s milk runs",
        "cap0": next((f"{h.cleaning_capacity_per_day:g}" for h in s.hubs
                      if h.hub_id == first), "?"),
        "count0": "?", "count1": "?",
        "after1": "as it leaves the hub" if second == "0" else f"after its stop {second}",
        "goods2": {"down": "deliveries", "up": "farm shipments"}.get(
            idx[2] if len(idx) > 2 else "", "goods"),
    }
    if first in vts:
        out["count0"] = "unlimited" if vts[first].count is None else str(vts[first].count)
    if second in vts:
        out["count1"] = str(s.hub_vehicle_count(vts[second], first))
    if family == "cap_cover" and len(idx) >= 6:
        unit, where, direction, cls, a, z = idx[:6]
        days = f"day {a}" if a == z else f"days {a}..{z}"
        out["unit"] = (f"the trunk legs to hub {where} on {days} ({out['county_list']})"
                       if unit == "trunk" else
                       f"the milk runs of {where} and the villages linked with it on {days}")
        out["load"] = ("farm shipments back to the county" if (unit, direction) == (
            "trunk", "back") else _LOADS.get((direction, cls))) or (
            f"deliveries of class '{cls}'" if direction == "down"
            else f"farm shipments of class '{cls}'" if direction == "up"
            else f"{direction} litres of '{cls}'")
    return out


#: a violation of exactly one: "1 trip", not "1 trips"
_ONE = {"parcels": "parcel", "litres": "litre", "grams": "gram", "trips": "trip",
        "vehicles": "vehicle", "containers": "container", "vehicle-days": "vehicle-day"}


#: the fleet rows (model/fleet.py): Σ y_t / m_t ≤ n, a trip of type t a 1/m_t share of a
#: vehicle-day, so that their violation is in vehicles, not trips
FLEET_ROWS = frozenset({"fleet_hub", "fleet_county"})

#: what `_trips_per_vehicle` found, per scenario: (hub, or "" for the trunk legs) -> the m_t
#: of each (vehicle type, day)'s trips
TripsPerVehicle = dict[str, dict[tuple[str, int], set[int]]]


def _trips_per_vehicle(s: Scenario, family: str, idx: list[str],
                       cache: TripsPerVehicle) -> set[int]:
    """m_t of each trip type a fleet row counts, as the model has them (`model_sets`, the
    trips of `hub_routes` a model is built with); empty when none is found. fleet_hub[h, v,
    d] counts hub h's milk runs of vehicle type v on day d; fleet_county[v, d] the trunk
    legs of v to every hub on day d."""
    from optimizer.model.sets import model_sets
    from optimizer.routes import hub_routes

    hub = idx[0] if family == "fleet_hub" else ""
    vt_day = (idx[1], idx[2]) if family == "fleet_hub" else (idx[0], idx[1])
    try:
        key = (vt_day[0], int(vt_day[1]))
    except ValueError:
        return set()
    if hub not in cache:
        found: dict[tuple[str, int], set[int]] = {}
        if family == "fleet_hub":
            if hub not in {h.hub_id for h in s.hubs}:
                return set()
            x = model_sets(s, hub_routes(s, [hub]), "joint", [hub])
        else:
            x = model_sets(s, {}, "joint", None)  # trunk legs do not depend on routes
        for tt, m_t in zip(x.trips, x.trips_per_vehicle, strict=True):
            if (tt.route is not None) == (family == "fleet_hub"):
                found.setdefault((tt.vehicle_type, tt.day), set()).add(m_t)
        cache[hub] = found
    return cache[hub].get(key, set())


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _fleet_why(s: Scenario, family: str, idx: list[str], amount: float,
               cache: TripsPerVehicle) -> str:
    """A fleet row's violation `amount` (vehicle-days: the trips' shares 1/m_t over the
    count) in trips and the whole vehicles that would run them. With one m for all the
    row's trips, amount × m trips and ⌈amount⌉ vehicles (m trips a day each); with trips of
    different lengths (several m) the trips are not one number: the vehicle-days and
    ⌈amount⌉ vehicles."""
    vehicles = max(1, math.ceil(amount - 1e-6))
    more = f"{vehicles:,} more vehicle{'' if vehicles == 1 else 's'}"
    ms = _trips_per_vehicle(s, family, idx, cache)
    if len(ms) == 1:
        (m,) = ms
        trips = amount * m
        if abs(trips - round(trips)) <= 1e-4 * max(1.0, trips):
            return (f"the closest feasible plan misses it by {_plural(round(trips), 'trip')}: "
                    f"{more} ({_plural(m, 'trip')} a day each)")
    runs = ("" if not ms else f" (a vehicle runs {min(ms)} to {max(ms)} of these trips a day, "
            "by their length)")
    days = "vehicle-day" if amount == 1 else "vehicle-days"
    return f"the closest feasible plan misses it by {amount:.4g} {days} of trips{runs}: {more}"


def describe_row(s: Scenario, name: str, amount: float,
                 cache: TripsPerVehicle | None = None) -> dict[str, Any]:
    """A constraint the feasibility relaxation had to violate, in words (`ROW_WORDS`), with
    the fleet that bounds it where there is one, so the cause can be found in the scenario;
    the raw name stays in `constraint` for whoever reads the model. A fleet row's violation
    is said in trips and whole vehicles (`_fleet_why`); `cache` keeps the trips it looks up
    for the next row of the same scenario."""
    m = _ROW.match(name)
    family, idx = (m.group(1), _split_index(m.group(2))) if m else (name, [])
    words = ROW_WORDS.get(family)
    unit = "(in the row's units)"
    if words is not None:
        text, unit = words
        try:
            what = text.format(*idx, **_context(s, family, idx))
        except (IndexError, KeyError):
            what = f"a row of the model ({family}) for {', '.join(idx) or 'the whole plan'}"
    elif m:
        what = f"a row of the model ({family}) for {', '.join(idx)}"
    else:
        what = name
    if family == "serve_all" and idx:
        try:
            g = s.demand[int(idx[0])]
            what = (f"demand[{idx[0]}] ({g.direction} {g.parcels:g} parcels of {g.class_id!r} "
                    f"at {g.village_id}, days {g.day}..{g.day + g.flex_days}) cannot be served "
                    "within its window")
        except (ValueError, IndexError):
            pass
    if amount == float("inf"):
        why = "it cannot hold with the decisions fixed so far (a start or a what-if's change)"
    elif family in FLEET_ROWS and len(idx) == (3 if family == "fleet_hub" else 2):
        why = _fleet_why(s, family, idx, amount, {} if cache is None else cache)
    else:
        why = (f"the closest feasible plan misses it by {amount:.4g} "
               f"{_ONE.get(unit, unit) if amount == 1 else unit}")
    return {"what": what, "why": why, "constraint": name}


def describe_rows(s: Scenario, rows: list[tuple[str, float]], what: str,
                  why: str) -> list[dict[str, Any]]:
    """A failed solve's diagnosis: the rows it had to violate in words (`describe_row`), or,
    when it named none, the one line {what, why} (its status)."""
    cache: TripsPerVehicle = {}
    return [describe_row(s, name, amount, cache) for name, amount in rows] or [
        {"what": what, "why": why}]
