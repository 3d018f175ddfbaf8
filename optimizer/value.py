"""The value of joint planning: the joint plan solved cold next to each baseline, every plan to
the same gap, so that a gain cannot come from one solve stopping earlier than another or from
the joint solve merely confirming the start it was given (docs/optimizer.md, "The value of
joint planning"). `bench/optimizer_value.py` prints it for the stress scenarios; the planner
itself (`optimizer.solve`) warm-starts the joint solve instead, to save time.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from optimizer.baselines import fix_packaging, fix_routing, packaging_rule
from optimizer.kpis import compute_kpis
from optimizer.routes import active_villages, hub_routes
from optimizer.scenario import Scenario
from optimizer.solver import relative_gap
from optimizer.stages import StageMode, StageOutcome, run_stage

# the plans of a study, in the order they are reported
PLANS = ("joint", "sequential_packaging_first", "sequential_routing_first", "uncoordinated")
SEQUENTIAL = ("sequential_packaging_first", "sequential_routing_first")
# not a baseline: packaging first with the empties left waiting as the routing tool likes
LENIENT = "packaging_first_lenient_pickups"


@dataclass(frozen=True)
class PlanFigures:
    """One plan of a study. `cost_cny` is the plan's own cost (its KPIs, recomputed from the
    plan), never the solver's figure; `gap` is that solve's own, against its own bound."""

    name: str
    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    time_s: float
    plan: dict[str, Any] | None
    kpis: dict[str, Any] | None

    @property
    def cost_cny(self) -> float | None:
        return None if self.kpis is None else self.kpis["cost_cny"]["total"]


def value_study(s: Scenario, *, mip_gap: float = 1e-3, threads: int | None = 1,
                time_limit_s: float | None = 300.0, lenient: bool = False,
                ) -> dict[str, PlanFigures]:
    """Every plan of `s` (all hubs in one model): the joint plan solved cold, both sequential
    baselines, the uncoordinated baseline and, with `lenient`, packaging first without its
    pickups-when-due premise; each to `mip_gap` within `time_limit_s`."""
    vill_hub = {v.village_id: v.hub_id for v in s.villages}
    hubs = sorted({vill_hub[i] for i in active_villages(s)})
    routes = hub_routes(s, hubs)
    out: dict[str, PlanFigures] = {}

    def solve(name: str, mode: StageMode, **kw: Any):
        t0 = time.perf_counter()
        o, b = run_stage(s, routes, hubs, mode, time_limit_s, mip_gap, threads, None, **kw)
        out[name] = _figures(name, o, time.perf_counter() - t0, s)
        return o, b

    solve("uncoordinated", "uncoordinated")
    single_use, b1 = solve("single_use", "single_use")
    if single_use.plan is not None:
        solve("sequential_routing_first", "routing_first",
              prepare=lambda b: fix_routing(b, b1))
        # its time includes the single-use plan it starts from
        rf = out["sequential_routing_first"]
        out[rf.name] = dataclasses.replace(rf, time_s=rf.time_s + out["single_use"].time_s)
    rule = packaging_rule(s, hubs)
    solve("sequential_packaging_first", "packaging_first",
          prepare=lambda b: fix_packaging(b, s, rule))
    if lenient:
        loose = dataclasses.replace(rule, pickup_when_due=False)
        solve(LENIENT, "packaging_first", prepare=lambda b: fix_packaging(b, s, loose))
    solve("joint", "joint")
    return out


def _figures(name: str, o: StageOutcome, time_s: float, s: Scenario) -> PlanFigures:
    gap = None if o.objective is None or o.bound is None else relative_gap(o.objective, o.bound)
    kpis = compute_kpis(o.plan, s) if o.plan is not None else None
    return PlanFigures(name, o.status, o.objective, o.bound, gap, time_s, o.plan, kpis)


def better_sequential(study: dict[str, PlanFigures]) -> PlanFigures | None:
    """The cheaper of the two sequential plans (by their own cost), None if neither has one."""
    found = [study[n] for n in SEQUENTIAL if n in study and study[n].cost_cny is not None]
    return min(found, key=lambda f: f.cost_cny or 0.0, default=None)


def joint_gain(study: dict[str, PlanFigures]) -> float | None:
    """(better sequential − joint) / better sequential, by the plans' own costs."""
    seq = better_sequential(study)
    joint = study["joint"].cost_cny
    if seq is None or seq.cost_cny is None or joint is None:
        return None
    return (seq.cost_cny - joint) / seq.cost_cny
