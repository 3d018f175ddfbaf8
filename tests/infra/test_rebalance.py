"""Partitions moving between workers: no rule or dashboard counts the move.

A stream worker's counters are the sums over the Kafka partitions it owns at scrape time
(streams/metrics.py), so a partition moving between workers drops one worker's series and
raises another's. rate()/increase() read the drop as a counter reset and count the move:
before, the dashboards' container, pickup, waste and event panels and DeadLetterSpike's
recording rules did. Now the rules record the sums over workers and everything takes
delta() of those. Checked here: statically (no range function of a worker counter, no
rate()/increase() of a recorded sum, a recorded sum for every worker counter) and with
promtool, by evaluating the committed dashboards' queries on series in which partitions
move (with and without a scrape of gap) against the true figures. The rules themselves
are tested in infra/prometheus/tests/rebalance.test.yml.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams import metric_names as mn
from tests.infra.tools import (
    DASHBOARDS,
    RULES_DIR,
    requires_binary,
    rules,
    run,
    substitute,
    tool,
)

#: the worker's counters: partition state, so per worker they move with the partitions
WORKER_COUNTERS = tuple(m for m in mn.METRICS if m.component == "worker" and m.type == "counter")
_NAMES = "|".join(sorted((m.name for m in WORKER_COUNTERS), key=len, reverse=True))
#: a range selector on a worker counter (rate, increase, delta... of a worker's series)
_RANGE_OF_COUNTER = re.compile(rf"\b({_NAMES})\s*(\{{[^{{}}]*\}})?\s*\[")
#: rate()/increase()/irate()/resets() of a recorded sum over workers: a restore dip in
#: the sum would read as a counter reset
_RESET_OF_SUM = re.compile(
    rf"\b(rate|irate|increase|resets)\s*\(\s*[a-z_]+:({_NAMES}):sum\b")


def _dashboard_queries() -> list[tuple[str, str, str, str]]:
    """(dashboard file, panel title, refId, expr) of every panel target."""
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text("utf-8"))
        for panel in board["panels"]:
            for t in panel.get("targets", []):
                out.append((path.name, panel["title"], t["refId"], t["expr"]))
    return out


def _exprs() -> list[tuple[str, str]]:
    out = [(r.get("record") or r["alert"], r["expr"]) for r in rules()]
    out += [(f"{b} {title}/{ref}", e) for b, title, ref, e in _dashboard_queries()]
    return out


def test_no_rule_or_panel_takes_a_range_of_a_worker_counter() -> None:
    """Before: e.g. sum(increase(packloop_containers_issued_total[30d])) on the county
    overview and sum(rate(packloop_events_total[5m])) in the dead-letter rules."""
    bad = [(where, e) for where, e in _exprs() if _RANGE_OF_COUNTER.search(e)]
    assert not bad, bad
    assert _RANGE_OF_COUNTER.search("sum(rate(packloop_events_total{outcome='x'}[5m]))")
    assert _RANGE_OF_COUNTER.search("increase(packloop_containers_lost_total [30d])")


def test_no_rule_or_panel_reads_a_recorded_sum_as_a_counter() -> None:
    bad = [(where, e) for where, e in _exprs() if _RESET_OF_SUM.search(e)]
    assert not bad, bad
    assert _RESET_OF_SUM.search("rate(hub:packloop_pickups_completed_total:sum[5m])")


def test_every_worker_counter_has_a_recorded_sum_over_workers() -> None:
    """level:<counter>:sum = sum by (the township-mode labels) (<counter>): no instance,
    so a partition moving between workers does not move it."""
    recorded = {r["record"]: " ".join(r["expr"].split()) for r in rules() if "record" in r}
    for spec in WORKER_COUNTERS:
        if spec.deprecated_for:
            continue
        labels = spec.labels_for(False)
        name = f"{'_'.join(labels)}:{spec.name}:sum"
        assert recorded.get(name) == f"sum by ({', '.join(labels)}) ({spec.name})", name


# ------------------------------------------------------------- the dashboards' queries

STEP_H = 1
HOURS = 744  # 31 days of hourly samples (0 .. 744 h)
#: per hour per township of each counter's true growth (default 2)
GROWTH = {"packloop_containers_issued_total": 10, "packloop_containers_lost_total": 1,
          "packloop_containers_damaged_total": 1, "packloop_events_total": 36}
MOVED = 1000  # a partition's count that moves
#: township: (hour the partition moves from w1 to w2, scrapes of gap while restored)
MOVES = {"H01": (600, 0), "H02": (480, 1)}
T_RATE, T_SPAN = "601h", "744h"  # the 2 h rate window holds H01's move; 7 and 30 days both
VARIABLES = {"__rate_interval": "2h", "__rate_interval_ms": "7200000", "hub": ".*",
             "village": ".*", "window": "7d"}
CLOSED = {"material": "cardboard", "reason": "outstanding_grams",
          "container_type": "reusable_crate"}


def _seg(start: int, step: int, n: int) -> str:
    return f"{start}+{step}x{n - 1}" if n > 1 else str(start)


def _input_series() -> list[dict[str, str]]:
    """Township mode (the worker's hub series): w1 owns a partition with MOVED of every
    counter plus 500 of others; w2 has 200 growing at the true rate. The partition moves
    to w2 (H02's with a scrape of gap). Events (no hub) move as H01's."""
    out = []
    n = HOURS // STEP_H + 1
    for spec in WORKER_COUNTERS:
        if spec.deprecated_for:
            continue
        r = GROWTH.get(spec.name, 2)
        if spec.name == "packloop_events_total":
            keys = [({"outcome": "applied", "reason": ""}, MOVES["H01"]),
                    ({"outcome": "dead_lettered", "reason": "schema"}, MOVES["H01"])]
        else:
            keys = [({lb: (h if lb == "hub" else CLOSED[lb]) for lb in spec.labels_for(False)},
                     MOVES[h]) for h in MOVES]
        for labels, (at, gap) in keys:
            sel = ",".join(f'{k}="{v}"' for k, v in labels.items())
            w1 = f"{_seg(MOVED + 500, 0, at)} {_seg(500, 0, n - at)}"
            back = at + gap
            w2 = f"{_seg(200, r, back)} {_seg(200 + r * back + MOVED, r, n - back)}"
            out.append({"series": f'{spec.name}{{instance="w1",{sel}}}', "values": w1})
            out.append({"series": f'{spec.name}{{instance="w2",{sel}}}', "values": w2})
    return out


PER_DAY = 4 * 2 * 12  # 2 townships x 2 h x growth 2, per 7200 s, x 86400
#: (dashboard, panel, refId) -> (eval time, {labels: 1000 x the true figure})
EXPECTED: dict[tuple[str, str, str], tuple[str, dict[str, int]]] = {
    ("county-overview.json", "Generated vs recovered (kg per day)", "A"):
        (T_RATE, {"{}": PER_DAY}),  # grams per day / 1000 x 1000
    ("county-overview.json", "Generated vs recovered (kg per day)", "B"):
        (T_RATE, {"{}": PER_DAY}),
    ("county-overview.json", "Requested, 7 days", "A"): (T_SPAN, {"{}": 2 * 2 * 168 * 1000}),
    ("county-overview.json", "Completed, 7 days", "A"): (T_SPAN, {"{}": 2 * 2 * 168 * 1000}),
    ("county-overview.json", "Went overdue, 7 days", "A"):
        (T_SPAN, {"{}": 2 * 2 * 168 * 1000}),
    ("county-overview.json", "Pickups per day", "A"):
        (T_RATE, {'{reason="outstanding_grams"}': PER_DAY * 1000}),
    ("county-overview.json", "Pickups per day", "B"): (T_RATE, {"{}": PER_DAY * 1000}),
    ("county-overview.json", "Pickups per day", "C"): (T_RATE, {"{}": PER_DAY * 1000}),
    ("county-overview.json", "Issued, returned, damaged, lost (per day)", "A"):
        (T_RATE, {"{}": 5 * PER_DAY * 1000}),
    ("county-overview.json", "Issued, returned, damaged, lost (per day)", "B"):
        (T_RATE, {"{}": PER_DAY * 1000}),
    ("county-overview.json", "Issued, returned, damaged, lost (per day)", "C"):
        (T_RATE, {"{}": PER_DAY // 2 * 1000}),
    ("county-overview.json", "Issued, returned, damaged, lost (per day)", "D"):
        (T_RATE, {"{}": PER_DAY // 2 * 1000}),
    # (1 lost + 1 damaged) per 10 issued an hour, in each township
    ("county-overview.json", "Loss and damage share, 30 days", "A"):
        (T_SPAN, {'{hub="H01"}': 200, '{hub="H02"}': 200}),
    ("township-village.json", "Pickups per day", "A"):
        (T_RATE, {'{reason="outstanding_grams"}': PER_DAY * 1000}),
    ("township-village.json", "Pickups per day", "B"): (T_RATE, {"{}": PER_DAY * 1000}),
    # 36 an hour = 0.01 / s
    ("pipeline-health.json", "Events by outcome", "A"):
        (T_RATE, {'{outcome="applied"}': 10, '{outcome="dead_lettered"}': 10}),
    ("pipeline-health.json", "Dead letters by reason", "A"):
        (T_RATE, {'{reason="schema"}': 10}),
}

#: the panels' queries before (rate()/increase() of the workers' series), as committed
OLD = {
    ("county-overview.json", "Loss and damage share, 30 days", "A"):
        "sum by (hub) (increase(packloop_containers_lost_total[30d]) "
        "+ increase(packloop_containers_damaged_total[30d])) "
        "/ (sum by (hub) (increase(packloop_containers_issued_total[30d])) > 0)",
    ("county-overview.json", "Issued, returned, damaged, lost (per day)", "A"):
        "sum(rate(packloop_containers_issued_total[$__rate_interval])) * 86400",
    ("county-overview.json", "Requested, 7 days", "A"):
        "sum(increase(packloop_pickups_requested_total[7d]))",
    ("township-village.json", "Pickups per day", "A"):
        'sum by (reason) (rate(packloop_pickups_requested_total{hub=~"$hub", '
        'village=~"$village"}[$__rate_interval])) * 86400',
    ("pipeline-health.json", "Events by outcome", "A"):
        "sum by (outcome) (rate(packloop_events_total[$__rate_interval]))",
}


def _case(name: str, checks: list[tuple[str, str, dict[str, int]]]) -> dict[str, Any]:
    return {
        "name": name,
        "interval": f"{STEP_H}h",
        "input_series": _input_series(),
        "promql_expr_test": [
            {"expr": f"round(1000 * ({substitute(expr, VARIABLES)}))", "eval_time": at,
             "exp_samples": [{"labels": labels, "value": value}
                             for labels, value in sorted(want.items())]}
            for expr, at, want in checks],
    }


def _promtool(cases: list[dict[str, Any]], tmp: Path) -> tuple[int, str]:
    doc = {"rule_files": [str(RULES_DIR / "packloop-recording.yml")],
           "evaluation_interval": f"{STEP_H}h", "tests": cases}
    (tmp / "moves.test.yml").write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    res = run([tool("promtool"), "test", "rules", "moves.test.yml"], cwd=tmp)
    return res.returncode, res.stdout + res.stderr


def test_every_counter_panel_has_an_expectation() -> None:
    counter_panels = {(b, t, r) for b, t, r, e in _dashboard_queries()
                      if re.search(rf"[a-z_]+:({_NAMES}):sum", e)}
    assert counter_panels == set(EXPECTED)
    assert set(OLD) <= set(EXPECTED)


@pytest.mark.slow
@requires_binary("promtool")
def test_dashboards_read_the_true_figures_while_partitions_move(tmp_path: Path) -> None:
    """Every panel over a worker counter, on series where a partition moves between
    workers inside its window (H02's with a scrape of gap, inside the 30 days), reads the
    true growth; and the queries it had before read the move, on the same series."""
    queries = {(b, t, r): e for b, t, r, e in _dashboard_queries()}
    now = _case("dashboards now", [(queries[key], *EXPECTED[key]) for key in EXPECTED])
    before = _case("before", [(OLD[key], *EXPECTED[key]) for key in OLD])
    code, out = _promtool([now, before], tmp_path)
    assert code != 0 and "FAILED" in out, out
    failed = {t["expr"] for t in now["promql_expr_test"] if json.dumps(t["expr"]) in out}
    assert not failed, out
    for t in before["promql_expr_test"]:
        assert json.dumps(t["expr"]) in out, f"{t['expr']} read the true figure:\n{out}"
