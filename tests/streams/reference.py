"""An independent, deliberately plain model of the definitions in docs/streams.md, and a generator
of realistic hub-event files. Tests compute expected figures with this, never by
reading packloop's own state back.
"""

from __future__ import annotations

import bisect
import functools
import json
import random
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka.partitioner import murmur2

SLA_H = 72
#: how far behind stream time the worker dedupes: the 90-day backlog a hub may send,
#: plus 2 days of delivery margin and the 1-hour future tolerance (docs/streams.md)
HORIZON = timedelta(days=90 + 2, hours=1)
MATERIALS_DOWN = ["cardboard", "paper_fill", "plastic_film", "tape"]


@functools.cache
def partition_of(village_id: str, partitions: int) -> int:
    return (murmur2(village_id.encode()) & 0x7FFFFFFF) % partitions


def ts(dt: datetime) -> str:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@dataclass
class V:
    hub: str
    gen: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    rec: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    #: outstanding grams by material as [hour generated, grams], collected oldest first
    lots: dict[str, list[list]] = field(default_factory=lambda: defaultdict(list))
    n: int = 0
    open: str | None = None
    opened_at: datetime | None = None
    overdue_sent: bool = False
    overdue_count: int = 0
    cancelled: int = 0
    #: a cancel holding back the next request: its time, its hours (None: the network's)
    snooze_from: datetime | None = None
    snooze_hours: float | None = None
    snooze_new: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    cont: dict[str, dict[str, int]] = field(default_factory=dict)
    fifo: dict[str, list[datetime]] = field(default_factory=lambda: defaultdict(list))
    seen: dict[str, datetime] = field(default_factory=dict)
    #: each applied event as sent (sorted-key JSON): a re-send repeats it
    content: dict[str, str] = field(default_factory=dict)
    #: generated and recovered grams by (local month, material): the officer's months
    mgen: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))
    mrec: dict[tuple[str, str], int] = field(default_factory=lambda: defaultdict(int))

    def outstanding(self) -> dict[str, int]:
        return {
            m: g - self.rec.get(m, 0) for m, g in self.gen.items() if g - self.rec.get(m, 0) > 0
        }

    def oldest(self) -> datetime | None:
        """When the oldest uncollected gram was generated (to the hour)."""
        times = [t for lots in self.lots.values() for t, g in lots if g > 0]
        return min(times) if times else None

    def change(self, m: str, grams: int, at: datetime, generated: bool) -> None:
        """Generated (or recovered) grams of a material, and its dated lots: a gain is a
        lot of the hour, a collection takes the oldest, a correction the newest."""
        before = max(0, self.gen[m] - self.rec[m])
        (self.gen if generated else self.rec)[m] += grams
        after = max(0, self.gen[m] - self.rec[m])
        lots = self.lots[m]
        if after > before:
            lots.append([at.replace(minute=0, second=0, microsecond=0), after - before])
            lots.sort(key=lambda lot: lot[0])
        take = before - after
        for lot in reversed(lots) if generated else list(lots):
            if take <= 0:
                break
            used = min(take, lot[1])
            lot[1] -= used
            take -= used
        self.lots[m] = [lot for lot in lots if lot[1] > 0]
        if generated and self.snooze_from is not None and at > self.snooze_from:
            self.snooze_new[m] += grams


