"""Helpers for the infra tests: external tools, PromQL metric names, rule files.

The tools are real binaries from Debian packages (installed by scripts/setup.sh):
promtool (package ``prometheus``), amtool (``prometheus-alertmanager``) and
docker-compose (``docker-compose``, v1). A test that runs one says so with
``@requires_binary(name)``: without the binary it is skipped with the package to
install, so ``make test-unit`` runs on any machine. ``make test`` sets
``PACKLOOP_REQUIRE_BINARIES=1``: there a missing binary fails the test instead, so the
full suite proves every check.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.metric_names import series_names

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
RULES_DIR = INFRA / "prometheus" / "rules"
RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
PROMTOOL_TESTS = sorted((INFRA / "prometheus" / "tests").glob("*.test.yml"))
DASHBOARDS = sorted((INFRA / "grafana" / "dashboards").glob("*.json"))

TOOL_PACKAGES = {
    "promtool": "prometheus",
    "amtool": "prometheus-alertmanager",
    "docker-compose": "docker-compose",
    "prometheus": "prometheus",
}

# Series Prometheus itself creates.
BUILTIN_SERIES = frozenset({"up", "ALERTS", "ALERTS_FOR_STATE"})


def requires_binary(name: str) -> pytest.MarkDecorator:
    """Skip the test when ``name`` is not on PATH, unless binaries are required."""
    missing = shutil.which(name) is None
    required = os.environ.get("PACKLOOP_REQUIRE_BINARIES") == "1"
    return pytest.mark.skipif(
        missing and not required,
        reason=f"{name} is not on PATH: install the Debian package {TOOL_PACKAGES[name]!r} "
        "(scripts/setup.sh does)",
    )


def tool(name: str) -> str:
    """The binary's path; a test failure naming the package when it is missing."""
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} is not on PATH: install the Debian package {TOOL_PACKAGES[name]!r} "
            f"(apt-get install {TOOL_PACKAGES[name]}); scripts/setup.sh should do this",
            pytrace=False,
        )
    return path


def run(
    argv: list[str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> list[dict[str, Any]]:
    """Every rule of every rule file, in order."""
    out: list[dict[str, Any]] = []
    for path in RULE_FILES:
        for group in load_yaml(path)["groups"]:
            out.extend(group["rules"])
    return out


def recording_names() -> frozenset[str]:
    return frozenset(r["record"] for r in rules() if "record" in r)


def known_series() -> frozenset[str]:
    """Names a query may use: the contract, the recording rules, Prometheus' own."""
    return series_names() | recording_names() | BUILTIN_SERIES


# ------------------------------------------------------------------ PromQL names

_KEYWORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
    "and", "or", "unless", "inf", "nan", "atan2", "start", "end",
})
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_BRACES = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENT = re.compile(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (functions and keywords dropped)."""
    text = _STRING.sub('""', expr)
    text = _BRACES.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    names = set()
    for m in _IDENT.finditer(text):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


GRAFANA_VARS = {
    "__rate_interval": "5m",
    "__rate_interval_ms": "300000",
    "__interval": "1m",
    "__range": "1h",
    "hub": "H01",
    "village": "H01-V001",
    "window": "7d",
}
_VAR = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def substitute(expr: str, values: dict[str, str] | None = None) -> str:
    """Replace Grafana variables with sample values; unknown variables fail."""
    values = values or GRAFANA_VARS

    def repl(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"unknown Grafana variable ${name} in {expr!r}")
        return values[name]

    return _VAR.sub(repl, expr)


def promtool_check_exprs(exprs: list[str], tmp: Path) -> subprocess.CompletedProcess[str]:
    """promtool 2.42 cannot parse a bare expression: wrap them as recording rules."""
    doc = {"groups": [{"name": "queries", "rules": [
        {"record": f"query:{i}", "expr": e} for i, e in enumerate(exprs)
    ]}]}
    path = tmp / "queries.rules.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return run([tool("promtool"), "check", "rules", str(path)])
