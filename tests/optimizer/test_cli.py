"""`packloop plan solve` command-line contract."""

from __future__ import annotations

import json

from click.testing import CliRunner

from services.cli.plan import plan
from tests.optimizer.helpers import TINY


def test_json_contract_keys(tmp_path):
    """--json prints the documented keys; --out writes plan.json and report.html."""
    r = CliRunner().invoke(plan, ["solve", str(TINY), "--json", "--time-limit", "30",
                                  "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout[r.stdout.index("{"):])
    for key in ("status", "objective", "bound", "gap", "trips", "kpis", "baselines"):
        assert key in data
    assert data["status"] == "optimal"
    t = data["trips"][0]
    for key in ("day", "hub_id", "vehicle_type", "stops", "loads"):
        assert key in t
    assert set(data["baselines"]) == {"uncoordinated", "sequential"}
    assert (tmp_path / "plan.json").exists()
    html = (tmp_path / "report.html").read_text()
    assert "<svg" in html or "data:image/png" in html
    assert "<script src" not in html


def test_invalid_scenario_exits_with_paths(tmp_path):
    """A broken scenario gives a usage error listing paths, not a traceback."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"horizon_days": 0}))
    r = CliRunner().invoke(plan, ["solve", str(bad)])
    assert r.exit_code != 0
    assert "horizon_days" in r.output and "depot" in r.output


def test_needs_scenario_or_vrplib():
    """Neither SCENARIO nor --vrplib is a usage error."""
    r = CliRunner().invoke(plan, ["solve"])
    assert r.exit_code == 2
