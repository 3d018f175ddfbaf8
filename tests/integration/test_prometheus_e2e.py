"""A real Prometheus (Debian's /usr/bin/prometheus) scraping a real worker on the real
broker: PromQL answers equal the figures the test computes from its own input.

The input is a realistic event file from the reference generator (shipments with
containers, returns, collections closing pickups, adjustments, bad records). The
expected grams, pickup and container counts come from the independent model in
``tests/streams/reference.py`` fed with that file, never from packloop's output. The
worker is scraped every second; the queries are made once a scrape after the worker
settled is in Prometheus. Prometheus runs on a free loopback port with a temporary
config and storage directory and is killed at the end.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.network import load_network
from tests.helpers import wait_until
from tests.infra.tools import RULE_FILES, requires_binary
from tests.integration.helpers import ReadyWorker, produce, wait_settled
from tests.prometheus_server import prometheus_server
from tests.streams.reference import ReasonModel, generate, to_lines

NET = load_network()


class Tally(ReasonModel):
    """The reference model with first threshold kinds, also counting completed pickups."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.completed: Counter[str] = Counter()  # hub -> pickups closed by a collection

    def feed(self, e: dict) -> None:
        v = self.v.get(e["village_id"])
        was_open = v.open if v is not None else None
        applied = self.applied
        super().feed(e)
        if (
            self.applied > applied
            and e["type"] == "recycling_collected"
            and was_open is not None
            and e.get("pickup_id") == was_open
        ):
            self.completed[self.v[e["village_id"]].hub] += 1


def expect(lines: list[bytes], partitions: int) -> Tally:
    m = Tally(NET, partitions)
    for line in lines:
        m.feed(orjson.loads(line))
    return m


