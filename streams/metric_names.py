"""The metric contract: every Prometheus series packloop exports, as data.

The worker's exporter builds its collectors from :data:`METRICS`; the gateway's
(``services/gateway/metrics.py``) and planner's (``services/planner/app.py``) are
checked against it by ``tests/infra/test_contract.py``. The Prometheus rules, Grafana
dashboards and outside checks under ``infra/`` use exactly these names (``tests/infra``
checks every metric they name against this tuple). Keep this module pure: no imports
beyond the standard library.

Label modes. With ``PACKLOOP_METRICS_VILLAGE_LABEL=true`` (the default) village-level
metrics carry a ``village`` label; with ``false`` the exporter drops that label and sums
over the villages of each hub it owns (township level, for province-scale
deployments), and metrics marked ``village_only`` are not exported at all. Every worker
exports only the villages of its own partitions, so ``sum by (hub, ...)`` over workers is
right in both modes.

Event-time windows. ``packloop_waste_window_*`` are gauges the worker computes in event
time (calendar ``day`` and ``month`` in the network's time zone, rolling ``7d``), because
Prometheus' ``[7d]`` ranges are wall-clock and would not match a replay or a simulation.

Thresholds. ``packloop_waste_threshold_grams`` carries the village's effective thresholds
from the reference data: ``material="total"`` is ``outstanding_grams`` (the sum over all
materials), other materials are the ``material_grams`` limits that exist for the village.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

MetricType = Literal["counter", "gauge", "histogram"]

VILLAGE_LABEL = "village"

# Closed label value sets (open sets such as village, hub, reason of a dead letter,
# topic, partition, route and status are not listed).
MATERIALS = (
    "cardboard",
    "paper_fill",
    "plastic_film",
    "tape",
    "eps_foam",
    "ice_pack",
    "pp_plastic",
)
CONTAINER_TYPES = ("reusable_crate", "insulated_box")
WINDOWS = ("day", "7d", "month")
PICKUP_REASONS = ("outstanding_grams", "material_grams", "max_age_hours")
EVENT_OUTCOMES = ("applied", "duplicate", "dead_lettered", "rerouted")
# The joint plan and the optimizer's baselines (single_use is sequential's first stage).
PLANS = ("joint", "sequential", "uncoordinated", "single_use")
PLAN_JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
PLAN_JOB_FINAL = ("done", "failed", "cancelled")
GATEWAY_OUTCOMES = ("accepted", "rejected", "forbidden", "unavailable")
#: refused: the URL's host resolved to a non-public address at delivery (docs/operations.md)
WEBHOOK_OUTCOMES = ("delivered", "failed", "skipped", "refused")
#: a run sheet from the dispatch topic: stored (new), same (already stored, a redelivery),
#: rejected (a different sheet for a hub and date already published), invalid (not a sheet)
DISPATCH_OUTCOMES = ("stored", "same", "rejected", "invalid")
THRESHOLD_TOTAL = "total"

# Histogram buckets (seconds): the exporters use these, the series count depends on them.
PROCESSING_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
GATEWAY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
PLAN_BUCKETS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 3600.0)


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One exported metric family.

    ``name`` is the family name as Prometheus stores it (counters end in ``_total``).
    ``labels`` are in village-label mode; :meth:`labels_for` gives the other mode.
    ``values`` names the closed value set of a label where there is one.
    ``deprecated_for`` names the family that replaces this one: both are exported, with
    the same values, for one release.
    """

    name: str
    type: MetricType
    labels: tuple[str, ...]
    help: str
    component: Literal["worker", "gateway", "planner"] = "worker"
    buckets: tuple[float, ...] = ()
    values: MappingProxyType[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )
    village_only: bool = False
    #: the name that replaces this one (kept one release, its HELP says DEPRECATED)
    deprecated_for: str | None = None

    def labels_for(self, village_label: bool = True) -> tuple[str, ...]:
        """The labels exported in the given mode (without ``village`` when it is off)."""
        if village_label:
            return self.labels
        return tuple(label for label in self.labels if label != VILLAGE_LABEL)

    def exported(self, village_label: bool = True) -> bool:
        return village_label or not self.village_only

    def series_names(self) -> tuple[str, ...]:
        """The sample names this family produces (histograms: bucket, sum, count)."""
        if self.type == "histogram":
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


