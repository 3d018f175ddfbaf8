"""The HTML report says what became of each baseline (it dropped one without a word)."""

from __future__ import annotations

import copy
import dataclasses

from optimizer import load_scenario, solve, write_report
from tests.optimizer.helpers import tiny_raw


def test_a_baseline_without_a_plan_or_cut_short_is_said(tmp_path) -> None:
    s = load_scenario(tiny_raw())
    result = solve(s, time_limit_s=60, threads=1)
    assert result.baselines["uncoordinated"].get("kpis")
    base = copy.deepcopy(result.baselines)
    base["uncoordinated"] = {"status": "infeasible", "objective": None,
                             "diagnosis": [{"what": "hub H01", "why": "too few trunk legs"}]}
    base["sequential"] = {**base["sequential"], "status": "time_limit", "gap": 0.029}
    html = write_report(dataclasses.replace(result, baselines=base), s, tmp_path).read_text()
    assert "Uncoordinated: no plan (infeasible: too few trunk legs)." in html
    assert "Sequential: time_limit, stopped at gap 2.900%" in html
    assert "<th>uncoordinated</th>" not in html and "<th>sequential</th>" in html
