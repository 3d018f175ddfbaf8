"""The worker's exporter (``streams.metrics``) against the independent model.

Events from the reference generator go through real partition processors; the
collector reads their state through a fake source; the exposition text is parsed back
with prometheus_client's parser. Expected figures come from :class:`Model` fed with the
same events, never from packloop's state, so a wrong sum, a wrong label, a series left
behind after a revoke or a township sum that differs from the village sums fails here.
"""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams import metric_names as mn
from streams.metrics import BatchHistogram, PackloopCollector, lag_records
from streams.network import Network, load_network, network_from_dict, read_network_file
from streams.state import DAY_US, ContainerPool, PartitionMarker, VillageState, to_us
from streams.state.tallies import MonthBucket
from tests.streams.helpers import Harness
from tests.streams.reference import ReasonModel, generate, partition_of


def _low_thresholds() -> Network:
    """The sample county with thresholds low enough that the generated events cross all
    three kinds (about 97 pickups by outstanding grams, 32 by age, 15 by EPS foam; 40
    cancelled), so a pickup counted under the wrong reason fails the per-reason check."""
    data = copy.deepcopy(read_network_file())
    data["defaults"]["thresholds"] = {"outstanding_grams": 6000,
                                      "material_grams": {"eps_foam": 800},
                                      "max_age_hours": 168}
    return network_from_dict(data)


NET = _low_thresholds()
PARTS = 4


class FakeSource:
    def __init__(self, h: Harness, owned: set[int], ready: bool = True) -> None:
        self.h = h
        self.owned = owned
        self.is_ready = ready

    def villages(self) -> list[tuple[VillageState, int | None]]:
        return [
            (s, proc.stream_time)
            for p, proc in self.h.procs.items()
            if p in self.owned
            for s in proc.villages.values()
        ]

    def markers(self) -> list[PartitionMarker]:
        return [proc.marker for p, proc in self.h.procs.items() if p in self.owned]

    def reference_villages(self) -> list[str]:
        return [v for v in NET.villages if partition_of(v, PARTS) in self.owned]

    def lag(self) -> dict[tuple[str, int], int]:
        return {("hub-events", p): 0 for p in sorted(self.owned)}

    def assigned(self) -> dict[str, int]:
        return {"hub-events": len(self.owned)}

    def ready(self) -> bool:
        return self.is_ready


@pytest.fixture(scope="module")
def run() -> tuple[Harness, ReasonModel]:
    events = generate(NET, 4000, seed=5, villages=60, span_hours=24 * 20)
    h = Harness(PARTS, NET)
    for e in events:
        h.produce(orjson.dumps(e))
    for p in range(PARTS):
        h.run(p, batch=300)
    m = ReasonModel(NET, PARTS)
    for e in events:
        m.feed(e)
    return h, m


def scrape(h: Harness, owned: set[int], village_label: bool = True,
           histogram: BatchHistogram | None = None) -> tuple[str, dict[str, list[Any]]]:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PackloopCollector(NET, FakeSource(h, owned), village_label, histogram))
    text = generate_latest(reg).decode()
    samples: dict[str, list[Any]] = defaultdict(list)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples[s.name].append(s)
    return text, samples


def by(samples: list[Any], *labels: str) -> dict[Any, float]:
    """Sum samples by the given labels (key: the value itself for one label)."""
    out: dict[Any, float] = defaultdict(float)
    for s in samples:
        key = tuple(s.labels[k] for k in labels)
        out[key[0] if len(key) == 1 else key] += s.value
    return dict(out)


@pytest.mark.slow
def test_waste_counters_and_outstanding_match_the_model(run: tuple[Harness, ReasonModel]) -> None:
    """Cumulative grams per village and material are the model's, outstanding never < 0."""
    h, m = run
    _, s = scrape(h, set(range(PARTS)))
    gen = by(s["packloop_waste_generated_grams_total"], "village", "material")
    rec = by(s["packloop_waste_recovered_grams_total"], "village", "material")
    out = by(s["packloop_waste_outstanding_grams"], "village", "material")
    assert {k: g for k, g in gen.items() if g} == {
        (v, mat): g for v, x in m.v.items() for mat, g in x.gen.items() if g}
    assert {k: r for k, r in rec.items() if r} == {
        (v, mat): r for v, x in m.v.items() for mat, r in x.rec.items() if r}
    assert set(gen) == set(rec)  # a material with either tally has both series
    exp_out = {(v, mat): g for v, x in m.v.items() for mat, g in x.outstanding().items()}
    assert {k: v for k, v in out.items() if v} == exp_out
    hubs = {r.labels["village"]: r.labels["hub"] for r in s["packloop_waste_outstanding_grams"]}
    assert all(NET.villages[v].hub_id == hub for v, hub in hubs.items())


