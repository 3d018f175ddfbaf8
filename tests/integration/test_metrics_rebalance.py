"""Two workers, four partitions, a join and a leave: ``sum()`` of the scraped series over
the workers equals the test's own tally of its input after each rebalance.

Each village's series must come from exactly one worker (the owner of its partition)
and vanish from a worker that lost the partition; otherwise the sums double-count
(series left behind) or fall short (series not picked up). Run in both label modes.
Expected figures come from the independent reference model fed with the input.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from streams.network import load_network
from streams.topics import Topics
from tests.helpers import WaitTimeout, wait_until
from tests.integration.helpers import NotYet, WorkerProcess, produce, wait_settled
from tests.streams.reference import Model, generate, partition_of, to_lines

NET = load_network()
PARTS = 4


def scrape(w: WorkerProcess) -> dict[str, list[Any]]:
    text = httpx.get(w.url + "/metrics", timeout=30).text
    out: dict[str, list[Any]] = defaultdict(list)
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[s.name].append(s)
    return out


def total(scrapes: list[dict[str, list[Any]]], name: str, *labels: str) -> dict[Any, float]:
    out: dict[Any, float] = defaultdict(float)
    for sc in scrapes:
        for s in sc.get(name, []):
            key = tuple(s.labels[k] for k in labels)
            out[key[0] if len(key) == 1 else key] += s.value
    return {k: v for k, v in out.items() if v}


def tally(lines: list[bytes]) -> Model:
    m = Model(NET, PARTS)
    for line in lines:
        m.feed(orjson.loads(line))
    return m


def figures(m: Model) -> dict[str, dict[Any, float]]:
    gen: dict[Any, float] = defaultdict(float)
    for v in m.v.values():
        for mat, g in v.gen.items():
            gen[(v.hub, mat)] += g
    issued: dict[Any, float] = defaultdict(float)
    for hub, h in m.hubs().items():
        for ct, f in h["containers"].items():
            issued[(hub, ct)] += f["issued"]
    return {
        "generated": {k: v for k, v in gen.items() if v},
        "issued": {k: v for k, v in issued.items() if v},
        "requested": {"": float(len(m.requested))} if m.requested else {},
        "applied": {"applied": float(m.applied)},
    }


def scraped(ws: list[WorkerProcess]) -> tuple[dict[str, dict[Any, float]], list[dict]]:
    scrapes = [scrape(w) for w in ws]
    got = {
        "generated": total(scrapes, "packloop_waste_generated_grams_total", "hub", "material"),
        "issued": total(scrapes, "packloop_containers_issued_total", "hub", "container_type"),
        "requested": {
            k: v
            for k, v in {
                "": sum(
                    s.value for sc in scrapes for s in sc["packloop_pickups_requested_total"]
                )
            }.items()
            if v
        },
        "applied": {
            k: v
            for k, v in total(scrapes, "packloop_events_total", "outcome").items()
            if k == "applied"
        },
    }
    return got, scrapes


def wait_split(ws: list[WorkerProcess], timeout: float = 90) -> list[set[int]]:
    """Until the live workers own disjoint, non-empty partition sets covering all."""

    def split() -> list[set[int]] | NotYet:
        parts = [w.partitions() for w in ws]
        union = set().union(*parts)
        if all(parts) and union == set(range(PARTS)) and sum(map(len, parts)) == PARTS:
            return parts
        return NotYet(parts)

    return wait_until(split, timeout, f"the partitions split over {len(ws)} workers")


def assert_sums(ws: list[WorkerProcess], m: Model, village_label: bool) -> None:
    want = figures(m)

    def summed() -> list[dict[str, list[Any]]] | NotYet:
        got, scrapes = scraped(ws)
        return scrapes if got == want else NotYet(got)

    try:
        scrapes = wait_until(summed, 30, f"the scraped sums to equal the input's {want}")
    except WaitTimeout as exc:  # say whether the state itself (/status) or the exporter is off
        st = ws[0].status() or {}
        exp = m.villages()
        wrong = sorted(v for v in exp if exp[v] != st.get("villages", {}).get(v))
        raise AssertionError(
            f"{exc}; /status applied {st.get('events')} (model {m.applied}), villages whose "
            f"state differs from the model: {wrong[:10]}, workers {st.get('workers')}"
        ) from None
    assigned = [sum(s.value for s in sc["packloop_worker_partitions_assigned"]) for sc in scrapes]
    assert sum(assigned) == PARTS and all(assigned)
    for w, sc in zip(ws, scrapes, strict=True):
        parts = w.partitions()
        lag = {int(s.labels["partition"]) for s in sc["packloop_consumer_lag_records"]}
        assert lag == parts
        if village_label:
            villages = {s.labels["village"] for s in sc["packloop_village_info"]}
            assert villages == {v for v in NET.villages if partition_of(v, PARTS) in parts}
        else:
            assert not sc.get("packloop_village_info")
            assert all("village" not in s.labels for s in sc["packloop_pickups_open"])


@pytest.mark.parametrize("village_label", [True, False], ids=["village-label", "township"])
def test_sum_over_workers_is_exact_across_a_join_and_a_leave(
    broker: Any,
    topics_factory: Callable[..., Topics],
    workers: Callable[..., WorkerProcess],
    village_label: bool,
) -> None:
    events = generate(NET, 6000, seed=33, villages=60, span_hours=24 * 12)
    lines = to_lines(events)
    first, second, third = lines[:2000], lines[2000:4000], lines[4000:]
    env = {"PACKLOOP_METRICS_VILLAGE_LABEL": "true" if village_label else "false"}
    topics = topics_factory(PARTS)
    a = workers(topics.prefix, **env).start()
    a.wait_ready(partitions=PARTS)
    produce(broker.bootstrap, topics.hub_events, first)
    wait_settled([a], len(first))
    assert_sums([a], tally(first), village_label)

    # b joins: the partitions are split, a's scrape loses what b's gains
    b = workers(topics.prefix, **env).start()
    b.wait_ready()
    wait_split([a, b])
    produce(broker.bootstrap, topics.hub_events, second)
    wait_settled([a, b], len(first) + len(second))
    wait_split([a, b])
    assert_sums([a, b], tally(first + second), village_label)

    # a leaves: b takes every partition back with its state
    a.stop()
    wait_until(lambda: b.partitions() == set(range(PARTS)), 90, "b to take every partition")
    produce(broker.bootstrap, topics.hub_events, third)
    wait_settled([b], len(lines))
    assert_sums([b], tally(lines), village_label)
