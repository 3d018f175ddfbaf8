"""The worker's Prometheus exporter: packloop's domain metrics, read from state at scrape time.

:class:`PackloopCollector` is a ``prometheus_client`` custom collector. It builds every
worker family of the metric contract (:mod:`streams.metric_names`) from the state of
the partitions this worker owns *when Prometheus scrapes*, instead of incrementing
counters as events pass:

* counters are the state's cumulative values (``VillageState`` and the partition
  markers), so they are exact after a replay, a restart or a crash: the changelog
  holds them, nothing is counted twice and nothing is lost with the process;
* a village's series exist only on the worker that owns its partition, and vanish
  from its scrape as soon as the partition is revoked, so ``sum()`` over workers is
  right after any rebalance (each village is in exactly one worker's scrape);
* event-time windows (``day``/``month`` in the network's time zone, rolling ``7d``)
  are computed at one time for every village of a scrape: the latest stream time of the
  partitions the worker owns (``GET /villages/{id}`` uses its partition's); containers
  overdue at the partition's own (its returns may not be read yet). Across workers the
  windows can still differ where one worker's partitions all lag a month boundary.

Because counters follow the state, a partition moving between workers moves its
counts with it: the losing worker's counter drops and the gaining worker's jumps.
``sum()`` stays exact; a per-worker ``rate()`` across a rebalance shows the move as a
reset plus a jump (Prometheus treats the drop as a counter reset).

With ``village_label=False`` (``PACKLOOP_METRICS_VILLAGE_LABEL=false``) the ``village``
label is dropped and values are summed per hub over the villages this worker owns;
``village_only`` families are not exported.

Mapping of worker values onto contract labels:

* ``packloop_pickups_requested_total{reason}``: a pickup is counted once, under the
  kind of the first threshold it crossed (``outstanding_grams``, then
  ``material_grams`` — the material is dropped: ``material_grams:eps_foam`` ->
  ``material_grams`` — then ``max_age_hours``), so ``sum()`` over reasons is the number
  of pickups requested. The material of the ``material_grams`` ones is in
  ``packloop_pickups_requested_by_material_total{hub, material}`` (per hub, every
  material, so a township's series exist before its first such pickup; pickups
  requested before the state kept the material are in neither material).
* ``packloop_pickups_overdue_total`` is the deprecated name of
  ``packloop_pickups_overdue_notices_total`` (the same value, kept one release).
* ``packloop_events_total``: ``applied``, ``duplicate`` and ``rerouted`` carry
  ``reason=""``; ``dead_lettered`` carries the dead-letter reason. Dead letters counted
  by a state written before per-reason counts existed appear as
  ``reason="unrecorded"``.
* ``packloop_consumer_lag_records``: see :func:`lag_records`.

The source of state is an object with the methods of :class:`Source`, so the bench and
the unit tests drive the collector with synthetic state and no Faust.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from streams import metric_names as mn
from streams.months import start_of_figures
from streams.state import PICKUP_REASON_KINDS, PartitionMarker, VillageState, from_us, marker_key

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from streams.views import LocalState
    from streams.worker import StreamsWorker

UNRECORDED = "unrecorded"


class Source(Protocol):
    """What the collector reads at scrape time (the worker's owned partitions only)."""

    def villages(self) -> list[tuple[VillageState, int | None]]:
        """Every village value of the owned partitions, with its partition's stream time."""

    def markers(self) -> list[PartitionMarker]:
        """The markers of the owned partitions."""

    def reference_villages(self) -> list[str]:
        """Every village of the reference data whose partition this worker owns."""

    def lag(self) -> dict[tuple[str, int], int]:
        """Consumer lag per (topic, partition) owned."""

    def assigned(self) -> dict[str, int]:
        """Partitions assigned per topic."""

    def ready(self) -> bool:
        """Whether the owned partitions' state is whole (`streams.runtime.Runtime.ready`)."""


def lag_records(high_watermark: int | None, last_processed: int) -> int:
    """Consumer lag of one partition from what is known for sure.

    ``high_watermark`` is the partition's end as the broker last reported it in a fetch
    response (the offset after the last record known to exist); ``last_processed`` the
    offset of the last record the worker has applied (-1: none). The worker processes
    whole fetches, so every record fetched is processed, and the highest offset known
    to exist is ``max(high_watermark, last_processed + 1)``. The lag is that minus the
    next offset to process, never negative.

    On the embedded broker (Tansu) the end offset it reports is the start of the
    partition's last record batch + 1, short by up to a producer batch: the lag is then
    a lower bound that can read 0 while a batch's tail is still unread, never a made-up
    or negative figure. On Apache Kafka the high watermark is exact.
    """
    if high_watermark is None:
        return 0
    return max(0, high_watermark - (last_processed + 1))


@dataclass
class BatchHistogram:
    """A histogram fed per batch: ``observe(seconds, n)`` counts n events at once.

    The worker applies records in whole fetches, so every event of a batch waited the
    same time from being consumed to its state being updated; counting them in one
    step keeps the cost per batch, not per event (a ``prometheus_client.Histogram``
    would take a lock 10,000 times for a full batch).
    """

    buckets: tuple[float, ...] = mn.PROCESSING_BUCKETS
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.counts = [0] * (len(self.buckets) + 1)

    def observe(self, seconds: float, n: int = 1) -> None:
        if n <= 0:
            return
        i = bisect_left(self.buckets, seconds)  # le: a value equal to a bound is in it
        with self._lock:
            self.counts[i] += n
            self.total += seconds * n
            self.count += n

    def snapshot(self) -> tuple[list[tuple[str, float]], float]:
        with self._lock:
            counts, total = list(self.counts), self.total
        out = []
        acc = 0
        for bound, c in zip((*self.buckets, float("inf")), counts, strict=True):
            acc += c
            out.append((floatToGoString(bound), float(acc)))
        return out, total


# The label order each producer below emits; checked against the contract at import so
# a contract change cannot silently mislabel series.
_EXPECTED_LABELS = {
    "packloop_waste_generated_grams_total": ("village", "hub", "material"),
    "packloop_waste_recovered_grams_total": ("village", "hub", "material"),
    "packloop_waste_outstanding_grams": ("village", "hub", "material"),
    "packloop_waste_window_generated_grams": ("village", "hub", "material", "window"),
    "packloop_waste_window_recovered_grams": ("village", "hub", "material", "window"),
    "packloop_waste_month_on_hand_start_grams": ("village", "hub", "material"),
    "packloop_waste_threshold_grams": ("village", "hub", "material"),
    "packloop_village_info": ("village", "hub", "lat", "lon"),
    "packloop_hub_info": ("hub", "name", "lat", "lon"),
    "packloop_pickups_requested_total": ("village", "hub", "reason"),
    "packloop_pickups_requested_by_material_total": ("hub", "material"),
    "packloop_pickups_completed_total": ("village", "hub"),
    "packloop_pickups_cancelled_total": ("village", "hub"),
    "packloop_pickups_overdue_notices_total": ("village", "hub"),
    "packloop_pickups_overdue_total": ("village", "hub"),
    "packloop_pickups_open": ("village", "hub"),
    "packloop_pickups_open_overdue": ("village", "hub"),
    "packloop_containers_issued_total": ("hub", "container_type"),
    "packloop_containers_returned_total": ("hub", "container_type"),
    "packloop_containers_damaged_total": ("hub", "container_type"),
    "packloop_containers_lost_total": ("hub", "container_type"),
    "packloop_containers_in_circulation": ("hub", "container_type"),
    "packloop_containers_overdue": ("hub", "container_type"),
    "packloop_events_total": ("outcome", "reason"),
    "packloop_event_processing_seconds": (),
    "packloop_consumer_lag_records": ("topic", "partition"),
    "packloop_worker_partitions_assigned": ("topic",),
}
WORKER_SPECS = tuple(m for m in mn.METRICS if m.component == "worker")
assert {m.name for m in WORKER_SPECS} == set(_EXPECTED_LABELS), "contract changed: update me"
for _m in WORKER_SPECS:
    assert _m.labels == _EXPECTED_LABELS[_m.name], f"contract labels of {_m.name} changed"

_WINDOW_KINDS = mn.WINDOWS  # ("day", "7d", "month")
_CONTAINER_FIELDS = ("issued", "returned", "damaged", "lost", "in_circulation", "overdue")
_CONTAINER_FAMILY = {
    "issued": "packloop_containers_issued_total",
    "returned": "packloop_containers_returned_total",
    "damaged": "packloop_containers_damaged_total",
    "lost": "packloop_containers_lost_total",
    "in_circulation": "packloop_containers_in_circulation",
    "overdue": "packloop_containers_overdue",
}


def _window_bounds(now: int, tz: Any) -> tuple[str, str, str, str]:
    """(today, first day of 7d, first day of the month) as ISO dates, plus today."""
    today = from_us(now).astimezone(tz).date()
    return (
        today.isoformat(),
        (today - timedelta(days=6)).isoformat(),
        today.replace(day=1).isoformat(),
        today.isoformat(),
    )


def window_tallies(
    state: VillageState, bounds: tuple[str, str, str, str]
) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Generated and recovered per material for (day, 7d, month) in one pass over days.

    Same definition as :meth:`VillageState.window` (checked by the unit tests)."""
    day_lo, week_lo, month_lo, hi = bounds
    gen: dict[str, list[int]] = {}
    rec: dict[str, list[int]] = {}
    for day, (g, r) in state.days.items():
        if day > hi or (day < week_lo and day < month_lo):
            continue
        flags = (day >= day_lo, day >= week_lo, day >= month_lo)
        for target, src in ((gen, g), (rec, r)):
            for m, v in src.items():
                row = target.get(m)
                if row is None:
                    row = target[m] = [0, 0, 0]
                for i in range(3):
                    if flags[i]:
                        row[i] += v
    return gen, rec


#: villages read per slice of a scrape before the event loop is let in again
SCRAPE_SLICE = 100


@dataclass
class Accumulated:
    """A scrape's sums so far: series per family, and the worker-wide event totals."""

    series: dict[str, dict[tuple[str, ...], float]] = field(
        default_factory=lambda: {m.name: {} for m in WORKER_SPECS})
    applied: int = 0
    duplicates: int = 0
    dead: dict[str, int] = field(default_factory=dict)
    bounds: dict[int, tuple[str, str, str, str]] = field(default_factory=dict)
    histogram: tuple[list[tuple[str, float]], float] = ([], 0.0)


class PackloopCollector(Collector):
    """Every worker family of the contract, from the owned partitions' state."""

    def __init__(
        self,
        network: Any,
        source: Source,
        village_label: bool = True,
        histogram: BatchHistogram | None = None,
    ) -> None:
        self.network = network
        self.source = source
        self.village_label = village_label
        self.histogram = histogram or BatchHistogram()
        self.tz = network.timezone
        self.overdue_us = int(network.container_overdue_days * 86_400_000_000)

    def describe(self) -> Iterable[Metric]:
        return []  # families are created at collect time; no registration-time check

    # -- accumulation ---------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        yield from self.families(self.accumulate())

    def accumulate(self) -> Accumulated:
        """Read the state into per-series sums (the part that must see live state)."""
        acc = Accumulated()
        for _ in self._slices(acc, SCRAPE_SLICE):
            pass
        return acc

    async def accumulate_async(self, slice_villages: int = SCRAPE_SLICE) -> Accumulated:
        """:meth:`accumulate` in slices of villages with the event loop let in between,
        so a scrape never holds the worker's loop for more than a slice (~10 ms per 100
        villages) — events keep flowing while Prometheus scrapes. Each village is read
        once, whole; only villages of different slices may be read a batch apart, which
        keeps every series monotonic across scrapes."""
        acc = Accumulated()
        for _ in self._slices(acc, slice_villages):
            await asyncio.sleep(0)
        return acc

    def families(self, acc: Accumulated) -> Iterator[Metric]:
        """The metric families of accumulated sums: touches no live state, so the
        worker's ``/metrics`` runs it (and the text rendering) off the event loop."""
        return self._families(acc.series, acc.histogram)

    def _slices(self, acc: Accumulated, slice_villages: int) -> Iterator[None]:
        """Fill `acc`, pausing (yielding) after each slice of villages."""
        # while the state is being recovered its series are left out, not exported short:
        # a series that is absent for a few scrapes comes back where it was, one that dips
        # reads as a counter reset (`Runtime.ready`)
        ready = self.source.ready()
        if ready:
            states = self.source.villages()
            # every village's windows at one time, the latest stream time of the partitions
            # owned: at each partition's own, a quiet partition still in November put its
            # November into the township's "this month" (an outside audit: a recovery ratio
            # of 0.7056 where the report said 0.6864)
            latest = max((now for _state, now in states if now is not None), default=None)
            for start in range(0, len(states), slice_villages):
                self._village_series(acc, states[start:start + slice_villages], latest)
                yield
            self._event_totals(acc)
        self._reference_series(acc.series, counters=ready)
        self._pipeline_series(acc.series)
        acc.histogram = self.histogram.snapshot()

    def _village_series(
        self, totals: Accumulated, villages: Iterable[tuple[VillageState, int | None]],
        latest: int | None = None,
    ) -> None:
        acc = totals.series
        gen_t = acc["packloop_waste_generated_grams_total"]
        rec_t = acc["packloop_waste_recovered_grams_total"]
        out_g = acc["packloop_waste_outstanding_grams"]
        win_g = acc["packloop_waste_window_generated_grams"]
        win_r = acc["packloop_waste_window_recovered_grams"]
        on_hand = acc["packloop_waste_month_on_hand_start_grams"]
        req = acc["packloop_pickups_requested_total"]
        by_material = acc["packloop_pickups_requested_by_material_total"]
        done = acc["packloop_pickups_completed_total"]
        cancelled = acc["packloop_pickups_cancelled_total"]
        notices = acc["packloop_pickups_overdue_notices_total"]
        over = acc["packloop_pickups_overdue_total"]
        opened = acc["packloop_pickups_open"]
        open_over = acc["packloop_pickups_open_overdue"]
        containers = {f: acc[n] for f, n in _CONTAINER_FAMILY.items()}
        dead = totals.dead
        vl = self.village_label
        bounds_cache = totals.bounds
        for state, own_now in villages:
            now = own_now if latest is None else latest
            totals.applied += state.applied
            totals.duplicates += state.duplicates
            _count_dead(dead, state.dead_lettered, state.dead_reasons)
            vid = state.village_id if vl else ""
            hub = state.hub_id
            gen, rec = state.generated, state.recovered
            materials = set(gen) | set(rec)
            for m in materials:
                # both series for either tally: a correction that takes one back to 0 (a
                # tally drops zeros) makes it read 0, not vanish (an outside audit)
                _inc(gen_t, vl, (vid, hub, m), gen.get(m, 0))
                _inc(rec_t, vl, (vid, hub, m), rec.get(m, 0))
                d = gen.get(m, 0) - rec.get(m, 0)
                _inc(out_g, vl, (vid, hub, m), d if d > 0 else 0)
            if now is not None and materials:
                bounds = bounds_cache.get(now)
                if bounds is None:
                    bounds = bounds_cache[now] = _window_bounds(now, self.tz)
                wg, wr = window_tallies(state, bounds)
                zero = (0, 0, 0)
                for m in materials:
                    g3, r3 = wg.get(m, zero), wr.get(m, zero)
                    for i, w in enumerate(_WINDOW_KINDS):
                        _inc(win_g, vl, (vid, hub, m, w), g3[i])
                        _inc(win_r, vl, (vid, hub, m, w), r3[i])
                month = bounds[2][:7]
                # a quiet month's stock counts too (`streams.months.start_of_figures`)
                start = start_of_figures(state, month, month)
                if start is not None:
                    for m in materials:
                        _inc(on_hand, vl, (vid, hub, m), start.get(m, 0))
            reasons = state.pickup_reasons
            for kind in PICKUP_REASON_KINDS:
                _inc(req, vl, (vid, hub, kind), reasons.get(kind, 0))
            for m, n in state.pickup_materials.items():
                by_material[(hub, m)] = by_material.get((hub, m), 0) + n
            _inc(done, vl, (vid, hub), state.pickups_collected)
            _inc(cancelled, vl, (vid, hub), state.pickups_cancelled)
            _inc(notices, vl, (vid, hub), state.pickups_overdue)
            _inc(over, vl, (vid, hub), state.pickups_overdue)
            op = state.open_pickup
            _inc(opened, vl, (vid, hub), 1 if op is not None else 0)
            _inc(open_over, vl, (vid, hub), 1 if op is not None and op.overdue else 0)
            for ct, pool in state.containers.items():
                key = (hub, ct)
                figs = (
                    pool.issued,
                    pool.returned,
                    pool.damaged,
                    pool.lost,
                    pool.in_circulation,
                    # at the partition's own time: one catching up (lag, a recovery) has
                    # not seen its returns yet, and read at the others' time showed false
                    # overdue containers (a review)
                    pool.overdue(own_now, self.overdue_us) if own_now is not None else 0,
                )
                for f, v in zip(_CONTAINER_FIELDS, figs, strict=True):
                    target = containers[f]
                    target[key] = target.get(key, 0) + v

    def _event_totals(self, totals: Accumulated) -> None:
        events = totals.series["packloop_events_total"]
        dead = totals.dead
        for marker in self.source.markers():
            _count_dead(dead, marker.dead_lettered, marker.dead_reasons)
            events[("rerouted", "")] = events.get(("rerouted", ""), 0) + marker.rerouted
        events[("applied", "")] = totals.applied
        events[("duplicate", "")] = totals.duplicates
        events.setdefault(("rerouted", ""), 0)
        for reason, n in dead.items():
            events[("dead_lettered", reason)] = n

    def _reference_series(self, acc: dict[str, dict[tuple[str, ...], float]],
                          counters: bool = True) -> None:
        """The reference data's series; with `counters` also the zeros of the per-hub
        pickup counters (not while recovering: a 0 there is a counter reset)."""
        net = self.network
        vl = self.village_label
        thr = acc["packloop_waste_threshold_grams"]
        vinfo = acc["packloop_village_info"]
        hinfo = acc["packloop_hub_info"]
        hubs: set[str] = set()
        for vid in self.source.reference_villages():
            village = net.villages.get(vid)
            if village is None:
                continue
            hub = village.hub_id
            hubs.add(hub)
            key_v = vid if vl else ""
            th = village.thresholds
            _inc(thr, vl, (key_v, hub, mn.THRESHOLD_TOTAL), th.outstanding_grams)
            for material, limit in th.material_grams.items():
                _inc(thr, vl, (key_v, hub, str(getattr(material, "value", material))), limit)
            if vl:
                vinfo[(vid, hub, str(village.lat), str(village.lon))] = 1
        by_material = acc["packloop_pickups_requested_by_material_total"]
        for hub_id in hubs:
            hub = net.hubs.get(hub_id)
            if hub is not None:
                hinfo[(hub_id, hub.name, str(hub.lat), str(hub.lon))] = 1
            for m in mn.MATERIALS if counters else ():
                by_material.setdefault((hub_id, m), 0)

    def _pipeline_series(self, acc: dict[str, dict[tuple[str, ...], float]]) -> None:
        lag = acc["packloop_consumer_lag_records"]
        for (topic, partition), n in self.source.lag().items():
            lag[(topic, str(partition))] = max(0, n)
        assigned = acc["packloop_worker_partitions_assigned"]
        for topic, n in self.source.assigned().items():
            assigned[(topic,)] = n

    # -- families -------------------------------------------------------------------

    def _families(
        self,
        acc: dict[str, dict[tuple[str, ...], float]],
        histogram: tuple[list[tuple[str, float]], float],
    ) -> Iterator[Metric]:
        vl = self.village_label
        for spec in WORKER_SPECS:
            if not spec.exported(vl):
                continue
            labels = list(spec.labels_for(vl))
            samples = acc[spec.name]
            if spec.type == "histogram":
                hist = HistogramMetricFamily(spec.name, spec.help, labels=labels)
                buckets, total = histogram
                hist.add_metric([], buckets, total)
                yield hist
                continue
            fam: CounterMetricFamily | GaugeMetricFamily
            if spec.type == "counter":
                fam = CounterMetricFamily(spec.name, spec.help, labels=labels)
            else:
                fam = GaugeMetricFamily(spec.name, spec.help, labels=labels)
            add = fam.add_metric
            for key, value in samples.items():
                add(key, value)
            yield fam


def _inc(
    target: dict[tuple[str, ...], float], village_label: bool, key: tuple[str, ...], value: float
) -> None:
    """Add to a series keyed in the contract's label order (village first).

    Without the village label the key drops its first element (the village), so the
    villages of one hub add up into one series.
    """
    if not village_label:
        key = key[1:]
    target[key] = target.get(key, 0) + value


def _count_dead(dead: dict[str, int], total: int, by_reason: dict[str, int]) -> None:
    counted = 0
    for reason, n in by_reason.items():
        dead[reason] = dead.get(reason, 0) + n
        counted += n
    if total > counted:  # written before per-reason counts existed
        dead[UNRECORDED] = dead.get(UNRECORDED, 0) + total - counted


# -- the worker's source ----------------------------------------------------------------


class WorkerSource:
    """:class:`Source` over a running :class:`streams.worker.StreamsWorker`."""

    def __init__(
        self, worker: StreamsWorker, local: LocalState, highwater: Callable[[Any], int | None]
    ) -> None:
        self.worker = worker
        self.local = local
        self.highwater = highwater
        self._ref: tuple[frozenset[int], list[str]] | None = None

    def villages(self) -> list[tuple[VillageState, int | None]]:
        return self.local.villages()

    def markers(self) -> list[PartitionMarker]:
        return self.local.markers()

    def ready(self) -> bool:
        return self.worker.runtime.ready()

    def reference_villages(self) -> list[str]:
        rt = self.worker.runtime
        owned = frozenset(rt.assigned)
        if self._ref is None or self._ref[0] != owned:
            vids = [v for v in self.worker.network.villages if rt.partition_of(v) in owned]
            self._ref = (owned, vids)
        return self._ref[1]

    def lag(self) -> dict[tuple[str, int], int]:
        from faust.types import TP

        rt = self.worker.runtime
        topic = self.worker.topics.hub_events
        data = self.worker.table.data
        out: dict[tuple[str, int], int] = {}
        for p in sorted(rt.assigned):
            proc = rt.processors.get(p)
            if proc is not None:
                last = proc.last_offset
            else:
                m = data.get(marker_key(p))
                last = m.offset if isinstance(m, PartitionMarker) else -1
            try:
                hw = self.highwater(TP(topic, p))
            except Exception:  # not fetched yet, or assignment changing
                hw = None
            out[(topic, p)] = lag_records(hw, last)
        return out

    def assigned(self) -> dict[str, int]:
        return {self.worker.topics.hub_events: len(self.worker.runtime.assigned)}


# -- wiring -----------------------------------------------------------------------------


def install(worker: StreamsWorker, local: LocalState) -> CollectorRegistry:
    """Serve ``/metrics`` on the worker's web server: packloop's metrics
    (:class:`PackloopCollector`) and, with ``WorkerOptions.metrics_faust``, Faust's own
    (its Prometheus monitor, prefixed ``faust_``, ~150 series an operator rarely needs).
    Returns a registry with both, for rendering outside the web server.

    The page reads the state on the event loop in slices
    (:meth:`PackloopCollector.accumulate_async`) and builds and renders the text in a
    thread: at 3,000 villages with the village label the text alone takes ~2 s, which
    Faust's stock page (``generate_latest`` inside the handler) spent blocking the loop.

    Also wraps the batch hook to time each batch into
    ``packloop_event_processing_seconds`` (from the fetch being handed over to the
    state being written to the table and sent to the changelog).
    """
    from time import perf_counter

    import prometheus_client
    from faust.sensors.prometheus import FaustMetrics, PrometheusMonitor

    prometheus_client.disable_created_metrics()  # no _created series (doubles counters)
    faust_registry = prometheus_client.CollectorRegistry(auto_describe=False)
    app = worker.app
    if worker.options.metrics_faust:
        app.monitor = PrometheusMonitor(metrics=FaustMetrics.create(faust_registry, "faust"))
    histogram = BatchHistogram()
    source = WorkerSource(worker, local, lambda tp: app.consumer.highwater(tp))
    collector = PackloopCollector(
        worker.network, source, worker.options.metrics_village_label, histogram
    )
    registry = prometheus_client.CollectorRegistry(auto_describe=False)
    registry.register(_Families(faust_registry.collect))
    registry.register(collector)

    @app.page("/metrics")
    async def metrics_page(web: Any, request: Any) -> Any:
        body = await scrape(faust_registry, collector)
        headers = {"Content-Type": prometheus_client.CONTENT_TYPE_LATEST}
        if accepts_gzip(request.headers.get("Accept-Encoding", "")):
            # as prometheus_client's own exporters do: Prometheus asks for gzip, and with
            # the village label a scrape of the sample county is 1.8 MB of text
            body = await asyncio.get_running_loop().run_in_executor(None, gzip.compress,
                                                                    body, 6)
            headers["Content-Encoding"] = "gzip"
        return web.bytes(body, headers=headers)

    hook = app.packloop_batch_hook
    if hook is not None:

        async def timed_batch(messages: list[Any]) -> None:
            t0 = perf_counter()
            await hook(messages)
            histogram.observe(perf_counter() - t0, len(messages))

        app.packloop_batch_hook = timed_batch
    return registry


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding header takes gzip: its own entry's q-value if it has one
    (an explicit gzip;q=0 wins over *), else the wildcard's."""
    found: dict[str, float] = {}
    for part in accept_encoding.split(","):
        coding, _, params = part.strip().partition(";")
        coding = coding.strip().lower()
        if coding not in ("gzip", "*"):
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        found.setdefault(coding, q)
    return found.get("gzip", found.get("*", 0.0)) > 0


async def scrape(faust_registry: Any, collector: PackloopCollector,
                 slice_villages: int = SCRAPE_SLICE) -> bytes:
    """One ``/metrics`` body: state read on the loop in slices, text rendered in a thread."""
    acc = await collector.accumulate_async(slice_villages)
    return await asyncio.get_running_loop().run_in_executor(
        None, render_scrape, faust_registry, collector, acc)


def render_scrape(faust_registry: Any, collector: PackloopCollector, acc: Accumulated) -> bytes:
    """The exposition text of one scrape: Faust's families, then packloop's (the same
    order as rendering the registry :func:`install` returns)."""
    from prometheus_client import generate_latest

    families = list(collector.families(acc))
    return generate_latest(faust_registry) + generate_latest(_Families(lambda: families))


class _Families:
    """Something ``generate_latest`` and a registry accept: families from a callable."""

    def __init__(self, collect: Callable[[], Iterable[Metric]]) -> None:
        self._collect = collect

    def collect(self) -> Iterable[Metric]:
        return self._collect()
