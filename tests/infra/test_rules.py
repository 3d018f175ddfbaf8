"""Prometheus rule files: syntax (promtool check), unit tests (promtool test rules),
every rule covered by a unit test that fails when the rule is broken, and every metric
they name is one packloop exports."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.infra.tools import (
    INFRA,
    PROMTOOL_TESTS,
    RULE_FILES,
    known_series,
    load_yaml,
    metric_names,
    requires_binary,
    rules,
    run,
    tool,
)

RECORDING_TEST = INFRA / "prometheus" / "tests" / "recording.test.yml"


def test_rule_files_exist() -> None:
    assert {p.name for p in RULE_FILES} == {"packloop-recording.yml", "packloop-alerts.yml"}
    assert len(PROMTOOL_TESTS) >= 3


@requires_binary("promtool")
def test_promtool_check_rules() -> None:
    res = run([tool("promtool"), "check", "rules", *map(str, RULE_FILES)])
    assert res.returncode == 0, res.stdout + res.stderr


@requires_binary("promtool")
def test_promtool_check_config() -> None:
    res = run([tool("promtool"), "check", "config", str(INFRA / "prometheus" / "prometheus.yml")])
    assert res.returncode == 0, res.stdout + res.stderr
    assert "2 rule files found" in res.stdout, res.stdout


@pytest.mark.slow
@requires_binary("promtool")
@pytest.mark.parametrize("test_file", PROMTOOL_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(test_file: Path) -> None:
    res = run([tool("promtool"), "test", "rules", test_file.name], cwd=test_file.parent)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


def test_rules_name_only_contract_metrics() -> None:
    known = known_series()
    for rule in rules():
        unknown = metric_names(rule["expr"]) - known
        assert not unknown, f"{rule.get('record') or rule.get('alert')}: {sorted(unknown)}"


def test_rules_never_select_a_bare_village() -> None:
    """Both label modes: aggregate by hub, never match on the village label itself."""
    for rule in rules():
        assert 'village="' not in rule["expr"] and "village=~" not in rule["expr"], rule


def test_alerts_are_labelled_and_documented() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text("utf-8")
    for rule in rules():
        if "alert" not in rule:
            assert re.match(r"^[a-z_]+:packloop_[a-z0-9_]+:[a-z0-9_]+$", rule["record"]) or \
                rule["record"].startswith("packloop:"), rule["record"]
            continue
        labels = rule["labels"]
        assert labels["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert labels["scope"] in {"hub", "county", "pipeline"}, rule["alert"]
        if labels["scope"] == "hub":
            assert "by (hub" in rule["expr"] or rule["expr"].lstrip().startswith(
                ("village:", "hub:")
            ), f"{rule['alert']} must keep the hub label for routing"
        ann = rule["annotations"]
        assert ann["summary"] and ann["description"], rule["alert"]
        anchor = rule["alert"].lower()
        assert ann["runbook"] == f"docs/operations.md#{anchor}", rule["alert"]
        assert f"### {rule['alert']}" in doc, f"docs/operations.md lacks ### {rule['alert']}"


def test_every_rule_appears_in_a_unit_test() -> None:
    tested_alerts: set[str] = set()
    tested_exprs: set[str] = set()
    for path in PROMTOOL_TESTS:
        for case in load_yaml(path)["tests"]:
            tested_alerts |= {t["alertname"] for t in case.get("alert_rule_test", [])
                              if t.get("exp_alerts")}
            tested_exprs |= {t["expr"].strip() for t in case.get("promql_expr_test", [])
                             if t.get("exp_samples")}
    for rule in rules():
        if "alert" in rule:
            assert rule["alert"] in tested_alerts, f"no firing test for {rule['alert']}"
        else:
            assert rule["record"] in tested_exprs, f"no sample test for {rule['record']}"


# ---------------------------------------------------------------------------- mutants
# Each rule is broken in turn in a copy of the rule files; the unit tests that cover it
# must then fail. This is what shows the unit tests can fail at all.


def _mutants() -> list[tuple[str, str, str]]:
    out = []
    for rule in rules():
        if "record" in rule:
            out.append((rule["record"], "shifted", f"({rule['expr']}) + 0.5"))
        else:
            out.append((rule["alert"], "never", f"({rule['expr']}) unless on () vector(1)"))
            out.append((rule["alert"], "always", f"({rule['expr']}) or vector(1)"))
    return out


def _cases_for(name: str) -> dict[str, dict[str, Any]]:
    """The promtool test files that exercise a rule (by alertname or recorded name), each
    cut to the test cases that do: the others cannot catch it and only cost time."""
    mentions = re.compile(rf"(alertname|expr): {re.escape(name)}\b")
    out = {}
    for path in PROMTOOL_TESTS:
        doc = load_yaml(path)
        doc["tests"] = [case for case in doc["tests"]
                        if mentions.search(yaml.safe_dump(case, width=10_000))]
        if doc["tests"]:
            out[path.name] = doc
    return out


@pytest.mark.slow
@requires_binary("promtool")
@pytest.mark.parametrize("name,kind,mutated", _mutants(), ids=lambda v: str(v)[:40])
def test_unit_tests_catch_a_broken_rule(name: str, kind: str, mutated: str,
                                        tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    tests_dir = tmp_path / "tests"
    rules_dir.mkdir()
    tests_dir.mkdir()
    found = False
    for path in RULE_FILES:
        doc = load_yaml(path)
        for group in doc["groups"]:
            for rule in group["rules"]:
                if rule.get("record", rule.get("alert")) == name:
                    rule["expr"] = mutated
                    found = True
        (rules_dir / path.name).write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    assert found
    cases = _cases_for(name)
    assert cases, f"no promtool test mentions {name}"
    for file_name, doc in cases.items():
        (tests_dir / file_name).write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
    res = run([tool("promtool"), "test", "rules", *cases], cwd=tests_dir)
    assert res.returncode != 0, f"unit tests still pass with {name} {kind}: {mutated}"
    assert "FAILED" in res.stdout + res.stderr


def test_officer_month_rules_are_generated_from_the_kpi_module() -> None:
    """The month mass-balance rules in packloop-recording.yml are exactly what
    streams/officer_kpis.py generates (infra/prometheus/build_rules.py): editing either by
    hand without regenerating fails here."""
    import importlib.util

    path = INFRA / "prometheus" / "build_rules.py"
    spec = importlib.util.spec_from_file_location("build_rules", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    text = mod.TARGET.read_text("utf-8")
    assert mod.BEGIN in text and mod.render(text) == text, "run infra/prometheus/build_rules.py"
    # the recovery alerts compare with the targets file's recovery_ratio, as committed
    alerts = mod.ALERTS.read_text("utf-8")
    assert mod.BEGIN in alerts and mod.render_alerts(alerts) == alerts, \
        "run infra/prometheus/build_rules.py (alerts)"
    tests = mod.ALERT_TESTS.read_text("utf-8")
    assert mod.TESTS_BEGIN in tests and mod.render_alert_tests(tests) == tests, \
        "run infra/prometheus/build_rules.py (alert tests)"
    target = mod.recovery_target()
    assert f"hub:packloop_waste_month_recovery_ratio:ratio < {target:g}" in alerts
    assert f"county:packloop_waste_month_recovery_ratio:ratio < {target:g}" in alerts
    records = {r["record"] for r in rules() if "record" in r}
    from streams.officer_kpis import recording_rules

    assert {r["record"] for r in recording_rules()} <= records


def _recovery_thresholds(board: dict[str, Any]) -> set[float]:
    """The target of every panel coloured red below, green from the recovery target."""
    out = set()
    for panel in board["panels"]:
        steps = panel.get("fieldConfig", {}).get("defaults", {}).get("thresholds", {}) \
            .get("steps", [])
        colours = [s["color"] for s in steps]
        if colours == ["red", "orange", "green"]:
            out.add(steps[-1]["value"])
    return out


@pytest.mark.slow
@requires_binary("promtool")
def test_a_countys_own_target_changes_the_alerts_their_tests_and_the_dashboards(
        tmp_path: Path) -> None:
    """Before: build_rules.py --targets rewrote the alerts, but the promtool tests still
    expected 60 % (and failed), and the dashboards had no --targets (thresholds at 0.6)."""
    import importlib.util
    import json
    import sys

    county = tmp_path / "county.yaml"
    county.write_text("targets:\n  recovery_ratio:\n    at_least: 0.45\n"
                      "    source: the county's own decision\n", "utf-8")
    spec = importlib.util.spec_from_file_location(
        "build_rules", INFRA / "prometheus" / "build_rules.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    target = mod.recovery_target(str(county))
    assert target == 0.45
    rules_dir, tests_dir = tmp_path / "rules", tmp_path / "tests"
    rules_dir.mkdir()
    tests_dir.mkdir()
    alerts = mod.render_alerts(mod.ALERTS.read_text("utf-8"), target)
    assert "ratio:ratio < 0.45" in alerts and "ratio:ratio < 0.6" not in alerts
    (rules_dir / mod.ALERTS.name).write_text(alerts, "utf-8")
    (rules_dir / mod.TARGET.name).write_text(mod.TARGET.read_text("utf-8"), "utf-8")
    # Only the test cases of the two alerts the target changes: the others cannot notice it
    # (running every file took 20 s).
    changed = re.compile(r"alertname: (Hub|County)RecoveryRatioBelowTarget\b")
    written = []
    for path in PROMTOOL_TESTS:
        text = path.read_text("utf-8")
        if path == mod.ALERT_TESTS:
            text = mod.render_alert_tests(text, target)
            assert "target 45 %" in text and "target 60 %" not in text
        doc = yaml.safe_load(text)
        doc["tests"] = [case for case in doc["tests"]
                        if changed.search(yaml.safe_dump(case, width=10_000))]
        if doc["tests"]:
            (tests_dir / path.name).write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
            written.append(path.name)
    assert mod.ALERT_TESTS.name in written
    res = run([tool("promtool"), "test", "rules", *written], cwd=tests_dir)
    assert res.returncode == 0, res.stdout + res.stderr

    generator = INFRA / "grafana" / "build_dashboards.py"
    res = run([sys.executable, str(generator), "--targets", str(county),
               "--out", str(tmp_path / "dashboards")])
    assert res.returncode == 0, res.stderr
    for name in ("county-overview.json", "township-village.json"):
        board = json.loads((tmp_path / "dashboards" / name).read_text("utf-8"))
        committed = json.loads((INFRA / "grafana" / "dashboards" / name).read_text("utf-8"))
        assert _recovery_thresholds(board) == {0.45}, name
        assert _recovery_thresholds(committed) == {mod.recovery_target()}, name