def test_pickups_events_and_containers_match_the_model(run: tuple[Harness, ReasonModel]) -> None:
    h, m = run
    _, s = scrape(h, set(range(PARTS)))
    req = by(s["packloop_pickups_requested_total"], "reason")
    assert set(req) <= set(mn.PICKUP_REASONS)
    assert sum(req.values()) == len(m.requested)
    assert {k: v for k, v in req.items() if v} == dict(
        Counter(m.first_kind[p] for p in m.requested)
    )
    assert sum(x.value for x in s["packloop_pickups_overdue_total"]) == len(m.overdue)
    materials = by(s["packloop_pickups_requested_by_material_total"], "material")
    assert set(materials) == set(mn.MATERIALS)
    assert {k: v for k, v in materials.items() if v} == dict(
        Counter(m.first_material.values()))
    assert sum(materials.values()) == req["material_grams"] > 0
    assert sum(x.value for x in s["packloop_pickups_cancelled_total"]) == sum(
        v.cancelled for v in m.v.values()) > 0
    assert sum(x.value for x in s["packloop_pickups_open"]) == sum(
        1 for v in m.v.values() if v.open
    )
    events = by(s["packloop_events_total"], "outcome", "reason")
    assert events[("applied", "")] == m.applied
    assert events[("duplicate", "")] == m.duplicates
    dead = {r: n for (o, r), n in events.items() if o == "dead_lettered"}
    assert dead == dict(Counter(reason for reason, _e in m.dead))
    exp_c = m.hubs()
    for fam, field in (
        ("packloop_containers_issued_total", "issued"),
        ("packloop_containers_returned_total", "returned"),
        ("packloop_containers_damaged_total", "damaged"),
        ("packloop_containers_lost_total", "lost"),
        ("packloop_containers_in_circulation", "in_circulation"),
        ("packloop_containers_overdue", "overdue"),
    ):
        got = by(s[fam], "hub", "container_type")
        assert got == {
            (hub, ct): f[field] for hub, x in exp_c.items() for ct, f in x["containers"].items()
        }, fam


def test_overdue_names_say_counter_or_gauge_and_the_old_one_is_deprecated(
        run: tuple[Harness, ReasonModel]) -> None:
    """``packloop_pickups_overdue_notices_total`` (counter) replaces
    ``packloop_pickups_overdue_total``, kept one release with the same series and a HELP
    that says so; ``packloop_pickups_open_overdue`` is the gauge."""
    h, m = run
    text, s = scrape(h, set(range(PARTS)))
    old = by(s["packloop_pickups_overdue_total"], "village", "hub")
    assert old == by(s["packloop_pickups_overdue_notices_total"], "village", "hub")
    assert sum(old.values()) == len(m.overdue) > 0
    assert ("# HELP packloop_pickups_overdue_total DEPRECATED: use "
            "packloop_pickups_overdue_notices_total") in text
    assert "# TYPE packloop_pickups_open_overdue gauge" in text
    assert "# TYPE packloop_pickups_overdue_notices_total counter" in text
    deprecated = [spec for spec in mn.METRICS if spec.deprecated_for]
    assert [(d.name, d.deprecated_for) for d in deprecated] == [
        ("packloop_pickups_overdue_total", "packloop_pickups_overdue_notices_total")]
    for d in deprecated:
        assert d.help.startswith(f"DEPRECATED: use {d.deprecated_for}")
        assert mn.BY_NAME[d.deprecated_for].labels == d.labels


