"""Which Pyomo -> HiGHS interface is fastest for the planner's model? Measured, not assumed.

    .venv/bin/python bench/optimizer_interfaces.py [--scale 25] [--milp-hub H01]

For the same Pyomo model (the joint county model's LP relaxation at --scale, so that HiGHS's
own time is small and the interfaces' cost shows) it times, per interface, the wall time of
"hand the model to HiGHS, solve, load the values back" and subtracts HiGHS's own run time:
- compiler: LinearStandardFormCompiler -> highspy.passModel (what optimizer.solver uses);
- appsi_highs: pyomo.contrib.appsi.solvers.Highs;
- contrib highs: pyomo.contrib.solver (SolverFactory('highs')).
Then it solves one hub's MILP through each to check they agree.
"""

from __future__ import annotations

import argparse
import json
import time

import pyomo.environ as pyo
from optimizer_county import network_at

from optimizer import (
    active_villages,
    build_model,
    candidate_routes,
    max_stops,
    run_highs,
    scenario_from_network,
)


def _model(s, relax: bool):
    routes = candidate_routes(s, active_villages(s), max_stops(s))
    b = build_model(s, routes, mode="joint")
    if relax:
        pyo.TransformationFactory("core.relax_integer_vars").apply_to(b.model)
    return b.model


def via_compiler(m, time_limit):
    t0 = time.perf_counter()
    r = run_highs(m, time_limit_s=time_limit)
    wall = time.perf_counter() - t0
    return {"wall_s": round(wall, 3), "highs_s": round(r.highs_s, 3),
            "overhead_s": round(wall - r.highs_s, 3), "objective": r.objective}


def via_appsi(m, time_limit):
    from pyomo.contrib.appsi.solvers import Highs

    opt = Highs()
    opt.config.time_limit = time_limit
    opt.config.stream_solver = False
    t0 = time.perf_counter()
    res = opt.solve(m)
    wall = time.perf_counter() - t0
    run = opt._solver_model.getRunTime()
    return {"wall_s": round(wall, 3), "highs_s": round(run, 3),
            "overhead_s": round(wall - run, 3), "objective": res.best_feasible_objective}


def via_contrib(m, time_limit):
    from pyomo.contrib.solver.common.factory import SolverFactory

    opt = SolverFactory("highs")
    t0 = time.perf_counter()
    res = opt.solve(m, time_limit=time_limit, raise_exception_on_nonoptimal_result=False,
                    load_solutions=True)
    wall = time.perf_counter() - t0
    run = opt._solver_model.getRunTime()
    return {"wall_s": round(wall, 3), "highs_s": round(run, 3),
            "overhead_s": round(wall - run, 3),
            "objective": res.incumbent_objective}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=25)
    ap.add_argument("--milp-hub", default="H01")
    ap.add_argument("--time-limit", type=float, default=60)
    args = ap.parse_args()
    s = scenario_from_network(network_at(args.scale), horizon_days=7, seed=2026)
    out = {"lp_relaxation": {}, "milp_one_hub": {}}
    for name, fn in (("compiler_passModel", via_compiler), ("appsi_highs", via_appsi),
                     ("contrib_highs", via_contrib)):
        m = _model(s, relax=True)
        try:
            out["lp_relaxation"][name] = fn(m, args.time_limit)
        except Exception as exc:  # report, do not hide, an interface that fails
            out["lp_relaxation"][name] = {"error": repr(exc)[:200]}
    hub = scenario_from_network(network_at(100), hubs=[args.milp_hub], seed=2026)
    for name, fn in (("compiler_passModel", via_compiler), ("appsi_highs", via_appsi),
                     ("contrib_highs", via_contrib)):
        m = _model(hub, relax=False)
        try:
            out["milp_one_hub"][name] = fn(m, 20)
        except Exception as exc:
            out["milp_one_hub"][name] = {"error": repr(exc)[:200]}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