@requires_binary("prometheus")
def test_promql_returns_the_figures_of_the_input(
    broker: Any, ready_worker: ReadyWorker, tmp_path: Path
) -> None:
    lines = to_lines(generate(NET, 6000, seed=22, villages=50, span_hours=24 * 16))
    topics, w = ready_worker(4)
    produce(broker.bootstrap, topics.hub_events, lines)
    wait_settled([w], len(lines))
    settled = time.time()
    m = expect(lines, 4)
    assert m.requested and m.overdue and sum(m.completed.values()), "input exercises pickups"
    target = w.url.removeprefix("http://")
    jobs = {"packloop-worker": [target]}
    with prometheus_server(jobs, RULE_FILES, tmp_path / "prometheus") as prom:
        prom.wait_scrape_after(settled, "packloop-worker", 1)

        # grams per hub and material, cumulative
        gen: dict[tuple[str, str], int] = defaultdict(int)
        rec: dict[tuple[str, str], int] = defaultdict(int)
        for v in m.v.values():
            for mat, g in v.gen.items():
                gen[(v.hub, mat)] += g
            for mat, r in v.rec.items():
                rec[(v.hub, mat)] += r
        assert prom.by(
            "sum by (hub, material) (packloop_waste_generated_grams_total)", "hub", "material"
        ) == {k: g for k, g in gen.items() if g}
        assert prom.by(
            "sum by (hub, material) (packloop_waste_recovered_grams_total)", "hub", "material"
        ) == {k: r for k, r in rec.items() if r}
        # one village, outstanding per material
        vid, v = max(m.v.items(), key=lambda kv: sum(kv[1].outstanding().values()))
        got = prom.by(
            f'packloop_waste_outstanding_grams{{village="{vid}"}} > 0', "material"
        )
        assert got == v.outstanding()

        # pickups
        assert prom.scalar("sum(packloop_pickups_requested_total)") == len(m.requested)
        assert prom.by("sum by (reason) (packloop_pickups_requested_total) > 0", "reason") == (
            dict(Counter(m.first_kind[p] for p in m.requested))
        )
        assert prom.by("sum by (hub) (packloop_pickups_completed_total) > 0", "hub") == dict(
            m.completed
        )
        assert prom.scalar("sum(packloop_pickups_overdue_total)") == len(m.overdue)
        assert prom.scalar("sum(packloop_pickups_open)") == sum(
            1 for x in m.v.values() if x.open
        )

        # containers per hub and type
        hubs = m.hubs()
        for family, field in (
            ("packloop_containers_issued_total", "issued"),
            ("packloop_containers_returned_total", "returned"),
            ("packloop_containers_damaged_total", "damaged"),
            ("packloop_containers_lost_total", "lost"),
            ("packloop_containers_in_circulation", "in_circulation"),
        ):
            want = {
                (hub, ct): float(f[field])
                for hub, h in hubs.items()
                for ct, f in h["containers"].items()
            }
            got_c = prom.by(f"sum by (hub, container_type) ({family})", "hub", "container_type")
            assert got_c == want, family

        # pipeline counters
        events = prom.by("sum by (outcome, reason) (packloop_events_total)", "outcome", "reason")
        assert events[("applied", "")] == m.applied
        dead = {r: n for (o, r), n in events.items() if o == "dead_lettered"}
        assert dead == dict(Counter(reason for reason, _e in m.dead))
        assert prom.scalar('sum(packloop_worker_partitions_assigned{topic=~".*hub-events"})') == 4
        lag = prom.query("packloop_consumer_lag_records")
        assert len(lag) == 4 and all(float(r["value"][1]) == 0 for r in lag), lag  # settled
        assert prom.scalar("sum(packloop_event_processing_seconds_count)") >= m.applied
        # packloop's rules on the real worker's series: all evaluate (no many-to-many
        # matches), and the threshold ratio of the fullest village is the one computed
        # from its outstanding grams and its thresholds in the reference data
        rules = prom.wait_rules_evaluated_after(settled, timeout=20)
        assert all(r["health"] == "ok" for r in rules), [
            (r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
        th = NET.villages[vid].thresholds
        out = v.outstanding()
        ratios = [sum(out.values()) / th.outstanding_grams] + [
            out.get(mat.value, 0) / limit for mat, limit in th.material_grams.items()]
        expr = f'village:packloop_waste_outstanding_threshold:ratio{{village="{vid}"}}'
        wait_until(lambda: prom.query(expr), 15, f"{expr} recorded")
        assert prom.scalar(expr) == pytest.approx(max(ratios))
        # the officer's month: the recorded mass-balance ratio of the county and of the
        # busiest township equals the officer report's (kpi_levels on the worker's month
        # rows, as `packloop report officer` computes it)
        import httpx

        from services.reports.officer import kpi_levels

        month = max(orjson.loads(x)["occurred_at"] for x in lines
                    if b'"occurred_at"' in x)[:7]  # the stream's month (UTC ~ local here)
        data = httpx.get(f"{w.url}/months/{month}", timeout=10).json()
        levels = kpi_levels(data, NET, month, {"version": "-", "targets": {}})
        county = "county:packloop_waste_month_recovery_ratio:ratio"
        wait_until(lambda: prom.query(county), 15, f"{county} recorded")
        assert 0 < levels["county"]["recovery_ratio"] < 1
        assert prom.scalar(county) == pytest.approx(levels["county"]["recovery_ratio"],
                                                    rel=1e-9)
        town = max(levels["townships"], key=lambda t: t["parcels"])
        hub_expr = f'hub:packloop_waste_month_recovery_ratio:ratio{{hub="{town["hub_id"]}"}}'
        assert prom.scalar(hub_expr) == pytest.approx(town["recovery_ratio"], rel=1e-9)
        assert prom.scalar("county:packloop_waste_month_unrecorded_recovered_grams:sum") == \
            levels["county"]["unrecorded_recovered_grams"]
        # Faust's own series are off by default (PACKLOOP_METRICS_FAUST); no _created series
        assert not prom.query('count({__name__=~"faust_.+"})')
        assert not prom.query('{__name__=~".+_created"}')
