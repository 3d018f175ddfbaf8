"""The rules and dashboards against a real Prometheus, in both label modes.

Synthetic exporters built from the metric contract (two workers owning different
villages, a gateway, a planner) are scraped every second by Debian's Prometheus 2.42
running packloop's real rule files. Then every recording and alert rule must evaluate
without error (e.g. no many-to-many matching), and every dashboard query must return
data, with the village label on and off. Nothing here needs Kafka or packloop's workers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml

from streams import metric_names as mn
from tests.helpers import wait_until
from tests.infra.tools import DASHBOARDS, REPO, RULE_FILES, requires_binary, substitute
from tests.prometheus_server import Prometheus, prometheus_server

pytestmark = [pytest.mark.integration, requires_binary("prometheus")]

NETWORK = json.loads((REPO / "streams" / "data" / "sample_county.json").read_text("utf-8"))
COORDS = {v["village_id"]: (v["lat"], v["lon"]) for v in NETWORK["villages"]}
HUBS = {h["hub_id"]: h for h in NETWORK["hubs"]}
# worker index -> villages it owns (its partitions)
OWNED = {0: ["H01-V001", "H02-V001"], 1: ["H01-V002", "H02-V002"]}
PARTITIONS = {0: ["0", "1"], 1: ["2", "3"]}


def _fmt(labels: dict[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return "{" + inner + "}"


def _label_sets(spec: mn.MetricSpec, village_label: bool, worker: int) -> list[dict[str, str]]:
    labels = spec.labels_for(village_label)
    villages = OWNED[worker]
    if "village" in labels:
        base = [{"village": v, "hub": v[:3]} for v in villages]
    elif "hub" in labels and spec.component == "worker":
        base = [{"hub": h} for h in sorted({v[:3] for v in villages})]
    elif "hub" in labels:
        base = [{"hub": h} for h in ("H01", "H02")]
    else:
        base = [{}]
    if spec.name == "packloop_events_total":
        return [{"outcome": o, "reason": "schema" if o == "dead_lettered" else ""}
                for o in mn.EVENT_OUTCOMES]
    out = []
    for b in base:
        combos = [dict(b)]
        for label in labels:
            if label in b:
                continue
            if label in spec.values:
                values = list(spec.values[label])
            elif label == "reason":
                values = ["schema"]
            elif label == "topic":
                values = ["hub-events"]
            elif label == "partition":
                values = PARTITIONS[worker]
            elif label == "route":
                values = ["/v1/events"]
            elif label == "method":
                values = ["POST"]
            elif label == "status":
                values = ["202", "400"]
            elif label == "date":
                values = ["2026-12-08"]
            elif label in ("lat", "lon", "name"):
                values = [""]  # filled below
            else:
                raise AssertionError(f"no sample values for label {label} of {spec.name}")
            if spec.name == "packloop_waste_threshold_grams" and label == "material":
                values = [mn.THRESHOLD_TOTAL, "eps_foam"]
            combos = [{**c, label: v} for c in combos for v in values]
        for c in combos:
            if "lat" in c:
                src = COORDS[c["village"]] if "village" in c else (
                    HUBS[c["hub"]]["lat"], HUBS[c["hub"]]["lon"])
                c["lat"], c["lon"] = str(src[0]), str(src[1])
            if "name" in c:
                c["name"] = HUBS[c["hub"]]["name"]
        out.extend(combos)
    return out


def exposition(component: str, village_label: bool, worker: int, elapsed: float) -> str:
    lines = []
    for spec in mn.METRICS:
        if spec.component != component or not spec.exported(village_label):
            continue
        kind = spec.type
        family = spec.name.removesuffix("_total")
        lines.append(f"# TYPE {family if kind == 'counter' else spec.name} {kind}")
        for labels in _label_sets(spec, village_label, worker):
            if kind == "counter":
                lines.append(f"{spec.name}{_fmt(labels)} {100 + 10 * elapsed}")
            elif kind == "histogram":
                n = 0.0
                for i, b in enumerate(spec.buckets):
                    n = (i + 1) * (1 + elapsed)
                    lines.append(f'{spec.name}_bucket{_fmt({**labels, "le": str(b)})} {n}')
                lines.append(f'{spec.name}_bucket{_fmt({**labels, "le": "+Inf"})} {n + 1}')
                lines.append(f"{spec.name}_sum{_fmt(labels)} {elapsed}")
                lines.append(f"{spec.name}_count{_fmt(labels)} {n + 1}")
            else:
                if spec.name.endswith("_info"):
                    value = 1.0
                elif spec.name == "packloop_plan_last_success_timestamp_seconds":
                    value = time.time() - 3600
                elif "grams" in spec.name:
                    value = 30000.0 + 1000 * worker
                else:
                    value = 3.0
                lines.append(f"{spec.name}{_fmt(labels)} {value}")
    return "\n".join(lines) + "\n"


class _Exporter:
    def __init__(self, component: str, village_label: bool, worker: int) -> None:
        started = time.monotonic()
        args = (component, village_label, worker)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = exposition(*args, time.monotonic() - started).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module", params=[True, False], ids=["village-label", "township"])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[tuple[Prometheus, bool]]:
    village_label: bool = request.param
    exporters = {
        "packloop-worker": [_Exporter("worker", village_label, w) for w in (0, 1)],
        "packloop-gateway": [_Exporter("gateway", village_label, 0)],
        "packloop-planner": [_Exporter("planner", village_label, 0)],
    }
    jobs = {job: [e.address for e in exps] for job, exps in exporters.items()}
    # recording rules first: the alerts read recorded series
    rule_files = sorted(RULE_FILES, key=lambda p: "alert" in p.name)
    try:
        with prometheus_server(jobs, rule_files, tmp_path_factory.mktemp("prometheus")) as prom:
            # rate() needs two samples of each target; then two rounds of every rule
            # group, so the alerts read recorded series computed from those samples
            targets = sum(map(len, jobs.values()))
            wait_until(lambda: len(prom.query("count_over_time(up[5m]) >= 2")) == targets,
                       30, f"two scrapes of each of the {targets} exporters")
            prom.wait_rules_evaluated_after(time.time())
            prom.wait_rules_evaluated_after(time.time())
            yield prom, village_label
    finally:
        for exps in exporters.values():
            for e in exps:
                e.close()


def _dashboard_queries() -> list[tuple[str, str, str]]:
    out = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text("utf-8"))
        for p in board["panels"]:
            for t in p.get("targets", []):
                out.append((board["uid"], f"{p['title']}/{t['refId']}", t["expr"]))
    return out


# Allowed to be empty: nothing fires in this short run; no villages in township mode.
MAY_BE_EMPTY = ("ALERTS{",)
EMPTY_IN_TOWNSHIP_MODE = ("packloop_village_info",)


def test_every_rule_evaluates_without_error(live: tuple[Prometheus, bool]) -> None:
    prom, _ = live
    evaluated = prom.rules()
    assert len(evaluated) == sum(
        len(g["rules"]) for p in RULE_FILES for g in yaml.safe_load(p.read_text())["groups"])
    bad = [(r["name"], r.get("lastError")) for r in evaluated if r["health"] != "ok"]
    assert not bad, bad


def test_every_recording_rule_has_data(live: tuple[Prometheus, bool]) -> None:
    prom, village_label = live
    for rule in prom.rules():
        if rule["type"] == "recording":
            result = prom.query(rule["name"])
            assert result, f"{rule['name']} is empty"
            if rule["name"].startswith("village:"):
                has_village = all("village" in r["metric"] for r in result)
                assert has_village == village_label, rule["name"]


@pytest.mark.parametrize("values", [
    {"hub": "H01", "village": "H01-V001"},
    {"hub": ".*", "village": ".*"},
], ids=["one-village", "all"])
def test_every_dashboard_query_returns_data(live: tuple[Prometheus, bool],
                                            values: dict[str, str]) -> None:
    prom, village_label = live
    variables = {"__rate_interval": "1m", "__rate_interval_ms": "60000", "__interval": "1s",
                 "__range": "1h", "window": "7d", **values}
    if not village_label:
        variables["village"] = ".*"  # the variable has no values: Grafana's All
    empty = []
    for uid, where, expr in _dashboard_queries():
        result = prom.query(substitute(expr, variables))
        allowed = any(m in expr for m in MAY_BE_EMPTY) or (
            not village_label and any(m in expr for m in EMPTY_IN_TOWNSHIP_MODE))
        if not result and not allowed:
            empty.append(f"{uid} {where}")
    assert not empty, empty


def test_geomap_join_carries_coordinates(live: tuple[Prometheus, bool]) -> None:
    prom, village_label = live
    board = json.loads((REPO / "infra/grafana/dashboards/township-village.json").read_text())
    maps = {p["title"]: p["targets"][0]["expr"] for p in board["panels"]
            if p["type"] == "geomap"}
    all_values = {"hub": ".*", "village": ".*"}
    villages = prom.query(substitute(maps["Villages by outstanding waste"], all_values))
    if village_label:
        got = {r["metric"]["village"]: (float(r["metric"]["lat"]), float(r["metric"]["lon"]))
               for r in villages}
        assert got == {v: COORDS[v] for w in OWNED.values() for v in w}
        # Both workers own villages of H01: 2 x (7 materials x 30.0 kg or 31.0 kg).
        assert {round(float(r["value"][1]), 1) for r in villages} == {210.0, 217.0}
    else:
        assert villages == []
    hubs = prom.query(substitute(maps["Townships by outstanding waste"], all_values))
    assert {r["metric"]["hub"] for r in hubs} == {"H01", "H02"}
    assert all(r["metric"]["name"] == HUBS[r["metric"]["hub"]]["name"] for r in hubs)


def test_village_variable_lists_villages_only_with_the_label(
        live: tuple[Prometheus, bool]) -> None:
    prom, village_label = live
    result = prom.query('group by (village) (packloop_village_info{hub=~"H01"})')
    assert {r["metric"].get("village") for r in result} == (
        {"H01-V001", "H01-V002"} if village_label else set())


def test_sum_over_workers_in_township_mode(live: tuple[Prometheus, bool]) -> None:
    prom, _ = live
    # Whatever the mode: H01's outstanding total is the sum over both workers' villages.
    (r,) = prom.query('sum(packloop_waste_outstanding_grams{hub="H01"})')
    assert float(r["value"][1]) == 7 * (30000 + 31000)
