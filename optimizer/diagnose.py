"""Explain infeasibility in the planner's words: which demand cannot be served and why,
instead of a bare solver status."""

from __future__ import annotations

import re
from typing import Any

from optimizer.routes import DistanceOracle
from optimizer.scenario import ReusableType, Scenario, SingleUseOption
from optimizer.trips import compatible_compartments


def describe_unservable(s: Scenario, items: list[tuple[str, int, str, str]]) -> list[dict]:
    """Demand for which no candidate trip exists at all (found while building the model)."""
    out = []
    oracle = DistanceOracle(s)
    vhub = {v.village_id: v.hub_id for v in s.villages}
    for village, day, class_id, direction in items:
        if direction == "trunk":
            out.append({"what": f"trunk deliveries of class {class_id!r} to hub {village} on "
                        f"day {day}", "why": "no county vehicle can carry that class to the hub "
                        "(compartment, passive packaging, max_route_km or shift_minutes)"})
            continue
        if direction == "trunk_up":
            out.append({"what": f"farm shipments of class {class_id!r} from hub {village} to "
                        f"the county on day {day}", "why": "no county vehicle can carry that "
                        "class from the hub (compartment, max_route_km or shift_minutes)"})
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


_ROW = re.compile(r"^(\w+)\[(.*)\]$")


def describe_row(s: Scenario, name: str, amount: float) -> dict[str, Any]:
    """A constraint the feasibility relaxation had to violate, in words."""
    m = _ROW.match(name)
    family, idx = (m.group(1), m.group(2).split(",")) if m else (name, [])
    text = {
        "deliver": "down demand of class {2} at {0} on day {1} cannot all be delivered",
        "ship_up": "farm shipments of class {2} at {0} on day {1} cannot all be picked up",
        "serve_all": "demand group {0} cannot be served within its window",
        "fleet_hub": "not enough {1} vehicles at hub {0} on day {2}",
        "fleet_county": "not enough county {0} vehicles on day {1} for the trunk legs",
        "tour_load": "compartment {2} of a trip is over capacity after its stop {1}",
        "passive": "cold goods of class {2} at {0} on day {1} ride outside a cold compartment "
        "without enough passive packaging",
        "cap_cover": "trips that can reach {1} ({0} run) on days {4}..{5} lack room for the "
        "{2} litres of {3} that must move then",
        "visit": "no trip able to carry {2} {3} reaches {0} on day {1}",
        "tour_load_total": "a trip is over capacity after its stop {1} (goods still to deliver, "
        "empties, recyclables and farm goods aboard)",
        "collect_all": "outstanding recyclables at {0} cannot all be collected",
        "pool_issue": "container pool {1} at hub {0} runs out on day {2}",
        "pool_end": "container pool {1} at hub {0} cannot be restored by the horizon's end",
        "pool_covers": "container pool {1} at hub {0} cannot cover the containers in "
        "circulation",
        "cleaning_capacity": "cleaning capacity of hub {0} is exceeded on day {1}",
        "trunk_deliver": "trunk legs to hub {0} on day {1} cannot carry class {2}",
        "trunk_cap_out": "trunk outbound capacity is exceeded",
        "trunk_cap_back": "trunk return capacity is exceeded",
        "trunk_collect_all": "recyclables collected at hub {0} on day {1} cannot reach the county",
    }.get(family)
    if text is not None:
        try:
            what = text.format(*idx)
        except IndexError:
            what = f"{family}[{','.join(idx)}]"
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
    why = ("it cannot hold with the decisions fixed so far (a start or a what-if's change)"
           if amount == float("inf") else
           f"the closest feasible plan misses it by {amount:.4g} (units of the constraint: "
           "litres, parcels, containers or trips)")
    return {"what": what, "why": why, "constraint": name}
