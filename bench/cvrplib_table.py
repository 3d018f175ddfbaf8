"""CVRPLIB instances through `packloop plan solve --vrplib`, as a Markdown table for
docs/optimizer.md (issue #13's acceptance measurement).

    .venv/bin/python bench/cvrplib_table.py                       # every instance, 60 s, 2 threads
    .venv/bin/python bench/cvrplib_table.py --time-limit 20 A-n33-k6

Each instance runs in its own CLI process (wall time includes start-up); the machine's load
average before and after is printed with the table, since other work on a shared machine
moves the figures. "bound" is the bound over every plan (the enumeration's, or the
q-route column generation's above the enumeration limit), "gap" the cost's distance to it;
"route_gap" is the JSON's (pool LP - all-routes bound) / pool LP; "routes within the gap"
how many routes the proof above the enumeration limit enumerated.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "cvrplib"


def _optima() -> dict[str, tuple[int, float]]:
    with (DATA / "optima.csv").open() as f:
        return {r["name"]: (int(r["customers"]), float(r["optimal"])) for r in csv.DictReader(f)}


def _fmt(x: float | None, spec: str = ",.0f") -> str:
    return "–" if x is None else format(x, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("names", nargs="*", help="instance names (default: all in tests/data)")
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    optima = _optima()
    names = args.names or sorted(optima, key=lambda k: (optima[k][0], k))
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
          file=sys.stderr)
    rows = []
    for name in names:
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "services.cli", "plan", "solve", "--vrplib",
             str(DATA / f"{name}.vrp"), "--json", "--time-limit", str(args.time_limit),
             "--threads", str(args.threads)],
            cwd=ROOT, capture_output=True, text=True, check=False)
        wall = time.perf_counter() - t0
        if out.returncode != 0:
            rows.append(f"| {name} | {optima[name][0]} | {optima[name][1]:,.0f} | exit "
                        f"{out.returncode} | | | | | | {wall:.1f} |")
            print(out.stderr[-2000:], file=sys.stderr)
            continue
        d = json.loads(out.stdout)
        st = d["stats"]
        opt = optima[name][1]
        obj = d["objective"]
        # the bound over every plan: a proven plan's own cost (enumeration of every route,
        # or of every route within the gap), else column generation's
        lb = d["bound"] if d["status"] == "optimal" else st.get("all_routes_bound")
        gap = None if obj is None or lb is None else max(0.0, obj - lb) / obj
        rows.append(
            f"| {name} | {optima[name][0]} | {opt:,.0f} | {_fmt(obj)} | {_fmt(lb)} | "
            f"{_fmt(gap, '.2%')} | {_fmt(d.get('route_gap'), '.2%')} | {d['status']} | "
            f"{_fmt(st.get('routes_within_gap'), ',')} | {wall:.1f} |")
        print(rows[-1], file=sys.stderr)
    print("| instance | customers | published optimum | cost | bound (all routes) | gap | "
          "route_gap | status | routes within the gap | wall s |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    print("\n".join(rows))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
          file=sys.stderr)


if __name__ == "__main__":
    main()
