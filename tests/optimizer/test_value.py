"""The value of joint planning on a stress instance, and a mutation that takes it away.

bulky_empties (examples/scenarios/stress/) is the case the value rests on: the empties'
volume competes with farm produce for the return legs. Every plan is solved on its own to a
gap of 0.01 %, the joint one cold, and scored by its own cost (KPIs recomputed from the plan).
"""

from __future__ import annotations

import dataclasses

import pytest

import optimizer
from optimizer.model import build
from optimizer.value import PLANS, joint_gain, value_study
from tests.optimizer.helpers import ROOT
from tests.optimizer.plan_checks import check_plan

BULKY = ROOT / "examples" / "scenarios" / "stress" / "bulky_empties.yaml"
GAP = 1e-4


def _study() -> dict:
    return value_study(optimizer.load_scenario(BULKY), mip_gap=GAP, threads=1, time_limit_s=60)


def test_joint_is_5_percent_cheaper_than_the_better_sequential_plan():
    """Every plan passes the property checks and reached the gap; the joint plan costs at
    least 5 % less than the better of packaging first and routing first (measured 17 %)."""
    s = optimizer.load_scenario(BULKY)
    study = _study()
    for name in PLANS:
        f = study[name]
        assert f.plan is not None, f"{name}: {f.status}"
        check_plan(f.plan, s, f.kpis)
        assert f.gap is not None and f.gap <= GAP + 1e-9, f"{name}: gap {f.gap}"
    gain = joint_gain(study)
    assert gain is not None and gain >= 0.05, f"joint gains {gain:.2%} only"


def test_gain_vanishes_when_the_model_drops_the_empties_volume(monkeypatch):
    """Mutation: every model (joint and baselines alike) built as if an empty took 1 % of its
    nested litres in the return-capacity rows (`cap_back` in optimizer/model/milk_runs.py, via
    the sets every builder reads). The joint plan then gains less than 5 % (the assertion of
    the test above fails), and its return legs are overloaded, which the property checks
    catch."""
    real = build.model_sets

    def blind_to_empties(s, routes, mode, hubs):
        x = real(s, routes, mode, hubs)
        scaled = {u: r.model_copy(update={"nested_litres": 0.01 * r.nested_litres})
                  for u, r in x.reusable.items()}
        return dataclasses.replace(x, reusable=scaled)

    monkeypatch.setattr(build, "model_sets", blind_to_empties)
    study = _study()
    gain = joint_gain(study)
    assert gain is not None and gain < 0.05
    joint = study["joint"]
    with pytest.raises(AssertionError):
        check_plan(joint.plan, optimizer.load_scenario(BULKY), joint.kpis)
