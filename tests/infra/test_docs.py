"""docs/operations.md stays in step with the rules, dashboards and the metric contract."""

from __future__ import annotations

import json

from tests.infra.series import Deployment, table, total
from tests.infra.tools import DASHBOARDS, REPO, rules

DOC = (REPO / "docs" / "operations.md").read_text("utf-8")


def test_series_table_is_current() -> None:
    assert table() in DOC, "regenerate the table: python -m tests.infra.series"


def test_series_counts() -> None:
    # The figures quoted in the text.
    assert round(total(True) / 1000) == 86
    assert 20_000 < total(False) < 21_000
    # Township mode grows with workers: each worker exports every hub it owns villages of.
    assert total(False, Deployment(workers=8)) > total(False, Deployment(workers=4))
    # village mode: only per-worker and per-hub families (e.g. pickups by material) grow
    assert total(True, Deployment(workers=8)) - total(True) < 0.06 * total(True)


def test_every_rule_and_dashboard_is_described() -> None:
    for rule in rules():
        name = rule.get("alert") or rule["record"]
        assert f"`{name}`" in DOC, name
    for path in DASHBOARDS:
        board = json.loads(path.read_text("utf-8"))
        assert f"**{board['title']}** (`{board['uid']}`" in DOC, board["title"]
