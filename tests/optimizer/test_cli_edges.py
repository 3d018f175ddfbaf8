"""`packloop plan solve` at the edges a new user meets: broken files, typos in field names,
`--no-baselines`, the time limit, progress lines and the units of its summary."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from optimizer import ScenarioError, load_scenario
from services.cli.plan import plan
from tests.optimizer.helpers import tiny_raw


@pytest.mark.parametrize(("name", "text", "place"), [
    ("bad.json", '{"name": "x",\n  "horizon_days": 2,,\n}\n', "bad.json:2:21:"),
    ("bad.yaml", "name: x\nhubs: [a, b\nfoo: 1\n", "bad.yaml:3:4:"),
    ("bad.yml", "name: x\n  bad: indent\n", "bad.yml:2:6:"),
])
def test_a_syntax_error_is_one_line_with_its_place(tmp_path, name, text, place):
    """A file that is not JSON/YAML exits 2 with one line naming file, line and column
    (no traceback of the parser)."""
    path = tmp_path / name
    path.write_text(text)
    r = CliRunner().invoke(plan, ["solve", str(path)])
    assert r.exit_code == 2, r.output
    assert isinstance(r.exception, SystemExit)
    lines = r.output.strip().splitlines()
    assert len(lines) == 1, r.output
    assert place in lines[0] and "syntax error" in lines[0]
    assert "Traceback" not in r.output


def test_an_unknown_field_says_which_field_was_meant():
    """A typo in a field name at any depth names the closest field of the model there."""
    raw = tiny_raw()
    raw["villages"][1]["hub_idd"] = raw["villages"][1].pop("hub_id")
    raw["horizon_dayz"] = 3
    raw["prices"]["carbon_cny_per_kg"] = 1.0
    raw["vehicle_types"][0]["count_by_hubs"] = {}
    with pytest.raises(ScenarioError) as e:
        load_scenario(raw)
    problems = dict(e.value.problems)
    assert "did you mean 'hub_id'?" in problems["villages[1].hub_idd"]
    assert "did you mean 'horizon_days'?" in problems["horizon_dayz"]
    assert "did you mean 'carbon_cny_per_kg_co2e'?" in problems["prices.carbon_cny_per_kg"]
    assert "did you mean 'count_by_hub'?" in problems["vehicle_types[0].count_by_hubs"]


def test_an_unknown_field_far_from_any_lists_the_known_ones():
    """Nothing close: the message lists the fields that are allowed there instead."""
    raw = tiny_raw()
    raw["depot"]["zzzz"] = 1
    with pytest.raises(ScenarioError) as e:
        load_scenario(raw)
    message = dict(e.value.problems)["depot.zzzz"]
    assert "unknown field 'zzzz'" in message and "lat" in message and "lon" in message


def test_an_invalid_scenario_exits_2_through_the_cli(tmp_path):
    """A typo in a YAML scenario: exit 2, the path and the suggestion, no traceback."""
    raw = tiny_raw()
    raw["horizon_dayz"] = raw.pop("horizon_days")
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(raw))
    r = CliRunner().invoke(plan, ["solve", str(path)])
    assert r.exit_code == 2, r.output
    assert "horizon_dayz" in r.output and "did you mean 'horizon_days'?" in r.output
    assert "Traceback" not in r.output
