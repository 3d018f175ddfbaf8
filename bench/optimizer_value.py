"""The value of joint planning on the stress scenarios (examples/scenarios/stress/).

    python bench/optimizer_value.py                     # every family, gap 0.1 %, 1 thread
    python bench/optimizer_value.py --markdown           # the tables of docs/optimizer.md
    python bench/optimizer_value.py bulky_empties --threads 2

Per scenario: the joint plan solved cold, packaging first, routing first and the
uncoordinated baseline, each to the same gap (`optimizer.value.value_study`), with cost, km,
CO2e, single-use grams, gap and wall time; then one summary line per scenario with the joint
plan's gain over the better sequential plan. Costs are the plans' own (KPIs recomputed from
each plan). "packaging first, lenient" is packaging first with the empties left waiting as
the routing tool likes instead of picked up when due: a sensitivity, not a baseline.
A family whose file the scenario format cannot load yet (it needs a model feature this
checkout lacks) is listed as not run, with the loader's reason.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import optimizer
from optimizer.value import LENIENT, PLANS, better_sequential, joint_gain, value_study

ROOT = Path(__file__).resolve().parents[1]
STRESS = ROOT / "examples" / "scenarios" / "stress"
LABELS = {
    "joint": "joint (cold)",
    "sequential_packaging_first": "packaging first",
    "sequential_routing_first": "routing first",
    "uncoordinated": "uncoordinated",
    LENIENT: "packaging first, lenient",
}


def _num(x: float | None, fmt: str) -> str:
    if x is None:
        return "—"
    text = format(x, fmt)
    return text[1:] if text.startswith("-") and float(text.replace(",", "")) == 0 else text


def _table(rows: list[list[str]], header: list[str], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) if k == 0 else c.rjust(w)
                               for k, (c, w) in enumerate(zip(r, widths, strict=True)))
                     for r in [header, *rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("names", nargs="*", help="scenario families (file stems); default all")
    ap.add_argument("--gap", type=float, default=1e-3, help="relative MIP gap of every solve")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--time-limit", type=float, default=300.0, help="per solve, seconds")
    ap.add_argument("--no-lenient", action="store_true",
                    help="skip the packaging-first sensitivity with lenient pickups")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    files = sorted(STRESS.glob("*.yaml"))
    if args.names:
        files = [f for f in files if f.stem in args.names]
    summary: list[list[str]] = []
    every: list[list[str]] = []  # --markdown: one table of every scenario's plans
    not_run: list[str] = []
    header = ["plan", "cost CNY", "km", "CO2e kg", "single-use g", "gap %", "time s", "status"]
    for path in files:
        try:
            s = optimizer.load_scenario(path)
        except optimizer.ScenarioError as exc:
            why = "; ".join(f"{p}: {m}" for p, m in exc.problems)
            not_run.append(f"{path.stem}: not run, needs a model feature this checkout lacks "
                           f"({why})")
            continue
        study = value_study(s, mip_gap=args.gap, threads=args.threads,
                            time_limit_s=args.time_limit, lenient=not args.no_lenient)
        rows = []
        for name in (*PLANS, LENIENT):
            f = study.get(name)
            if f is None:
                continue
            k = f.kpis or {}
            rows.append([LABELS[name], _num(f.cost_cny, ",.1f"), _num(k.get("km"), ",.1f"),
                         _num((k.get("co2e_kg") or {}).get("total"), ",.1f"),
                         _num(k.get("single_use_grams"), ",.0f"),
                         _num(None if f.gap is None else 100 * f.gap, ".3f"),
                         f"{f.time_s:.1f}", f.status])
        if args.markdown:
            every += [[path.stem if n == 0 else "", *r] for n, r in enumerate(rows)]
        else:
            print(f"\n{path.stem}\n")
            print(_table(rows, header, False))
        seq = better_sequential(study)
        gain = joint_gain(study)
        worst_gap = max((study[n].gap or 0.0) for n in PLANS if n in study)
        rf = study.get("sequential_routing_first")
        summary.append([
            path.stem, _num(study["joint"].cost_cny, ",.1f"),
            _num(study["sequential_packaging_first"].cost_cny, ",.1f"),
            _num(None if rf is None else rf.cost_cny, ",.1f"),
            "—" if seq is None else LABELS[seq.name],
            _num(None if gain is None else 100 * gain, ".1f"),
            _num(study["uncoordinated"].cost_cny, ",.1f"), f"{100 * worst_gap:.3f}"])
    if every:
        print(_table(every, ["scenario", *header], True))
    print("\nsummary (cost CNY; gain = joint against the better sequential plan)\n")
    print(_table(summary, ["scenario", "joint", "packaging first", "routing first",
                           "better sequential", "gain %", "uncoordinated", "max gap %"],
                 args.markdown))
    for line in not_run:
        print(f"\n{line}")


if __name__ == "__main__":
    main()
