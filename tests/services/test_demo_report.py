"""The demo report charts what a plan has, also when its time limit cut it short."""

from __future__ import annotations

from services.reports.demo import chart_kpis

KPIS = {"cost_cny": {"total": 10.0}, "co2e_kg": {"total": 2.0}, "single_use_grams": 5}


def test_a_plan_without_joint_kpis_or_with_a_failed_baseline_is_charted_in_part() -> None:
    plan = {"kpis": None, "baselines": {"uncoordinated": {"kpis": KPIS},
                                        "sequential": {"kpis": None}, "single_use": {}}}
    assert chart_kpis(plan) == {"uncoordinated": KPIS}
    assert chart_kpis({"kpis": {}, "baselines": None}) == {}
    assert chart_kpis({"kpis": KPIS}) == {"joint": KPIS}
