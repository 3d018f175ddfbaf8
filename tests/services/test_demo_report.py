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


def test_the_what_if_says_when_its_change_is_within_the_solves_gaps() -> None:
    """The demo's +50 boxes "changed" the cost by -0.00 next to a marginal value of -25.24
    per box, both solves cut at the demo's time limit: the report now gives the range the
    optimal plans' change lies in, and says when it holds 0."""
    from types import SimpleNamespace

    from services.reports.demo import decision_view

    side = {"cost_cny": 100.0, "km": 1.0, "co2e_kg": 1.0, "single_use_grams": 1.0,
            "trips": 1, "marginal_values": {}}
    w = {"changes": [{"key": "pools.H01.insulated_box", "from": 10, "to": 60}],
         "base": side, "variant": side, "delta": {"cost_cny": 0.0},
         "optimal_cost_delta_range": [-30.0, 12.5]}
    d = SimpleNamespace(hub_id="H01", frontier={}, whatif=w, run_sheet=None)
    text = decision_view(d)["whatif_range"]
    assert "-30.00 to +12.50 CNY" in text and "shows no effect" in text
    w["optimal_cost_delta_range"] = [-30.0, -12.5]
    assert "no effect" not in decision_view(d)["whatif_range"]
