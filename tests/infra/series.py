"""Series count of packloop's worker metrics, computed from the metric contract.

Worst case: every village has every material outstanding and in every window. The
numbers in docs/operations.md come from :func:`table` (tests/infra/test_docs.py checks
they are current): ``python -m tests.infra.series`` prints it.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.metric_names import METRICS, MetricSpec


@dataclass(frozen=True)
class Deployment:
    villages: int = 1000
    hubs: int = 51  # the sample county's density: 20 hubs per 390 villages
    workers: int = 4
    partitions: int = 8  # of hub-events; lag series are per partition
    dead_letter_reasons: int = 10
    material_thresholds: int = 1  # eps_foam has its own limit besides the total


CLOSED = {"material": 7, "window": 3, "reason": 3, "container_type": 2}


def series(spec: MetricSpec, village_label: bool, d: Deployment) -> int:
    if spec.component != "worker" or not spec.exported(village_label):
        return 0
    labels = spec.labels_for(village_label)
    if spec.name == "packloop_events_total":
        # applied, duplicate, rerouted with reason="", dead_lettered per reason
        return d.workers * (3 + d.dead_letter_reasons)
    if spec.name == "packloop_consumer_lag_records":
        return d.partitions
    if spec.name == "packloop_worker_partitions_assigned":
        return d.workers
    if spec.type == "histogram":
        return d.workers * (len(spec.buckets) + 3)  # buckets, +Inf, _sum, _count
    n = 1
    for label in labels:
        if label == "material" and spec.name == "packloop_waste_threshold_grams":
            n *= 1 + d.material_thresholds
        elif label in CLOSED:
            n *= CLOSED[label]
    if "village" in labels:
        return d.villages * n  # a village lives on one worker
    if "hub" in labels:
        return d.hubs * d.workers * n  # each worker exports its share of every hub
    return d.workers * n


def total(village_label: bool, d: Deployment | None = None) -> int:
    d = d or Deployment()
    return sum(series(m, village_label, d) for m in METRICS)


def table(d: Deployment | None = None) -> str:
    d = d or Deployment()
    rows = ["| metric | village label on | village label off |", "| --- | ---: | ---: |"]
    for m in METRICS:
        on, off = series(m, True, d), series(m, False, d)
        if on or off:
            rows.append(f"| `{m.name}` | {on:,} | {off:,} |")
    rows.append(f"| **total (worker metrics)** | **{total(True, d):,}** | "
                f"**{total(False, d):,}** |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
    d = Deployment()
    for v in (1000, 10000, 100000):
        dd = Deployment(villages=v, hubs=round(v * 20 / 390), workers=d.workers)
        print(v, total(True, dd), total(False, dd))