def _v(**values: tuple[str, ...]) -> MappingProxyType[str, tuple[str, ...]]:
    return MappingProxyType(values)


_WASTE = ("village", "hub", "material")
_PICKUP = ("village", "hub")
_CONTAINER = ("hub", "container_type")

METRICS: tuple[MetricSpec, ...] = (
    # -- waste (worker) -------------------------------------------------------------------
    MetricSpec(
        "packloop_waste_generated_grams_total", "counter", _WASTE,
        "Packaging waste left in villages by shipments and adjustments (grams).",
        values=_v(material=MATERIALS),
    ),
    MetricSpec(
        "packloop_waste_recovered_grams_total", "counter", _WASTE,
        "Packaging waste recovered from villages (grams): collected by recycling pickups, "
        "and damaged reusable containers that came back with a return.",
        values=_v(material=MATERIALS),
    ),
    MetricSpec(
        "packloop_waste_outstanding_grams", "gauge", _WASTE,
        "Packaging waste still in the village: generated minus recovered (grams).",
        values=_v(material=MATERIALS),
    ),
    MetricSpec(
        "packloop_waste_window_generated_grams", "gauge", (*_WASTE, "window"),
        "Waste generated in the event-time window (day and month in the network's time "
        "zone, rolling 7d), grams.",
        values=_v(material=MATERIALS, window=WINDOWS),
    ),
    MetricSpec(
        "packloop_waste_window_recovered_grams", "gauge", (*_WASTE, "window"),
        "Waste recovered in the event-time window (day, 7d, month), grams.",
        values=_v(material=MATERIALS, window=WINDOWS),
    ),
    MetricSpec(
        "packloop_waste_month_on_hand_start_grams", "gauge", _WASTE,
        "Waste outstanding at 00:00 local on the first day of the current (event-time) "
        "month, grams: with the month's generated grams, what the month's mass-balance "
        "recovery ratio divides by (streams/officer_kpis.py). Villages with a record for "
        "the month only, as in the officer's report.",
        values=_v(material=MATERIALS),
    ),
    MetricSpec(
        "packloop_waste_threshold_grams", "gauge", _WASTE,
        'Effective pickup threshold of the village: material="total" is the outstanding '
        "total limit, other materials their own limits (grams).",
        values=_v(material=(THRESHOLD_TOTAL, *MATERIALS)),
    ),
    MetricSpec(
        "packloop_village_info", "gauge", ("village", "hub", "lat", "lon"),
        "Reference data of a village (value 1): coordinates for the Geomap.",
        village_only=True,
    ),
    MetricSpec(
        "packloop_hub_info", "gauge", ("hub", "name", "lat", "lon"),
        "Reference data of a township hub (value 1): name and coordinates.",
    ),
    # -- pickups (worker) -----------------------------------------------------------------
    MetricSpec(
        "packloop_pickups_requested_total", "counter", (*_PICKUP, "reason"),
        "Recycling pickups requested, by the threshold that triggered them "
        "(material_grams without the material: one label value per kind of limit).",
        values=_v(reason=PICKUP_REASONS),
    ),
    MetricSpec(
        "packloop_pickups_requested_by_material_total", "counter", ("hub", "material"),
        "Recycling pickups requested because a material's own limit was crossed first "
        '(reason="material_grams" of packloop_pickups_requested_total), by that material.',
        values=_v(material=MATERIALS),
    ),
    MetricSpec(
        "packloop_pickups_completed_total", "counter", _PICKUP,
        "Recycling pickups completed (recycling collected for an open pickup).",
    ),
    MetricSpec(
        "packloop_pickups_cancelled_total", "counter", _PICKUP,
        "Recycling pickups cancelled by the hub while open (pickup_cancelled).",
    ),
    MetricSpec(
        "packloop_pickups_overdue_notices_total", "counter", _PICKUP,
        "Pickups that outlived the pickup SLA while open: one pickup_overdue notice each "
        "(a counter; the gauge of those open now is packloop_pickups_open_overdue).",
    ),
    MetricSpec(
        "packloop_pickups_overdue_total", "counter", _PICKUP,
        "DEPRECATED: use packloop_pickups_overdue_notices_total (same value; this name goes "
        "in the next release). Pickups that outlived the pickup SLA while open.",
        deprecated_for="packloop_pickups_overdue_notices_total",
    ),
    MetricSpec(
        "packloop_pickups_open", "gauge", _PICKUP,
        "Open (requested, not yet collected) pickups.",
    ),
    MetricSpec(
        "packloop_pickups_open_overdue", "gauge", _PICKUP,
        "Open pickups that are past the pickup SLA now (a gauge; the counter of pickups "
        "that went overdue is packloop_pickups_overdue_notices_total).",
    ),
    # -- containers (worker) --------------------------------------------------------------
    MetricSpec(
        "packloop_containers_issued_total", "counter", _CONTAINER,
        "Reusable containers sent out with shipments.", values=_v(container_type=CONTAINER_TYPES),
    ),
    MetricSpec(
        "packloop_containers_returned_total", "counter", _CONTAINER,
        "Reusable containers returned to the hub, damaged ones included "
        "(packloop_containers_damaged_total counts those).",
        values=_v(container_type=CONTAINER_TYPES),
    ),
    MetricSpec(
        "packloop_containers_damaged_total", "counter", _CONTAINER,
        "Reusable containers returned damaged.", values=_v(container_type=CONTAINER_TYPES),
    ),
    MetricSpec(
        "packloop_containers_lost_total", "counter", _CONTAINER,
        "Reusable containers reported lost.", values=_v(container_type=CONTAINER_TYPES),
    ),
    MetricSpec(
        "packloop_containers_in_circulation", "gauge", _CONTAINER,
        "Reusable containers out in villages now.", values=_v(container_type=CONTAINER_TYPES),
    ),
    MetricSpec(
        "packloop_containers_overdue", "gauge", _CONTAINER,
        "Containers out longer than the network's container_overdue_days.",
        values=_v(container_type=CONTAINER_TYPES),
    ),
    # -- pipeline (worker) ----------------------------------------------------------------
    MetricSpec(
        "packloop_events_total", "counter", ("outcome", "reason"),
        "Hub events consumed, by outcome; reason is set for dead_lettered (else empty).",
        values=_v(outcome=EVENT_OUTCOMES),
    ),
    MetricSpec(
        "packloop_event_processing_seconds", "histogram", (),
        "Time from consuming an event to its state being updated (seconds).",
        buckets=PROCESSING_BUCKETS,
    ),
    MetricSpec(
        "packloop_consumer_lag_records", "gauge", ("topic", "partition"),
        "Records between the last offset the worker processed and the partition's end, for "
        "the partitions the worker owns (not the committed offset: docs/operations.md).",
    ),
    MetricSpec(
        "packloop_worker_partitions_assigned", "gauge", ("topic",),
        "Partitions assigned to this worker.",
    ),
    # -- gateway (services/gateway/metrics.py) --------------------------------------------
    MetricSpec(
        "packloop_gateway_requests_total", "counter", ("route", "method", "status", "hub"),
        "HTTP requests answered, by route template, method, status code and hub (hub is "
        "empty when the request was not authenticated).",
        component="gateway",
    ),
    MetricSpec(
        "packloop_gateway_request_duration_seconds", "histogram", ("route",),
        "Time to answer an HTTP request.", component="gateway", buckets=GATEWAY_BUCKETS,
    ),
    MetricSpec(
        "packloop_gateway_events_total", "counter", ("hub", "outcome", "reason"),
        "Events received, by hub and outcome (accepted, rejected, forbidden, unavailable) "
        "and rejection reason.",
        component="gateway", values=_v(outcome=GATEWAY_OUTCOMES),
    ),
    MetricSpec(
        "packloop_gateway_produce_duration_seconds", "histogram", (),
        "Time from the first send of a request's events to the broker's last "
        "acknowledgement (acks=all).",
        component="gateway", buckets=GATEWAY_BUCKETS,
    ),
    MetricSpec(
        "packloop_gateway_kafka_ready", "gauge", (),
        "1 when the last Kafka probe succeeded, else 0.", component="gateway",
    ),
    MetricSpec(
        "packloop_gateway_webhook_deliveries_total", "counter", ("hub", "outcome"),
        "Pickup notices delivered to hub webhooks, by hub and outcome (delivered, failed = "
        "given up after all attempts, skipped = no webhook).",
        component="gateway", values=_v(outcome=WEBHOOK_OUTCOMES),
    ),
    MetricSpec(
        "packloop_gateway_dispatches_total", "counter", ("hub", "outcome"),
        "Run sheets read from the dispatch topic, by hub and outcome (stored; same = a "
        "redelivery of one stored; rejected = a different sheet for a hub and date already "
        "published, which the gateway refuses; invalid = not a run sheet, hub empty).",
        component="gateway", values=_v(outcome=DISPATCH_OUTCOMES),
    ),
    MetricSpec(
        "packloop_gateway_webhook_attempts_total", "counter", ("hub", "result"),
        "Webhook HTTP attempts, by hub and result (ok, error).",
        component="gateway", values=_v(result=("ok", "error")),
    ),
    MetricSpec(
        "packloop_gateway_webhook_attempt_duration_seconds", "histogram", (),
        "Duration of one webhook HTTP attempt.", component="gateway", buckets=GATEWAY_BUCKETS,
    ),
    # -- planner (services/planner/app.py) -------------------------------------------------
    MetricSpec(
        "packloop_plan_last_success_timestamp_seconds", "gauge", (),
        "When the last successful plan was stored (Unix time).", component="planner",
    ),
    MetricSpec(
        "packloop_plan_cost_cny", "gauge", ("plan",),
        "Total cost of the last successful plan and its baselines (CNY).",
        component="planner", values=_v(plan=PLANS),
    ),
    MetricSpec(
        "packloop_plan_co2e_kg", "gauge", ("plan",),
        "CO2e of the last successful plan and its baselines (kg).",
        component="planner", values=_v(plan=PLANS),
    ),
    MetricSpec(
        "packloop_plan_single_use_grams", "gauge", ("plan",),
        "Single-use packaging of the last successful plan and its baselines (grams).",
        component="planner", values=_v(plan=PLANS),
    ),
    MetricSpec(
        "packloop_plan_distance_km", "gauge", ("plan",),
        "Vehicle kilometres of the last successful plan and its baselines.",
        component="planner", values=_v(plan=PLANS),
    ),
    MetricSpec(
        "packloop_plan_trips", "gauge", ("plan",),
        "Trips of the last successful plan and its baselines.",
        component="planner", values=_v(plan=PLANS),
    ),
    MetricSpec(
        "packloop_plan_gap_ratio", "gauge", (),
        "Relative MIP gap of the last successful plan.", component="planner",
    ),
    MetricSpec(
        "packloop_dispatch_no_plan", "gauge", ("hub", "date"),
        "1 for each hub the daily dispatch of the latest date leaves without a plan (its data "
        "admit none; every hub when it failed), labelled with that date.", component="planner",
    ),
    MetricSpec(
        "packloop_plan_jobs", "gauge", ("status",),
        "Plan jobs by current status.", component="planner",
        values=_v(status=PLAN_JOB_STATUSES),
    ),
    MetricSpec(
        "packloop_plan_jobs_total", "counter", ("status",),
        "Plan jobs that reached a final status (done, failed, cancelled).",
        component="planner", values=_v(status=PLAN_JOB_FINAL),
    ),
    MetricSpec(
        "packloop_plan_duration_seconds", "histogram", (),
        "Run time of successful plan jobs (start of the last run to the stored result).",
        component="planner", buckets=PLAN_BUCKETS,
    ),
)

BY_NAME: MappingProxyType[str, MetricSpec] = MappingProxyType({m.name: m for m in METRICS})


def series_names() -> frozenset[str]:
    """Every sample name packloop exports (histogram families expanded)."""
    return frozenset(n for m in METRICS for n in m.series_names())
