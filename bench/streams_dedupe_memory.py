"""Memory and changelog bytes per village of the dedupe state, 14 vs 92 days of horizon.

The rate is the sample county's: one event per parcel (``down_parcels_per_day`` +
``up_parcels_per_day`` of each village in the network file) plus 5 % for returns,
collections and corrections; the mean and the busiest village are shown. A village
receives that many events a day, evenly, for the horizon plus two days, with the
worker's sealing and pruning at every day's end (what a checkpoint does), so the set
holds a full horizon when measured.

Figures: memory of the village's dedupe state as the worker holds it (the open part,
the sealed arrays and the sealed records in the table, measured with tracemalloc), the
bytes of the village value's dedupe part written with every change of the village,
and, for comparison, the layout before segments were sealed (every id in a dict, in
per-day lists and in the value's text) and a plain ``set`` of the 63-bit hashes.

    .venv/bin/python bench/streams_dedupe_memory.py
"""

from __future__ import annotations

import argparse
import base64
import gc
import random
import statistics
import tracemalloc
from collections.abc import Callable
from typing import Any

import orjson

from streams import DAY_US, AcceptanceLimits, SeenSet, id_hash, load_network

OTHER_EVENTS = 1.05  # returns, collections and corrections on top of parcels


def measured(build: Callable[[], Any]) -> tuple[Any, int]:
    """What ``build`` returns and the bytes it still holds."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    value = build()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return value, after - before


def village_ids(per_day: int, days: int, seed: int) -> list[list[int]]:
    rng = random.Random(seed)
    return [[id_hash(f"{rng.getrandbits(128):032x}") for _ in range(per_day)]
            for _ in range(days)]


def packloop_layout(days_of_ids: list[list[int]], horizon_days: float) -> dict[str, Any]:
    """The worker's layout: fed day by day, sealed and pruned at each day's end."""
    horizon_us = int(horizon_days * DAY_US)
    records: dict[int, bytes] = {}  # the sealed records the table holds
    value_bytes = [0]

    def build() -> SeenSet:
        seen = SeenSet()
        for day, ids in enumerate(days_of_ids):
            now = day * DAY_US + DAY_US // 2
            for h in ids:
                seen.add(h, now)
            part = {"seen": seen.pack(), "sealed_days": sorted(seen.sealed_days)}
            value_bytes[0] = max(value_bytes[0], len(orjson.dumps(part)))
            end = (day + 1) * DAY_US
            for gone in seen.prune(end - horizon_us):
                records.pop(gone, None)
            for d, blob in seen.seal(end // DAY_US):
                records[d] = blob
        return seen

    seen, nbytes = measured(build)
    return {"ids": len(seen), "memory": nbytes, "value_bytes": value_bytes[0]}


def old_layout(kept: list[list[int]]) -> dict[str, Any]:
    """Before sealing: a dict id -> day, per-day lists and the value's text, all ids."""

    def build() -> tuple[dict[int, int], dict[int, list[int]], dict[str, str]]:
        by_id: dict[int, int] = {}
        by_day: dict[int, list[int]] = {}
        for day, ids in enumerate(kept):
            by_day[day] = list(ids)
            for h in ids:
                by_id[h] = day
        text = {str(d): base64.b64encode(b"".join(h.to_bytes(8, "big") for h in ids)).decode()
                for d, ids in by_day.items()}
        return by_id, by_day, text

    (_by_id, _by_day, text), nbytes = measured(build)
    return {"memory": nbytes, "value_bytes": len(orjson.dumps(text))}


def plain_set(kept: list[list[int]]) -> int:
    return measured(lambda: {h for ids in kept for h in ids})[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--network", default=None, help="network file (default: sample county)")
    args = ap.parse_args()
    net = load_network(args.network)
    rates = [
        round((v.extra.get("down_parcels_per_day", 0) + v.extra.get("up_parcels_per_day", 0))
              * OTHER_EVENTS)
        for v in net.villages.values()
    ]
    villages = {"mean village": round(statistics.mean(rates)), "busiest village": max(rates)}
    horizons = {"14 days (before)": 14.0,
                "92 days (90 + margin)": AcceptanceLimits().dedupe_horizon_us / DAY_US}
    print(f"network {net.county}: {len(rates)} villages, events/day per village mean "
          f"{statistics.mean(rates):.0f}, max {max(rates)} (parcels x {OTHER_EVENTS})")
    print()
    head = (f"{'village':16} {'horizon':22} {'ids':>7} {'memory':>9} {'B/id':>5} "
            f"{'value':>8} {'old mem':>9} {'old value':>10} {'set':>9}")
    print(head)
    print("-" * len(head))
    county: dict[str, float] = {}
    for vname, per_day in villages.items():
        for hname, horizon in horizons.items():
            days = int(horizon) + 2
            all_days = village_ids(per_day, days, seed=per_day)
            ours = packloop_layout(all_days, horizon)
            kept = all_days[-(int(horizon) + 1):]
            old = old_layout(kept)
            if vname == "mean village":
                county[hname] = ours["memory"] * len(rates)
            print(f"{vname:16} {hname:22} {ours['ids']:>7,} {ours['memory'] / 1e3:>7.0f}kB "
                  f"{ours['memory'] / max(ours['ids'], 1):>5.1f} "
                  f"{ours['value_bytes'] / 1e3:>6.1f}kB {old['memory'] / 1e3:>7.0f}kB "
                  f"{old['value_bytes'] / 1e3:>8.1f}kB {plain_set(kept) / 1e3:>7.0f}kB")
    print()
    for hname, nbytes in county.items():
        print(f"county ({len(rates)} villages), {hname}: about {nbytes / 1e6:.0f} MB")
    print()
    print("memory: the village's dedupe state as the worker holds it (open part, sealed "
          "arrays, sealed records);")
    print("value: the most its dedupe part of the village value (written with every change "
          "of the village) reached;")
    print("old: the layout before sealing, every id in the value;")
    print("set: a plain Python set of the same 63-bit hashes.")


if __name__ == "__main__":
    main()