def test_windows_equal_the_state_definition(run: tuple[Harness, ReasonModel]) -> None:
    """The one-pass window sums equal VillageState.window for every window kind."""
    h, _ = run
    _, s = scrape(h, set(range(PARTS)))
    got = by(s["packloop_waste_window_generated_grams"], "village", "material", "window")
    gotr = by(s["packloop_waste_window_recovered_grams"], "village", "material", "window")
    checked = 0
    # one time for every village: the latest stream time of the partitions scraped
    latest = max(proc.stream_time for proc in h.procs.values() if proc.stream_time)
    for proc in h.procs.values():
        for st in proc.villages.values():
            if not (st.generated or st.recovered):
                continue
            for w in mn.WINDOWS:
                win = st.window(latest, NET.timezone, w)
                for mat in set(st.generated) | set(st.recovered):
                    assert got[(st.village_id, mat, w)] == win["generated_grams"].get(mat, 0)
                    assert gotr[(st.village_id, mat, w)] == win["recovered_grams"].get(mat, 0)
                    checked += 1
    assert checked > 100
    # a 20-day span: the month and 7d windows hold more than the day window somewhere
    assert any(got[(v, mat, "7d")] > got[(v, mat, "day")] for (v, mat, _w) in got)


def test_township_mode_drops_the_village_and_keeps_the_sums(
        run: tuple[Harness, ReasonModel]) -> None:
    h, _ = run
    _, on = scrape(h, set(range(PARTS)), True)
    _, off = scrape(h, set(range(PARTS)), False)
    assert "packloop_village_info" not in off
    for spec in mn.METRICS:
        if spec.component != "worker" or spec.type == "histogram" or not spec.exported(False):
            continue
        keep = spec.labels_for(False)
        for x in off.get(spec.name, []):
            assert "village" not in x.labels
        assert by(off.get(spec.name, []), *keep) == by(on.get(spec.name, []), *keep), spec.name


def test_series_of_a_revoked_partition_disappear(run: tuple[Harness, ReasonModel]) -> None:
    """Two workers owning halves export disjoint villages whose sums are the whole."""
    h, m = run
    _, a = scrape(h, {0, 1})
    _, b = scrape(h, {2, 3})
    va = {x.labels["village"] for x in a["packloop_village_info"]}
    vb = {x.labels["village"] for x in b["packloop_village_info"]}
    assert va and vb and not va & vb
    assert va | vb == set(NET.villages)
    for x in a["packloop_waste_generated_grams_total"]:
        assert partition_of(x.labels["village"], PARTS) in (0, 1)
    total = sum(x.value for x in a["packloop_waste_generated_grams_total"]) + sum(
        x.value for x in b["packloop_waste_generated_grams_total"]
    )
    assert total == sum(g for v in m.v.values() for g in v.gen.values())
    ta = by(a["packloop_events_total"], "outcome")
    tb = by(b["packloop_events_total"], "outcome")
    assert ta["applied"] + tb["applied"] == m.applied


def test_exposition_follows_the_contract(run: tuple[Harness, ReasonModel]) -> None:
    """Every worker family with exactly the contract's labels, no _created series,
    thresholds and info gauges from the reference data, histogram buckets as specified."""
    h, _ = run
    hist = BatchHistogram()
    hist.observe(0.003, 10)
    hist.observe(0.0005, 2)
    hist.observe(7.0, 1)
    text, s = scrape(h, set(range(PARTS)), histogram=hist)
    assert "_created" not in text
    for spec in mn.METRICS:
        if spec.component != "worker":
            continue
        names = spec.series_names()
        assert any(n in s for n in names), spec.name
        for n in names:
            for x in s.get(n, []):
                labels = set(x.labels) - {"le"}
                assert labels == set(spec.labels), (n, x.labels)
                for label, values in spec.values.items():
                    assert x.labels[label] in values, (n, x.labels)
    buckets = {x.labels["le"]: x.value for x in s["packloop_event_processing_seconds_bucket"]}
    assert len(buckets) == len(mn.PROCESSING_BUCKETS) + 1
    assert buckets["0.0005"] == 2 and buckets["0.0025"] == 2 and buckets["0.005"] == 12
    assert buckets["1.0"] == 12 and buckets["+Inf"] == 13
    assert s["packloop_event_processing_seconds_count"][0].value == 13
    assert s["packloop_event_processing_seconds_sum"][0].value == pytest.approx(7.031)
    thr = by(s["packloop_waste_threshold_grams"], "village", "material")
    v0 = next(iter(NET.villages.values()))
    assert thr[(v0.village_id, "total")] == v0.thresholds.outstanding_grams
    info = {x.labels["village"]: x for x in s["packloop_village_info"]}
    assert float(info[v0.village_id].labels["lat"]) == v0.lat
    hubs = {x.labels["hub"]: x.labels["name"] for x in s["packloop_hub_info"]}
    assert hubs == {hid: hub.name for hid, hub in NET.hubs.items()}


