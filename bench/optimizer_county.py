"""County-week benchmark and scaling table for the planner's optimiser.

    .venv/bin/python bench/optimizer_county.py                  # 100 %: plan + whole model
    .venv/bin/python bench/optimizer_county.py --scales 25 50 100 200 --no-plan

Two measurements per scale:
- plan: `optimizer.solve` as the CLI runs it (hub decomposition in worker processes, both
  baselines, joint warm-started from the sequential plan): wall time, gap, reductions;
- whole: the joint model of all hubs as ONE Pyomo model solved by HiGHS, to report model size,
  Pyomo build time, compile/hand-over/load time (the modelling overhead) and HiGHS's run time.

Scales: 25/50/100 % are the first 5/10/20 hubs of the sample county; 200 % adds a mirrored
copy of the county (hubs and villages shifted 0.6 degrees east, ids suffixed "B").
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import optimizer
from optimizer import (
    active_villages,
    build_model,
    candidate_routes,
    max_stops,
    run_highs,
    scenario_from_network,
)

ROOT = Path(__file__).resolve().parents[1]
NETWORK = ROOT / "streams" / "data" / "sample_county.json"


def network_at(scale: int) -> dict:
    net = json.loads(NETWORK.read_text())
    hubs = net["hubs"]
    if scale <= 100:
        keep = {h["hub_id"] for h in hubs[: max(1, round(len(hubs) * scale / 100))]}
        net["hubs"] = [h for h in hubs if h["hub_id"] in keep]
        net["villages"] = [v for v in net["villages"] if v["hub_id"] in keep]
        return net
    copies = scale // 100
    all_h, all_v = [], []
    for k in range(copies):
        suffix = "" if k == 0 else chr(ord("A") + k)
        for h in hubs:
            all_h.append({**h, "hub_id": h["hub_id"] + suffix, "lon": h["lon"] + 0.6 * k})
        for v in net["villages"]:
            vid = v["village_id"].replace(v["hub_id"], v["hub_id"] + suffix)
            all_v.append({**v, "village_id": vid, "hub_id": v["hub_id"] + suffix,
                          "lon": v["lon"] + 0.6 * k})
    net["hubs"], net["villages"] = all_h, all_v
    return net


def whole_model(s, time_limit, gap, threads, lp_solver=None):
    t0 = time.perf_counter()
    routes = candidate_routes(s, active_villages(s), max_stops(s))
    routes_s = time.perf_counter() - t0
    b = build_model(s, routes, mode="joint")
    r = run_highs(b.model, time_limit_s=time_limit, mip_gap=gap, threads=threads,
                  lp_solver=lp_solver)
    wall = time.perf_counter() - t0 - routes_s
    overhead = wall - r.highs_s
    return {
        "columns": r.num_cols, "rows": r.num_rows, "integers": r.num_integers,
        "nonzeros": r.nonzeros, "routes_s": round(routes_s, 2),
        "pyomo_build_s": round(b.build_s, 2), "compile_s": round(r.compile_s, 2),
        "handover_s": round(r.handover_s, 3), "load_s": round(r.load_s, 3),
        "highs_s": round(r.highs_s, 2), "overhead_s": round(overhead, 2),
        "overhead_share_of_highs": round(overhead / r.highs_s, 3) if r.highs_s else None,
        "status": r.status, "objective": r.objective, "bound": r.bound,
        "gap": None if r.gap is None else round(r.gap, 5),
    }


def plan_run(s, time_limit, gap, threads):
    t0 = time.perf_counter()
    res = optimizer.solve(s, time_limit_s=time_limit, mip_gap=gap, threads=threads)
    out = {"wall_s": round(time.perf_counter() - t0, 1), "status": res.status,
           "objective": res.objective, "bound": res.bound,
           "gap": None if res.gap is None else round(res.gap, 5),
           "linked": res.stats.get("linked_by_county_fleet")}
    if res.kpis:
        out["joint"] = _brief(res.kpis)
    for name in ("sequential", "uncoordinated"):
        b = res.baselines.get(name, {})
        if b.get("kpis"):
            out[name] = _brief(b["kpis"])
            out[f"reduction_vs_{name}"] = {k: None if v is None else round(v, 4)
                                           for k, v in b["reduction_by_joint"].items()}
        else:
            out[name] = b.get("status")
    out["rounding_cny"] = res.rounding.get("extra_cost_cny")
    return out


def _brief(k):
    return {"cost_cny": round(k["cost_cny"]["total"], 1), "km": round(k["km"], 1),
            "trips": k["trips"], "co2e_kg": round(k["co2e_kg"]["total"], 1),
            "single_use_kg": round(k["single_use_grams"] / 1000, 1)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scales", type=int, nargs="+", default=[100])
    ap.add_argument("--time-limit", type=float, default=120)
    ap.add_argument("--gap", type=float, default=0.01)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-plan", action="store_true")
    ap.add_argument("--no-whole", action="store_true")
    ap.add_argument("--lp-solver", default=None, help="HiGHS mip_lp_solver for the whole model")
    args = ap.parse_args()
    for scale in args.scales:
        t0 = time.perf_counter()
        s = scenario_from_network(network_at(scale), horizon_days=7, seed=2026,
                                  county_trucks=40 * max(1, scale // 100))
        parcels = sum(g.parcels for g in s.demand if g.direction == "down") / 7
        row = {"scale_pct": scale, "hubs": len(s.hubs), "villages": len(s.villages),
               "demand_groups": len(s.demand), "down_parcels_per_day": round(parcels),
               "scenario_s": round(time.perf_counter() - t0, 2)}
        if not args.no_whole:
            row["whole"] = whole_model(s, args.time_limit, args.gap, args.threads,
                                       args.lp_solver)
        if not args.no_plan:
            row["plan"] = plan_run(s, args.time_limit, args.gap, args.threads)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
