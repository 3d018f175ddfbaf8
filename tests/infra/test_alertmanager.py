"""Alertmanager: config valid (amtool), generated from the network, and routing sends
each hub's alerts to that hub, county-level ones to the officer, pipeline ones to
operations (amtool config routes test)."""

from __future__ import annotations

import json
import sys

import pytest

from tests.infra.tools import INFRA, REPO, load_yaml, requires_binary, rules, run, tool

CONFIG = INFRA / "alertmanager" / "alertmanager.yml"
GENERATOR = INFRA / "alertmanager" / "build_alertmanager.py"
HUBS = [h["hub_id"] for h in json.loads(
    (REPO / "streams" / "data" / "sample_county.json").read_text("utf-8"))["hubs"]]


def route(*labels: str) -> list[str]:
    res = run([tool("amtool"), "config", "routes", "test", f"--config.file={CONFIG}", *labels])
    assert res.returncode == 0, res.stdout + res.stderr
    return res.stdout.split()


@requires_binary("amtool")
def test_amtool_check_config() -> None:
    res = run([tool("amtool"), "check-config", str(CONFIG)])
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"{len(HUBS) + 2} receivers" in res.stdout


def test_generated_config_is_current() -> None:
    res = run([sys.executable, str(GENERATOR), "--check"])
    assert res.returncode == 0, res.stderr


def test_every_hub_has_a_webhook_receiver() -> None:
    receivers = {r["name"]: r for r in load_yaml(CONFIG)["receivers"]}
    assert set(receivers) == {"officer", "operations", *(f"hub-{h}" for h in HUBS)}
    for r in receivers.values():
        assert len(r["webhook_configs"]) == 1 and r["webhook_configs"][0]["url"]


@requires_binary("amtool")
@pytest.mark.parametrize("hub", HUBS)
def test_hub_alerts_go_to_that_hub(hub: str) -> None:
    assert route("alertname=PickupOverdue", "scope=hub", f"hub={hub}",
                 f"village={hub}-V001") == [f"hub-{hub}"]


@requires_binary("amtool")
def test_every_alert_routes_by_its_scope() -> None:
    for rule in rules():
        if "alert" not in rule:
            continue
        scope = rule["labels"]["scope"]
        labels = [f"alertname={rule['alert']}", f"scope={scope}",
                  f"severity={rule['labels']['severity']}"]
        if scope == "hub":
            expected = ["hub-H07"]
            labels.append("hub=H07")
        elif scope == "county":
            expected = ["officer"]
        else:
            expected = ["operations"]
        assert route(*labels) == expected, rule["alert"]


@requires_binary("amtool")
def test_unknown_hub_falls_back_to_the_officer() -> None:
    assert route("alertname=PickupOverdue", "scope=hub", "hub=H99") == ["officer"]


@requires_binary("amtool")
def test_routing_check_can_fail() -> None:
    res = run([tool("amtool"), "config", "routes", "test", f"--config.file={CONFIG}",
               "--verify.receivers=hub-H01", "hub=H02", "scope=hub"])
    assert res.returncode != 0


def test_the_routes_come_from_the_countys_network_file(tmp_path) -> None:
    """--network: the county's own file (JSON or YAML, as PACKLOOP_NETWORK), not the
    sample county's 20 hubs."""
    county = tmp_path / "county.yaml"
    county.write_text("hubs:\n  - {hub_id: T01, name: One, lat: 30.0, lon: 120.0}\n"
                      "  - {hub_id: T02, name: Two, lat: 30.1, lon: 120.1}\n", "utf-8")
    out = tmp_path / "alertmanager.yml"
    res = run([sys.executable, str(GENERATOR), "--network", str(county), "--output", str(out)])
    assert res.returncode == 0, res.stderr
    receivers = {r["name"] for r in load_yaml(out)["receivers"]}
    assert receivers == {"officer", "operations", "hub-T01", "hub-T02"}
    readme = (INFRA / "README.md").read_text("utf-8")
    assert "build_alertmanager.py --network" in readme