class Model:
    """Processes hub events in the order of each partition; same rules as docs/streams.md."""

    def __init__(
        self,
        network: Any,
        partitions: int = 1,
        ticks: bool = True,
        horizon: timedelta = HORIZON,
    ) -> None:
        self.net = network
        self.ticks = ticks
        self.horizon = horizon
        self.partitions = partitions
        self.v: dict[str, V] = {}
        self.st: dict[int, datetime] = {}
        self.applied = 0
        self.duplicates = 0
        self.dead: list[tuple[str, dict]] = []
        self.requested: list[str] = []
        self.overdue: list[str] = []
        #: the villages seen so far on each partition, in id order: the ones a new stream
        #: time reaches (kept here because sorting and hashing every village per event made
        #: a 20,000-event file take 9 s)
        self.by_partition: dict[int, list[str]] = defaultdict(list)
        #: each village's thresholds as _reasons reads them, worked out once
        self.limits: dict[str, tuple[int, list[tuple[str, int]], timedelta]] = {}
        self.units = {
            ct.value: (spec.material.value, spec.unit_grams)
            for ct, spec in network.container_types.items()
        }

    def month_of(self, at: datetime) -> str:
        """The local month of `at`, as the worker's month buckets are keyed."""
        return at.astimezone(self.net.timezone).strftime("%Y-%m")

    def _village(self, vid: str) -> V:
        if vid not in self.v:
            self.v[vid] = V(self.net.villages[vid].hub_id)
            bisect.insort(self.by_partition[partition_of(vid, self.partitions)], vid)
        return self.v[vid]

    def _limits(self, vid: str) -> tuple[int, list[tuple[str, int]], timedelta]:
        if vid not in self.limits:
            th = self.net.villages[vid].thresholds
            self.limits[vid] = (th.outstanding_grams,
                                sorted((k.value, x) for k, x in th.material_grams.items()),
                                timedelta(hours=th.max_age_hours))
        return self.limits[vid]

    def _reasons(self, vid: str, v: V, now: datetime) -> list[str]:
        total, materials, max_age = self._limits(vid)
        out = v.outstanding()
        r = []
        if sum(out.values()) >= total:
            r.append("outstanding_grams")
        for m, lim in materials:
            if out.get(m, 0) >= lim:
                r.append(f"material_grams:{m}")
        oldest = v.oldest()
        if oldest is not None and now - oldest >= max_age:
            r.append("max_age_hours")
        return r

    def _snoozed(self, vid: str, v: V, now: datetime) -> bool:
        """A cancel holds requests back until its hours pass or new waste alone reaches a
        weight threshold; once it no longer holds, it is forgotten."""
        if v.snooze_from is None:
            return False
        hours = self.net.pickup_snooze_hours if v.snooze_hours is None else v.snooze_hours
        th = self.net.villages[vid].thresholds
        new = v.snooze_new
        holds = (
            now < v.snooze_from + timedelta(hours=hours)
            and sum(new.values()) < th.outstanding_grams
            and all(new.get(m.value, 0) < lim for m, lim in th.material_grams.items())
        )
        if not holds:
            v.snooze_from, v.snooze_hours, v.snooze_new = None, None, defaultdict(int)
        return holds

    def _tick(self, vid: str, v: V, now: datetime, trig: datetime) -> None:
        if v.open is not None:
            if not v.overdue_sent and now - v.opened_at > timedelta(hours=SLA_H):
                v.overdue_sent = True
                v.overdue_count += 1
                self.overdue.append(v.open)
            return
        if self._snoozed(vid, v, now):
            return
        if self._reasons(vid, v, now):
            v.n += 1
            v.open = f"P-{vid}-{v.n}"
            v.opened_at = trig
            v.overdue_sent = False
            self.requested.append(v.open)

    def feed(self, e: dict) -> None:
        vid = e["village_id"]
        p = partition_of(vid, self.partitions)
        if vid not in self.net.villages:
            self.dead.append(("unknown_village", e))
            return
        if self.net.villages[vid].hub_id != e["hub_id"]:
            self.dead.append(("hub_mismatch", e))
            return
        v = self._village(vid)
        at = parse_ts(e["occurred_at"])
        st = self.st.get(p)
        if st is not None and at < st - self.horizon:
            self.dead.append(("outside_dedupe_horizon", e))
            return
        if e["event_id"] in v.seen:
            if v.content[e["event_id"]] != json.dumps(e, sort_keys=True):
                self.dead.append(("event_id_conflict", e))
                return
            self.duplicates += 1
            return
        t = e["type"]
        if t == "packaging_return":
            c = v.cont.get(e["container_type"], {"issued": 0, "returned": 0, "lost": 0})
            if e["count"] > c["issued"] - c["returned"] - c["lost"]:
                self.dead.append(("return_exceeds_issued", e))
                return
        month = self.month_of(at)
        if t == "waste_adjustment" and any(
                tally.get(m, 0) + g < 0 or months.get((month, m), 0) + g < 0
                for tally, months, key in ((v.gen, v.mgen, "generated_grams"),
                                           (v.rec, v.mrec, "recovered_grams"))
                for m, g in e.get(key, {}).items()):
            self.dead.append(("adjustment_below_zero", e))
            return
        gen0, rec0 = dict(v.gen), dict(v.rec)
        if t == "pickup_cancelled":
            pid = e["pickup_id"]
            pre = f"P-{vid}-"
            if not (
                pid.startswith(pre)
                and pid[len(pre) :].isdigit()
                and 1 <= int(pid[len(pre) :]) <= v.n
            ):
                self.dead.append(("unknown_pickup", e))
                return
        if t == "shipment":
            if e["direction"] == "down":
                for item in e["packaging"]:
                    v.change(item["material"], item["grams"], at, True)
            for c in e.get("containers", []):  # up: crates carrying produce
                cc = v.cont.setdefault(
                    c["container_type"], {"issued": 0, "returned": 0, "lost": 0, "damaged": 0}
                )
                cc["issued"] += 1
                v.fifo[c["container_type"]].append(at)
        elif t == "packaging_return":
            cc = v.cont[e["container_type"]]
            n = e["count"]
            if e["condition"] == "lost":
                cc["lost"] += n
            else:
                cc["returned"] += n
                if e["condition"] == "damaged":
                    cc["damaged"] += n
            if e["condition"] == "lost":  # waste that waits at the village
                m, unit = self.units[e["container_type"]]
                v.change(m, n * unit, at, True)
            elif e["condition"] == "damaged":  # waste, but back at the hub: recovered too
                m, unit = self.units[e["container_type"]]
                v.gen[m] += n * unit
                v.rec[m] += n * unit
            q = sorted(v.fifo[e["container_type"]])
            v.fifo[e["container_type"]] = q[n:]
        elif t == "recycling_collected":
            for m, g in e["collected_grams"].items():
                v.change(m, g, at, False)
            if v.open and (e.get("pickup_id") == v.open or (
                    not e.get("pickup_id") and not any(v.outstanding().values()))):
                v.open = None
        elif t == "waste_adjustment":
            for m, g in e.get("generated_grams", {}).items():
                v.change(m, g, at, True)
            for m, g in e.get("recovered_grams", {}).items():
                v.change(m, g, at, False)
        elif t == "pickup_cancelled":
            if e["pickup_id"] == v.open:
                v.open = None
                v.cancelled += 1
                v.snooze_from, v.snooze_hours = at, e.get("snooze_hours")
                v.snooze_new = defaultdict(int)
        for m in set(v.gen) | set(gen0):
            v.mgen[(month, m)] += v.gen.get(m, 0) - gen0.get(m, 0)
        for m in set(v.rec) | set(rec0):
            v.mrec[(month, m)] += v.rec.get(m, 0) - rec0.get(m, 0)
        v.seen[e["event_id"]] = at
        v.content[e["event_id"]] = json.dumps(e, sort_keys=True)
        self.applied += 1
        now = max(st, at) if st is not None else at
        self.st[p] = now
        self._tick(vid, v, now, now)
        # other villages of the partition react to the new stream time
        for other in self.by_partition[p] if self.ticks else ():
            if other != vid:
                self._tick(other, self.v[other], now, now)

    # ---- expected figures in the status-contract shape ----

    def villages(self) -> dict[str, dict]:
        out = {}
        for vid, v in self.v.items():
            if not v.seen:
                continue
            gen = {m: g for m, g in v.gen.items() if g}
            rec = {m: g for m, g in v.rec.items() if g}
            out[vid] = {
                "generated_grams": gen,
                "recovered_grams": rec,
                "outstanding_grams": v.outstanding(),
                "over_collected_grams": {
                    m: r - v.gen.get(m, 0) for m, r in v.rec.items() if r - v.gen.get(m, 0) > 0
                },
                "open_pickup": v.open,
                "containers_out": {
                    ct: c["issued"] - c["returned"] - c["lost"] for ct, c in sorted(v.cont.items())
                    if c["issued"] - c["returned"] - c["lost"] > 0},
            }
        return out

    def hubs(self) -> dict[str, dict]:
        hubs: dict[str, dict] = {}
        days = self.net.container_overdue_days
        for vid, v in self.v.items():
            now = self.st.get(partition_of(vid, self.partitions))
            for ct, c in v.cont.items():
                h = hubs.setdefault(v.hub, {"containers": {}}).setdefault("containers", {})
                f = h.setdefault(
                    ct,
                    dict.fromkeys(
                        ("issued", "returned", "in_circulation", "damaged", "lost", "overdue"), 0
                    ),
                )
                f["issued"] += c["issued"]
                f["returned"] += c["returned"]
                f["lost"] += c["lost"]
                f["damaged"] += c.get("damaged", 0)
                f["in_circulation"] += c["issued"] - c["returned"] - c["lost"]
                f["overdue"] += sum(1 for t in v.fifo[ct] if now - t > timedelta(days=days))
        return hubs


