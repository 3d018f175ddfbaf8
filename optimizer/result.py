"""What a solve returns: one typed result that the planner, the CVRP solver, the report and
every caller share.

It lives in a module of its own, importing nothing of the optimiser, so that a solver can
return it and a reader can take it without either importing the other.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

#: "error": HiGHS stopped without a plan and without proving there is none (numerical
#: trouble), which is not a verdict on the scenario
PlanStatus = Literal["optimal", "feasible", "time_limit", "infeasible", "error"]


@dataclass(frozen=True, kw_only=True)
class PlanResult:
    """Everything `packloop plan solve` prints or writes.

    `objective` is the joint plan's cost in CNY and `bound` a proven lower bound on it, so
    `gap` = |objective - bound| / |objective|; `status` is "optimal" only when the gap is
    closed. `plan`, `kpis` and each entry of `baselines` are plain JSON-able data (the plan
    as read back from the model, the KPIs recomputed from it); `diagnosis` says in words why
    there is no plan. `rounding` is the extra cost of buying whole containers, which the
    objective leaves out. `routes` is set by the CVRP solver only, in CVRPLIB numbering.
    `gap` is over the route pool the model chose from; `route_gap` = (pool LP - LP bound
    over all routes) / pool LP says how much routes outside the pool could still gain
    (None where no exact pricing bounded all routes).
    """

    status: PlanStatus
    objective: float | None
    bound: float | None
    gap: float | None
    plan: dict[str, Any] | None
    kpis: dict[str, Any] | None
    baselines: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    diagnosis: list[dict[str, Any]] = field(default_factory=list)
    factor_set: str = ""
    rounding: dict[str, float] = field(default_factory=dict)
    routes: list[list[int]] | None = None
    route_gap: float | None = None
    #: what one more box, unit of cleaning capacity or vehicle changes the cost by
    #: (`optimizer.marginal`); empty when not computed
    marginal_values: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def infeasible(cls, diagnosis: list[dict[str, Any]], *, stats: dict[str, Any] | None = None,
                   factor_set: str = "") -> PlanResult:
        """No plan: the diagnosis says why."""
        return cls(status="infeasible", objective=None, bound=None, gap=None, plan=None,
                   kpis=None, stats=stats or {}, diagnosis=diagnosis, factor_set=factor_set)

    def to_json_dict(self) -> dict[str, Any]:
        """The `plan solve --json` document (and plan.json): its keys and their order are a
        contract with the CLI's and the planner service's users."""
        out: dict[str, Any] = {
            "status": self.status,
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap,
            "route_gap": self.route_gap,
            "trips": list((self.plan or {}).get("trips", [])),
            "kpis": self.kpis,
            "baselines": self.baselines,
        }
        if self.routes is not None:
            out["routes"] = self.routes
        if self.plan is not None:
            for key in ("packaging", "containers", "recyclables", "service"):
                out[key] = self.plan.get(key, [])
        out["rounding"] = self.rounding
        out["diagnosis"] = self.diagnosis
        out["stats"] = self.stats
        out["factor_set"] = self.factor_set
        out["marginal_values"] = self.marginal_values
        return out


def _handed_on(group: dict[str, Any]) -> str:
    """Which earlier plan a hub group without a joint solve hands on: the one its joint
    objective is."""
    cost = (group.get("joint") or {}).get("objective")
    for mode, what in (("sequential", "sequential"), ("single_use", "single-use"),
                       ("uncoordinated", "uncoordinated")):
        o = (group.get(mode) or {}).get("objective")
        if o is not None and cost is not None and abs(o - cost) <= 1e-6 * max(1.0, abs(cost)):
            return what
    return "other"


def plan_caveats(data: dict[str, Any]) -> list[str]:
    """What a reader of a plan's figures must know before acting on them, one sentence
    each, from its JSON (`PlanResult.to_json_dict`): hub groups that had no time for their
    joint solve (their "joint" plan is an earlier stage's, and its gain over that baseline
    is 0 by construction), a county without a gap, and the plan's diagnosis. `plan solve`
    and `packloop demo` print them; the demo had shown a 0.0 % gain without a word."""
    out: list[str] = []
    groups = data.get("stats", {}).get("hubs") or []
    unplanned = [g for g in groups if (g.get("joint") or {}).get("objective") is not None
                 and (g.get("joint") or {}).get("highs_s") is None]
    if unplanned:
        handed = Counter(_handed_on(g) for g in unplanned)
        which = ", ".join(f"{n} {what}" for what, n in handed.most_common())
        out.append(f"{len(unplanned)} of {len(groups)} hub group(s) had no time for their "
                   f"joint solve and hand on their best earlier plan ({which}); a longer "
                   "time limit plans them jointly")
    unbounded = [g for g in groups if (g.get("joint") or {}).get("objective") is not None
                 and (g.get("joint") or {}).get("bound") is None]
    if data.get("gap") is None and data.get("objective") is not None and unbounded:
        out.append(f"no gap: {len(unbounded)} of {len(groups)} hub group(s) have no bound "
                   "(their later stages or their LP relaxation did not fit in the time); a "
                   "longer time limit gives one")
    if data.get("objective") is not None:
        out += [f"warning: {d['what']}: {d['why']}" for d in data.get("diagnosis") or []]
    return out
