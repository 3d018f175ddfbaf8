"""The horizon's demand from the counted days of the live stream (`demand_days`)."""

from __future__ import annotations

from datetime import date

import pytest

from services.planner.from_state import demand_days, outstanding_waste
from tests.services.helpers import NETWORK

V = "H01-V001"


def _days(groups: list[dict]) -> dict[int, int]:
    return {g["day"]: g["parcels"] for g in groups}


def test_a_full_history_lands_day_by_day() -> None:
    counts = {(V, date(2026, 12, d), "ambient", "down"): d for d in range(1, 8)}
    assert _days(demand_days(counts, date(2026, 12, 7), 7, NETWORK)) == {
        i: i + 1 for i in range(7)}
    # a longer history: the last seven days only
    counts[(V, date(2026, 11, 30), "ambient", "down")] = 99
    assert 99 not in _days(demand_days(counts, date(2026, 12, 7), 7, NETWORK)).values()


def test_a_history_shorter_than_the_horizon_is_repeated_from_its_first_day() -> None:
    """Two days of events and a week planned: the two days had landed on days 5 and 6,
    and the first five days (tomorrow's dispatch among them) planned nothing."""
    counts = {(V, date(2026, 12, 6), "ambient", "down"): 10,
              (V, date(2026, 12, 7), "ambient", "down"): 20,
              (V, date(2026, 12, 7), "chilled", "up"): 3,
              ("NOWHERE", date(2026, 12, 7), "ambient", "down"): 5}
    groups = demand_days(counts, date(2026, 12, 7), 7, NETWORK)
    down = {g["day"]: g["parcels"] for g in groups if g["direction"] == "down"}
    assert down == {0: 10, 1: 20, 2: 10, 3: 20, 4: 10, 5: 20, 6: 10}
    assert [g["day"] for g in groups if g["direction"] == "up"] == [1, 3, 5]
    assert all(g["village_id"] == V for g in groups)
    assert demand_days({}, None, 7, NETWORK) == []


def test_quiet_first_days_of_an_older_stream_stay_quiet() -> None:
    """A month-old stream whose window starts with two days without shipments (a holiday)
    is not young: its days keep their places (they were repeated, moving every weekday)."""
    counts = {(V, date(2026, 11, 20), "ambient", "down"): 99}
    counts |= {(V, date(2026, 12, d), "ambient", "down"): d for d in range(3, 8)}
    assert _days(demand_days(counts, date(2026, 12, 7), 7, NETWORK)) == {
        2: 3, 3: 4, 4: 5, 5: 6, 6: 7}


@pytest.mark.slow
def test_a_village_beyond_what_a_plan_holds_is_left_out_and_named() -> None:
    """The gateway takes 10^9 g per packaging item, so one event put a village at 5e10 g
    and every plan from the live state failed (the whole county's daily dispatch too),
    naming `outstanding_waste[1].grams` of a scenario nobody wrote. That village's waste is
    left out of the plan now, a warning names it, and the hub's plan is solved."""
    import optimizer

    vids = sorted(NETWORK.villages)[:2]
    status = {"villages": {vids[0]: {"outstanding_grams": {"tape": 5e10, "cardboard": 10}},
                           vids[1]: {"outstanding_grams": {"cardboard": 2500}}}}
    waste, warnings = outstanding_waste(status)
    assert waste == {vids[1]: 2500.0}
    [warning] = warnings
    assert warning.startswith(f"village {vids[0]}: 50,000,000,010 g")
    assert "left out of the plan" in warning
    hub = NETWORK.villages[vids[0]].hub_id
    s = optimizer.scenario_from_network(NETWORK.raw, outstanding_waste_grams=waste,
                                        hubs=[hub], horizon_days=2)
    r = optimizer.solve(s, time_limit_s=10, threads=1, baselines=False, marginals=False)
    assert r.plan is not None
