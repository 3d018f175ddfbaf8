"""Scrape size, series count and render time of a worker's /metrics at N villages.

Synthesises the state of N villages (default 3,000) directly — no broker, no Faust —
and renders packloop's collector (:class:`streams.metrics.PackloopCollector`) the way
the worker's ``/metrics`` does (``prometheus_client.generate_latest``), in both label
modes. Worst case, as in docs/operations.md: every village has all 7 materials
generated and recovered, 32 day buckets, both container types, pickups of every reason,
and dead letters of 10 reasons. One worker owns every village (8 partitions).

    .venv/bin/python bench/metrics_scrape.py [--villages 3000] [--repeat 5]

It then measures how long one scrape holds the worker's event loop: the worker's page
reads state in slices of villages and renders the text in a thread.

The reference data is the sample county scaled up: 20 townships per 390 villages
(3,000 villages: 154 townships), thresholds total + eps_foam.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, disable_created_metrics, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from streams import (
    DAY_US,
    SAMPLE_NETWORK_PATH,
    BatchHistogram,
    ContainerPool,
    ContainerType,
    Material,
    OpenPickup,
    PackloopCollector,
    PartitionMarker,
    VillageState,
    load_network,
    scrape,
    to_us,
)

PARTITIONS = 8
MATERIALS = [m.value for m in Material]
DEAD_REASONS = ("unknown_village", "hub_mismatch", "unknown_container_type",
                "return_exceeds_issued", "future_timestamp", "outside_dedupe_horizon",
                "unknown_pickup", "malformed_json", "missing_field", "invalid_value")


def scaled_network(villages: int, path: Path) -> tuple[object, int]:
    base = json.loads(SAMPLE_NETWORK_PATH.read_text("utf-8"))
    hubs = max(1, round(villages * 20 / 390))
    base["hubs"] = [
        {"hub_id": f"T{h:04d}", "name": f"Township {h}", "lat": 28 + h / 1000,
         "lon": 119 + h / 1000}
        for h in range(hubs)
    ]
    base["villages"] = [
        {"village_id": f"T{v % hubs:04d}-V{v:05d}", "hub_id": f"T{v % hubs:04d}",
         "name": f"Village {v}", "lat": 28 + v / 10000, "lon": 119 + v / 10000}
        for v in range(villages)
    ]
    path.write_text(json.dumps(base), "utf-8")
    return load_network(path), hubs


def synth_state(network: object, now: int, rng: random.Random) -> list[VillageState]:
    tz = network.timezone  # type: ignore[attr-defined]
    today = datetime.fromtimestamp(now / 1e6, UTC).astimezone(tz).date()
    out = []
    for vid, village in network.villages.items():  # type: ignore[attr-defined]
        s = VillageState(vid, village.hub_id, applied=rng.randint(100, 5000),
                         duplicates=rng.randint(0, 50))
        for m in MATERIALS:
            s.generated[m] = rng.randint(10_000, 900_000)
            s.recovered[m] = rng.randint(0, s.generated[m])
        for d in range(32):
            day = (today - timedelta(days=d)).isoformat()
            s.days[day] = [{m: rng.randint(1, 9000) for m in MATERIALS},
                           {m: rng.randint(0, 9000) for m in MATERIALS}]
        s.pickups_requested = 9
        s.pickup_reasons = {"outstanding_grams": 4, "material_grams": 3, "max_age_hours": 2}
        s.pickups_collected, s.pickups_overdue = 7, 2
        s.open_pickup = OpenPickup(f"P-{vid}-9", now - DAY_US, ["outstanding_grams"])
        for ct in (c.value for c in ContainerType):
            pool = ContainerPool()
            for k in range(20):
                pool.issue(now - k * DAY_US, 2)
            pool.returned, pool.damaged, pool.lost = 15, 2, 1
            s.containers[ct] = pool
        s.dead_reasons = {r: 1 for r in DEAD_REASONS}
        s.dead_lettered = len(DEAD_REASONS)
        out.append(s)
    return out


class SynthSource:
    def __init__(self, states: list[VillageState], now: int) -> None:
        self.states = [(s, now) for s in states]
        self.vids = [s.village_id for s in states]
        self.marks = [PartitionMarker(p, offset=10_000, stream_time=now) for p in range(PARTITIONS)]

    def villages(self) -> list[tuple[VillageState, int | None]]:
        return self.states

    def markers(self) -> list[PartitionMarker]:
        return self.marks

    def reference_villages(self) -> list[str]:
        return self.vids

    def lag(self) -> dict[tuple[str, int], int]:
        return {("hub-events", p): 0 for p in range(PARTITIONS)}

    def assigned(self) -> dict[str, int]:
        return {"hub-events": PARTITIONS}


def measure(network: object, source: SynthSource, village_label: bool, repeat: int) -> dict:
    hist = BatchHistogram()
    hist.observe(0.004, 1000)
    reg = CollectorRegistry(auto_describe=False)
    reg.register(PackloopCollector(network, source, village_label, hist))
    times = []
    body = b""
    for _ in range(repeat):
        t0 = time.perf_counter()
        body = generate_latest(reg)
        times.append(time.perf_counter() - t0)
    series = sum(len(f.samples) for f in text_string_to_metric_families(body.decode()))
    return {"bytes": len(body), "series": series, "median_s": statistics.median(times),
            "min_s": min(times)}


def loop_stall(network: object, source: SynthSource, village_label: bool) -> dict:
    """The longest the event loop waits during one scrape: the worker's page
    (:func:`streams.metrics.scrape`: state read in slices, text rendered in a thread)
    against rendering inside the handler as Faust's stock page does."""
    collector = PackloopCollector(network, source, village_label, BatchHistogram())
    empty = CollectorRegistry(auto_describe=False)
    whole = CollectorRegistry(auto_describe=False)
    whole.register(collector)

    async def inline() -> bytes:
        return generate_latest(whole)

    async def measured(make) -> tuple[float, float]:
        worst = 0.0
        done = False

        async def ticker() -> None:
            nonlocal worst
            last = time.perf_counter()
            while not done:
                await asyncio.sleep(0.001)
                now = time.perf_counter()
                worst = max(worst, now - last)
                last = now

        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.01)
        t0 = time.perf_counter()
        await make()
        took = time.perf_counter() - t0
        done = True
        await task
        return worst, took

    stock = asyncio.run(measured(inline))
    sliced = asyncio.run(measured(lambda: scrape(empty, collector)))
    return {"stock": stock, "sliced": sliced}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--villages", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    disable_created_metrics()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        network, hubs = scaled_network(args.villages, Path(tmp) / "net.json")
    now = to_us(datetime(2026, 11, 15, 4, tzinfo=UTC))
    source = SynthSource(synth_state(network, now, rng), now)
    print(f"{args.villages} villages, {hubs} townships, one worker owning {PARTITIONS} "
          f"partitions, {args.repeat} renders each")
    print("| mode | series | per 1,000 villages | scrape bytes | render median (min) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for vl in (True, False):
        r = measure(network, source, vl, args.repeat)
        print(f"| {'village label' if vl else 'township'} | {r['series']:,} | "
              f"{r['series'] * 1000 / args.villages:,.0f} | "
              f"{r['bytes']:,} ({r['bytes'] / 1e6:.1f} MB) | "
              f"{r['median_s'] * 1000:.0f} ms ({r['min_s'] * 1000:.0f} ms) |")
    print()
    print("Event-loop stall during one scrape (longest gap between 1 ms ticks of a task on")
    print("the worker's loop), the worker's page against rendering inside the handler:")
    print("| mode | stock: scrape / longest stall | packloop: scrape / longest stall | "
          "stall ratio |")
    print("| --- | ---: | ---: | ---: |")
    for vl in (True, False):
        st = loop_stall(network, source, vl)
        (s_worst, s_took), (p_worst, p_took) = st["stock"], st["sliced"]
        print(f"| {'village label' if vl else 'township'} | {s_took * 1000:.0f} ms / "
              f"{s_worst * 1000:.0f} ms | {p_took * 1000:.0f} ms / {p_worst * 1000:.0f} ms | "
              f"{p_worst / s_worst:.3f} |")


if __name__ == "__main__":
    main()
