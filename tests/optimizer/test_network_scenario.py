"""Scenarios built from the network reference data and live stream state."""

from __future__ import annotations

import pytest

import optimizer
from optimizer import load_factors, scenario_from_network
from tests.optimizer.helpers import NETWORK
from tests.optimizer.plan_checks import check_result


def test_defaults_follow_the_network():
    """One hub's scenario has its villages, the factor-set version and ~a week of demand."""
    s = scenario_from_network(NETWORK, hubs=["H02"], horizon_days=7)
    assert {h.hub_id for h in s.hubs} == {"H02"}
    assert all(v.hub_id == "H02" for v in s.villages)
    assert s.factor_set == load_factors().version
    assert {g.day for g in s.demand} == set(range(7))


def test_live_state_is_used_and_plans():
    """Given demand, outstanding waste and pools from the streams, the plan collects exactly
    that waste and respects every property check."""
    net = scenario_from_network(NETWORK, hubs=["H03"])
    vids = [v.village_id for v in net.villages][:4]
    demand = [{"village_id": v, "day": d, "class_id": c, "direction": "down", "parcels": 10}
              for v in vids for d in range(2) for c in ("ambient", "chilled")]
    waste = {vids[0]: {"carton": 20000, "eps_foam": 3000}, vids[1]: 5000}
    s = scenario_from_network(NETWORK, hubs=["H03"], demand=demand, horizon_days=2,
                              outstanding_waste_grams=waste,
                              container_pools={"H03": {"insulated_box": 25}})
    assert {w.village_id: w.grams for w in s.outstanding_waste} == {vids[0]: 23000,
                                                                   vids[1]: 5000}
    res = optimizer.solve(s, time_limit_s=30, mip_gap=1e-6)
    check_result(res, s)
    assert res.kpis["recyclables_collected_grams"] == pytest.approx(28000)


def test_the_county_week_example_is_built_from_todays_factors() -> None:
    """examples/scenarios/county_week.json is what make_county_week.py writes from the
    sample county and optimizer/data/factors.yaml: it had stayed at factor set 2026.2
    (EPS box 903.74 g against 724.93 g today, box cycle life 1,000 against 300)."""
    import json
    from pathlib import Path

    from optimizer import scenario_from_network

    root = Path(__file__).resolve().parents[2]
    s = scenario_from_network(root / "streams" / "data" / "sample_county.json",
                              horizon_days=7, seed=2026, name="Suichang county week")
    shipped = json.loads((root / "examples" / "scenarios" / "county_week.json").read_text())
    assert shipped == json.loads(json.dumps(s.model_dump(mode="json", exclude_defaults=True))), (
        "regenerate it: .venv/bin/python examples/scenarios/make_county_week.py")