class ReasonModel(Model):
    """The model, also remembering the first threshold kind of each pickup it opens.

    The exporter and Prometheus both count pickups by that kind (``reason``), so their
    tests need it from the model, not from packloop.
    """

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.first_kind: dict[str, str] = {}
        #: the material of the pickups whose first reason is a material's own limit
        self.first_material: dict[str, str] = {}

    def _tick(self, vid: str, v: Any, now: Any, trig: Any) -> None:
        reasons = self._reasons(vid, v, now) if v.open is None else []
        n = v.n
        super()._tick(vid, v, now, trig)
        if v.n > n:
            kind, _, material = reasons[0].partition(":")
            self.first_kind[v.open] = kind
            if material:
                self.first_material[v.open] = material


def generate(
    network: Any,
    n: int,
    seed: int = 7,
    start: datetime | None = None,
    span_hours: float = 24 * 10,
    villages: int | None = None,
    bad_share: float = 0.01,
    village_ids: list[str] | None = None,
) -> list[dict]:
    """A realistic event file in global time order (returns JSON-able dicts), over
    ``village_ids``, or ``villages`` of the network's drawn at random, or all of them."""
    rng = random.Random(seed)
    start = start or datetime(2026, 10, 20, tzinfo=UTC)
    vids = sorted(village_ids or network.villages)
    if villages and not village_ids:
        vids = rng.sample(vids, villages)
    model = Model(network, 1, ticks=False)  # to know open pickups, for collections
    out: list[dict] = []
    step = span_hours * 3600 / max(n, 1)
    cts = sorted(ct.value for ct in network.container_types)
    for i in range(n):
        at = start + timedelta(seconds=i * step + rng.random() * step * 0.5)
        vid = rng.choice(vids)
        hub = network.villages[vid].hub_id
        base = {
            "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            "occurred_at": ts(at),
            "hub_id": hub,
            "village_id": vid,
        }
        r = rng.random()
        v = model.v.get(vid)
        if r < bad_share:
            kind = rng.choice(["unknown_village", "hub_mismatch", "over_return"])
            if kind == "unknown_village":
                e = dict(
                    base,
                    village_id="H99-V999",
                    type="recycling_collected",
                    collected_grams={"cardboard": 100},
                )
            elif kind == "hub_mismatch":
                e = dict(
                    base,
                    hub_id="H98",
                    type="recycling_collected",
                    collected_grams={"cardboard": 100},
                )
            else:
                e = dict(
                    base, type="packaging_return", container_type=cts[0], count=999, condition="ok"
                )
        elif r < 0.62:
            temp = rng.choice(["ambient"] * 6 + ["chilled", "frozen"])
            pack = [{"material": "cardboard", "count": 1, "grams": rng.randint(150, 900)}]
            for m in ("paper_fill", "plastic_film", "tape"):
                if rng.random() < 0.5:
                    pack.append({"material": m, "count": 1, "grams": rng.randint(5, 120)})
            if temp != "ambient":
                pack.append({"material": "eps_foam", "count": 1, "grams": rng.randint(80, 400)})
                pack.append(
                    {
                        "material": "ice_pack",
                        "count": rng.randint(1, 3),
                        "grams": rng.randint(100, 600),
                    }
                )
            containers = []
            if rng.random() < 0.25:
                containers = [{"container_type": rng.choice(cts)} for _ in range(rng.randint(1, 2))]
            e = dict(
                base,
                type="shipment",
                shipment_id=f"S{i}",
                direction="down",
                temperature_class=temp,
                weight_grams=rng.randint(300, 20000),
                packaging=pack,
                containers=containers,
            )
        elif r < 0.72:
            e = dict(
                base,
                type="shipment",
                shipment_id=f"S{i}",
                direction="up",
                temperature_class="ambient",
                weight_grams=rng.randint(300, 20000),
                packaging=[{"material": "cardboard", "count": 1, "grams": rng.randint(150, 900)}],
                containers=[{"container_type": "reusable_crate"}] if rng.random() < 0.3 else [],
            )
        elif (
            r < 0.82
            and v is not None
            and any(c["issued"] - c["returned"] - c["lost"] > 0 for c in v.cont.values())
        ):
            ct, c = rng.choice(
                [
                    (k, c)
                    for k, c in sorted(v.cont.items())
                    if c["issued"] - c["returned"] - c["lost"] > 0
                ]
            )
            out_n = c["issued"] - c["returned"] - c["lost"]
            cond = rng.choices(["ok", "damaged", "lost"], [85, 10, 5])[0]
            e = dict(
                base,
                type="packaging_return",
                container_type=ct,
                count=rng.randint(1, out_n),
                condition=cond,
            )
        elif r < 0.93 and v is not None:
            outst = v.outstanding()
            grams = {m: max(1, int(g * rng.uniform(0.6, 1.1))) for m, g in outst.items()} or {
                "cardboard": rng.randint(50, 300)
            }
            e = dict(base, type="recycling_collected", collected_grams=grams)
            if v.open and rng.random() < 0.7:
                e["pickup_id"] = v.open
            elif rng.random() < 0.1:
                e["pickup_id"] = f"P-{vid}-{v.n + 5}"
        elif r < 0.96:
            e = dict(
                base,
                type="waste_adjustment",
                reason="weighbridge correction",
                corrects_event_id=str(uuid.uuid4()),
                # corrections within what the village counted (a larger one is refused:
                # adjustment_below_zero, and a re-send of it could then pass)
                generated_grams={"cardboard": rng.randint(-min(
                    50, v.gen.get("cardboard", 0) if v is not None else 0,
                    v.mgen.get((model.month_of(at), "cardboard"), 0) if v is not None else 0),
                    200)},
                recovered_grams={},
            )
        elif v is not None and v.open:
            e = dict(base, type="pickup_cancelled", pickup_id=v.open, reason="road closed")
            snooze = rng.choice([None, None, 0, 6])
            if snooze is not None:
                e["snooze_hours"] = snooze
        else:
            e = dict(
                base, type="recycling_collected", collected_grams={"paper_fill": rng.randint(1, 50)}
            )
        model.feed(e)
        out.append(e)
    return out


def to_lines(events: list[dict]) -> list[bytes]:
    return [orjson.dumps(e) for e in events]