def test_lag_is_never_negative_and_counts_what_is_known() -> None:
    assert lag_records(None, 10) == 0  # nothing reported yet
    assert lag_records(100, 49) == 50  # offsets 50..99 not processed
    assert lag_records(100, 99) == 0
    # the embedded broker's end offset can be behind what was already fetched
    assert lag_records(90, 99) == 0
    assert lag_records(0, -1) == 0


def test_worker_wiring_static_membership_and_label_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings reach the Faust app: group.instance.id for static membership, the
    label mode for the collector, and /metrics serves Faust's and packloop's families."""
    from prometheus_client import generate_latest as render

    from services.settings import get_settings
    from streams.app import WorkerOptions, create_worker
    from streams.kafka import KafkaConnection
    from streams.topics import Topics

    monkeypatch.setenv("PACKLOOP_METRICS_VILLAGE_LABEL", "false")
    monkeypatch.setenv("PACKLOOP_WORKER_GROUP_INSTANCE_ID", "worker-7")
    settings = get_settings()
    assert settings.metrics_village_label is False
    assert settings.worker_group_instance_id == "worker-7"
    w = create_worker(
        KafkaConnection("127.0.0.1:1"), Topics("u-"), NET,
        WorkerOptions(partitions=4, metrics_village_label=settings.metrics_village_label,
                      group_instance_id=settings.worker_group_instance_id),
    )
    assert w.app.conf.consumer_group_instance_id == "worker-7"
    w.runtime.assigned = {1}
    text = render(w.metrics_registry).decode()
    assert "faust_" not in text, "Faust's own metrics are off unless asked for"
    assert "packloop_village_info" not in text and 'village="' not in text
    assert 'packloop_worker_partitions_assigned{topic="u-hub-events"} 1.0' in text
    plain = create_worker(KafkaConnection("127.0.0.1:1"), Topics("u-"), NET,
                          WorkerOptions(partitions=4, metrics_faust=True))
    assert plain.app.conf.consumer_group_instance_id is None
    assert "faust_messages_received_total" in render(plain.metrics_registry).decode()


@pytest.mark.parametrize("village_label", [True, False])
def test_a_sliced_scrape_renders_what_a_whole_one_does(run, village_label) -> None:
    """The worker's page reads the state in slices with the event loop let in between,
    and renders off the loop; the text must be the same as rendering in one go, and the
    loop must get turns during the scrape (a page that blocks it gets none)."""
    import asyncio

    from prometheus_client import CollectorRegistry as Registry
    from prometheus_client import Counter as PromCounter

    from streams.metrics import scrape

    h, _ = run
    faust_like = Registry(auto_describe=False)
    PromCounter("faust_messages_received", "received", registry=faust_like).inc(3)
    hist = BatchHistogram()
    hist.observe(0.02, 40)
    collector = PackloopCollector(NET, FakeSource(h, {0, 1, 2, 3}), village_label, hist)
    whole = Registry(auto_describe=False)
    whole.register(faust_like)
    whole.register(collector)
    expected = generate_latest(whole)
    villages = len(FakeSource(h, {0, 1, 2, 3}).villages())
    assert villages > 20

    async def scrape_while_ticking(slice_villages: int) -> tuple[bytes, int]:
        ticks = 0
        done = False

        async def ticker() -> None:
            nonlocal ticks
            while not done:
                ticks += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0)
        start = ticks
        body = await scrape(faust_like, collector, slice_villages)
        done = True
        await task
        return body, ticks - start

    for slice_villages in (1, 7, 10_000):
        body, ticks = asyncio.run(scrape_while_ticking(slice_villages))
        assert body == expected
        assert "faust_messages_received_total 3.0" in body.decode()
        # one turn per slice at least, and more while the text renders in its thread
        assert ticks >= -(-villages // slice_villages), (slice_villages, ticks)


class StaticSource:
    """One worker owning every village of a network, at one stream time."""

    def __init__(self, states: list[VillageState], now: int, partitions: int) -> None:
        self.states = [(s, now) for s in states]
        self.partitions = partitions

    def villages(self) -> list[tuple[VillageState, int | None]]:
        return self.states

    def markers(self) -> list[PartitionMarker]:
        return [PartitionMarker(p, offset=1) for p in range(self.partitions)]

    def reference_villages(self) -> list[str]:
        return [s.village_id for s, _now in self.states]

    def lag(self) -> dict[tuple[str, int], int]:
        return {("hub-events", p): 0 for p in range(self.partitions)}

    def assigned(self) -> dict[str, int]:
        return {"hub-events": self.partitions}

    def ready(self) -> bool:
        return True


@pytest.mark.parametrize("village_label", [True, False])
def test_worst_case_series_count_is_the_published_model(village_label: bool) -> None:
    """The series counts docs/operations.md publishes come from a model of the contract
    (tests/infra/series.py); the exporter must emit exactly that many for its worst case:
    every village with every material generated and recovered, both container types,
    every pickup reason, 10 dead-letter reasons, one worker owning 8 partitions."""
    from tests.infra.series import Deployment, total

    net = load_network()
    now = to_us(datetime(2026, 11, 15, 4, tzinfo=UTC))
    reasons = [f"reason_{i}" for i in range(10)]
    states = []
    for vid, village in net.villages.items():
        s = VillageState(vid, village.hub_id, applied=5, dead_lettered=len(reasons))
        for m in mn.MATERIALS:
            s.generated[m], s.recovered[m] = 900, 100
        s.days["2026-11-15"] = [dict(s.generated), dict(s.recovered)]
        s.months["2026-11"] = MonthBucket(on_hand_start=dict.fromkeys(mn.MATERIALS, 50))
        for ct in mn.CONTAINER_TYPES:
            s.containers[ct] = ContainerPool(issued=2, fifo=[[now - DAY_US, 2]])
        s.dead_reasons = dict.fromkeys(reasons, 1)
        states.append(s)
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PackloopCollector(net, StaticSource(states, now, 8), village_label))
    text = generate_latest(reg).decode()
    series = sum(len(f.samples) for f in text_string_to_metric_families(text))
    deployment = Deployment(villages=len(net.villages), hubs=len(net.hubs), workers=1,
                            partitions=8, dead_letter_reasons=len(reasons))
    assert series == total(village_label, deployment)


def test_a_quiet_partition_is_read_in_the_month_the_others_reached() -> None:
    """Two partitions of one worker, one still at November's stream time, the other in
    December: every village's "month" is December. Each at its own time, the quiet one's
    November went into the township's "this month" (an outside audit: a recovery ratio
    of 0.7056 where the report said 0.6864)."""
    net = load_network()
    late, busy = list(net.villages)[:2]
    a = VillageState(late, net.villages[late].hub_id)
    a.generated["cardboard"] = 4_000
    a.recovered["cardboard"] = 800
    a.months["2026-11"] = MonthBucket(generated={"cardboard": 4_000},
                                      recovered={"cardboard": 800})
    a.days["2026-11-28"] = [{"cardboard": 4_000}, {"cardboard": 800}]
    b = VillageState(busy, net.villages[busy].hub_id)
    b.generated["cardboard"] = 1_000
    b.months["2026-12"] = MonthBucket(generated={"cardboard": 1_000})
    b.days["2026-12-02"] = [{"cardboard": 1_000}, {}]
    nov = to_us(datetime(2026, 11, 28, 6, tzinfo=UTC))
    dec = to_us(datetime(2026, 12, 2, 6, tzinfo=UTC))
    source = StaticSource([a, b], dec, 2)
    source.states = [(a, nov), (b, dec)]
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PackloopCollector(net, source, True))
    samples = [s for f in text_string_to_metric_families(generate_latest(reg).decode())
               for s in f.samples]
    month = {s.labels["village"]: s.value for s in samples
             if s.name == "packloop_waste_window_generated_grams"
             and s.labels["window"] == "month"}
    start = {s.labels["village"]: s.value for s in samples
             if s.name == "packloop_waste_month_on_hand_start_grams"}
    assert month == {late: 0, busy: 1_000}
    assert start[late] == 3_200  # what it held when December began


def test_a_quiet_villages_stock_counts_in_the_months_on_hand() -> None:
    """November's on-hand gauge carries the 40 kg a village kept from October though it has
    no November event (the recovery-rate rules divide by it); a village that holds nothing
    adds no series."""
    net = load_network()
    quiet, empty = list(net.villages)[:2]
    hub = net.villages[quiet].hub_id
    now = to_us(datetime(2026, 11, 15, 4, tzinfo=UTC))
    a = VillageState(quiet, hub)
    a.generated["cardboard"] = 40_000
    a.months["2026-10"] = MonthBucket(generated={"cardboard": 40_000})
    b = VillageState(empty, net.villages[empty].hub_id)
    b.generated["cardboard"] = b.recovered["cardboard"] = 5_000
    b.months["2026-10"] = MonthBucket(generated={"cardboard": 5_000},
                                      recovered={"cardboard": 5_000})
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PackloopCollector(net, StaticSource([a, b], now, 1), True))
    got = {(s.labels["village"], s.labels["material"]): s.value
           for f in text_string_to_metric_families(generate_latest(reg).decode())
           for s in f.samples if s.name == "packloop_waste_month_on_hand_start_grams"}
    assert got[(quiet, "cardboard")] == 40_000
    assert got.get((empty, "cardboard"), 0) == 0


def test_a_recovering_worker_leaves_its_state_series_out_instead_of_exporting_them_short(
        run: tuple[Harness, ReasonModel]) -> None:
    """A restarted worker exported applied=0, then 66,368 of 113,787, then all of them: to
    Prometheus two counter resets, 239,501 events 'applied' in two minutes without a new
    one. While the state is not whole the state's series are absent (they come back where
    they were: no reset); the lag and assignment series stay."""
    h, _m = run
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PackloopCollector(NET, FakeSource(h, {0, 1, 2, 3}, ready=False), True))
    names = {s.name for f in text_string_to_metric_families(generate_latest(reg).decode())
             for s in f.samples}
    assert not any(n.startswith(("packloop_events", "packloop_waste_generated",
                                 "packloop_pickups_requested", "packloop_containers"))
                   for n in names), sorted(names)
    assert "packloop_consumer_lag_records" in names
    assert "packloop_worker_partitions_assigned" in names
    _text, whole = scrape(h, {0, 1, 2, 3})
    assert sum(s.value for s in whole["packloop_events_total"]
               if s.labels["outcome"] == "applied") > 0


@pytest.mark.parametrize("header, takes", [
    ("gzip", True), ("deflate, gzip;q=1.0, *;q=0.5", True), ("GZIP", True), ("*", True),
    ("gzip;q=0", False), ("identity", False), ("", False), ("br, deflate", False),
    ("gzip;q=abc", False), ("*;q=1, gzip;q=0", False), ("gzip;q=0.5", True)])
def test_gzip_is_served_only_to_a_client_that_takes_it(header: str, takes: bool) -> None:
    from streams.metrics import accepts_gzip

    assert accepts_gzip(header) is takes


def test_a_tally_corrected_to_zero_reads_zero_instead_of_vanishing() -> None:
    """A waste_adjustment that takes a village's generated cardboard back to 0 dropped the
    series (a tally keeps no zeros) while its recovered cardboard stayed: a counter that
    vanished instead of reading 0 (an outside audit)."""
    net = load_network()
    vid = list(net.villages)[0]
    state = VillageState(vid, net.villages[vid].hub_id)
    state.recovered["cardboard"] = 500  # generated corrected to 0: no entry
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PackloopCollector(net, StaticSource([state], None, 1), True))
    got = {s.name: s.value
           for f in text_string_to_metric_families(generate_latest(reg).decode())
           for s in f.samples if s.labels.get("material") == "cardboard"
           and s.name.startswith("packloop_waste_") and s.name.endswith("_total")}
    assert got == {"packloop_waste_generated_grams_total": 0,
                   "packloop_waste_recovered_grams_total": 500}
