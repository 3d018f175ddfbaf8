"""The metric contract (streams/metric_names.py) is well-formed and matches the events."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import streams.metric_names as mn
from streams.events import ContainerType, Material

NAME = re.compile(r"^packloop_[a-z][a-z0-9_]*$")
LABEL = re.compile(r"^[a-z][a-z0-9_]*$")
FIXED = {
    # (name, type, labels) fixed by the issue; everything else is a design choice.
    ("packloop_waste_generated_grams_total", "counter", ("village", "hub", "material")),
    ("packloop_waste_recovered_grams_total", "counter", ("village", "hub", "material")),
    ("packloop_waste_outstanding_grams", "gauge", ("village", "hub", "material")),
    ("packloop_pickups_requested_total", "counter", ("village", "hub", "reason")),
    ("packloop_pickups_completed_total", "counter", ("village", "hub")),
    ("packloop_pickups_overdue_total", "counter", ("village", "hub")),
    ("packloop_pickups_open", "gauge", ("village", "hub")),
    ("packloop_containers_issued_total", "counter", ("hub", "container_type")),
    ("packloop_containers_returned_total", "counter", ("hub", "container_type")),
    ("packloop_containers_damaged_total", "counter", ("hub", "container_type")),
    ("packloop_containers_lost_total", "counter", ("hub", "container_type")),
    ("packloop_containers_in_circulation", "gauge", ("hub", "container_type")),
    ("packloop_containers_overdue", "gauge", ("hub", "container_type")),
    ("packloop_events_total", "counter", ("outcome", "reason")),
    ("packloop_event_processing_seconds", "histogram", ()),
    ("packloop_plan_last_success_timestamp_seconds", "gauge", ()),
}


def test_module_is_pure_stdlib() -> None:
    tree = ast.parse(Path(mn.__file__).read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported <= {"__future__", "dataclasses", "types", "typing"}, imported


def test_fixed_names_types_and_labels() -> None:
    have = {(m.name, m.type, m.labels) for m in mn.METRICS}
    assert FIXED <= have, FIXED - have


def test_names_labels_and_types_are_well_formed() -> None:
    assert len(mn.BY_NAME) == len(mn.METRICS), "duplicate metric name"
    for m in mn.METRICS:
        assert NAME.match(m.name), m.name
        assert all(LABEL.match(label) for label in m.labels), m
        assert len(set(m.labels)) == len(m.labels), m
        assert m.help and m.help.endswith((".", ")")), m
        assert m.name.endswith("_total") == (m.type == "counter"), m
        if m.type == "histogram":
            assert m.buckets and list(m.buckets) == sorted(m.buckets), m
            assert "village" not in m.labels, "no village label on histograms"
        else:
            assert not m.buckets, m
        assert set(m.values) <= set(m.labels), m
        assert not m.village_only or "village" in m.labels, m


def test_series_names_cover_histogram_suffixes() -> None:
    names = mn.series_names()
    assert "packloop_event_processing_seconds_bucket" in names
    assert "packloop_event_processing_seconds" not in names
    assert "packloop_waste_outstanding_grams" in names


def test_township_mode_drops_only_the_village_label() -> None:
    spec = mn.BY_NAME["packloop_pickups_requested_total"]
    assert spec.labels_for(True) == ("village", "hub", "reason")
    assert spec.labels_for(False) == ("hub", "reason")
    info = mn.BY_NAME["packloop_village_info"]
    assert info.exported(True) and not info.exported(False)
    for m in mn.METRICS:
        assert "village" not in m.labels_for(False)
        if "village" in m.labels and m.exported(False):
            assert "hub" in m.labels, f"{m.name}: township mode needs the hub label"


def test_closed_value_sets_match_the_event_contract() -> None:
    assert set(mn.MATERIALS) == {m.value for m in Material}
    assert set(mn.CONTAINER_TYPES) == {c.value for c in ContainerType}
    assert mn.WINDOWS == ("day", "7d", "month")
    assert set(mn.EVENT_OUTCOMES) == {"applied", "duplicate", "dead_lettered", "rerouted"}
    assert {"joint", "sequential", "uncoordinated"} <= set(mn.PLANS)


# ------------------------------------------------------------- the running exporters


def _families(registry: object) -> dict[str, tuple[str, tuple[str, ...]]]:
    """name -> (type, labels) of what a prometheus_client registry exposes."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for family in registry.collect():  # type: ignore[attr-defined]
        name = family.name + ("_total" if family.type == "counter" else "")
        labels: set[str] = set()
        for sample in family.samples:
            labels |= set(sample.labels) - {"le"}
        out[name] = (family.type, tuple(sorted(labels)))
    return out


def _contract(component: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {m.name: (m.type, tuple(sorted(m.labels))) for m in mn.METRICS
            if m.component == component}


def test_gateway_exports_the_contract() -> None:
    from services.gateway.metrics import GatewayMetrics

    metrics = GatewayMetrics()
    # Touch every labelled metric once so its labels show in the samples.
    for attr in vars(metrics).values():
        names = getattr(attr, "_labelnames", ())
        if names:
            attr.labels(*["x"] * len(names))
    assert _families(metrics.registry) == _contract("gateway")


def test_planner_exports_the_contract() -> None:
    from prometheus_client import CollectorRegistry

    from services.planner.app import PlanCollector

    class Jobs:
        def metrics_snapshot(self) -> dict[str, object]:
            return {
                "counts": dict.fromkeys(mn.PLAN_JOB_STATUSES, 1),
                "duration_buckets": [(b, 1) for b in mn.PLAN_BUCKETS],
                "duration_count": 1, "duration_sum": 1.0, "last_success": 1.0,
                "last_summary": {"gap": 0.0, "kpis": {p: {
                    "cost_cny": 1, "co2e_kg": 1, "single_use_grams": 1, "km": 1, "trips": 1,
                } for p in mn.PLANS}},
                "last_dispatch": {"name": "dispatch 2026-12-08", "without_plan": ["H02"]},
            }

    registry = CollectorRegistry()
    registry.register(PlanCollector(Jobs()))  # type: ignore[arg-type]
    assert _families(registry) == _contract("planner")
    text = "\n".join(s.name + str(s.labels) for f in registry.collect() for s in f.samples)
    for status in mn.PLAN_JOB_STATUSES:
        assert f"'status': '{status}'" in text
    from services.planner.store import DURATION_BUCKETS, FINAL, STATUSES

    assert tuple(STATUSES) == mn.PLAN_JOB_STATUSES and tuple(FINAL) == mn.PLAN_JOB_FINAL
    assert tuple(float(b) for b in DURATION_BUCKETS) == mn.PLAN_BUCKETS


def test_gateway_buckets_match() -> None:
    from services.gateway.metrics import LATENCY_BUCKETS

    assert tuple(float(b) for b in LATENCY_BUCKETS) == mn.GATEWAY_BUCKETS
