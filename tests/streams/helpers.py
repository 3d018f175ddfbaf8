"""Helpers shared by the stream tests (never imported from a ``test_*.py`` module).

:class:`Harness` runs real partition processors over in-memory logs and keeps a
changelog the way Kafka would, so crashes and short recoveries can be simulated
without a broker. :class:`MonthModel` extends the independent reference model
(:mod:`tests.streams.reference`) with the officer's monthly figures. ``SHIPMENT``,
``RETURN`` and ``COLLECTED`` are the event contract's own examples.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streams.events import decode_hub_event
from streams.network import Network, load_network
from streams.processor import PartitionProcessor, ProcessingConfig, murmur2_partition
from streams.state import (
    PartitionMarker,
    decode_value,
    encode_value,
    event_digest,
    id_hash,
    marker_key,
)
from streams.views import local_status
from tests.streams.reference import Model, generate, parse_ts

#: a wall clock far in the future: no generated event is "from the future"
WALL = 4_000_000_000 * 1_000_000
SAMPLE = load_network()

SHIPMENT = {
    "type": "shipment", "schema_version": 1, "event_id": "0b9e6c1e-5f4e-4b8e-9a63-2f1c0d7e9a11",
    "occurred_at": "2026-11-11T08:30:00Z", "hub_id": "H01", "village_id": "H01-V007",
    "shipment_id": "S-000123", "direction": "down", "temperature_class": "chilled",
    "weight_grams": 2300,
    "packaging": [{"material": "cardboard", "count": 1, "grams": 200},
                  {"material": "ice_pack", "count": 2, "grams": 500}],
    "containers": [{"container_type": "insulated_box", "container_id": "IB-0042"}],
}
RETURN = {"type": "packaging_return", "schema_version": 1, "event_id": "r-1",
          "occurred_at": "2026-11-11T09:00:00Z", "hub_id": "H01", "village_id": "H01-V007",
          "container_type": "insulated_box", "count": 2, "condition": "ok"}
COLLECTED = {"type": "recycling_collected", "schema_version": 1, "event_id": "c-1",
             "occurred_at": "2026-11-11T10:00:00Z", "hub_id": "H01", "village_id": "H01-V007",
             "collected_grams": {"cardboard": 12000, "eps_foam": 800}, "pickup_id": "P-H01-V007-3"}


def digest_of(raw: bytes) -> int:
    """What a village's dedupe set stores once the event ``raw`` is applied."""
    event, content = decode_hub_event(raw)
    return event_digest(id_hash(event.event_id), content)


class Harness:
    """Feeds records to processors in batches, keeps the changelog like Kafka would."""

    def __init__(
        self,
        partitions: int = 1,
        network: Network = SAMPLE,
        config: ProcessingConfig | None = None,
    ) -> None:
        self.partitions = partitions
        self.network = network
        self.config = config or ProcessingConfig(partitions=partitions)
        #: per partition: (key, encoded value or None for a tombstone), in write order
        self.changelog: dict[int, list[tuple[str, bytes | None]]] = {
            p: [] for p in range(partitions)
        }
        self.published: list[bytes] = []
        self.dead: list[dict] = []
        self.logs: dict[int, list[tuple[bytes, bytes]]] = {p: [] for p in range(partitions)}
        self.procs: dict[int, PartitionProcessor] = {}
        self.pos: dict[int, int] = {}

    def produce(self, raw: bytes, key: str | None = None, partition: int | None = None) -> None:
        k = (key or orjson.loads(raw)["village_id"]).encode()
        p = murmur2_partition(k, self.partitions) if partition is None else partition
        self.logs[p].append((k, raw))

    def recover(self, p: int, cut: int | None = None) -> None:
        """Rebuild partition p's processor from its changelog (the first ``cut`` writes
        only: a short recovery), as a worker does after a rebalance or a crash."""
        log = self.changelog[p] if cut is None else self.changelog[p][:cut]
        table: dict[str, Any] = {}
        for key, value in log:
            if value is None:
                table.pop(key, None)
            else:
                table[key] = decode_value(value)
        marker = table.get(marker_key(p))
        proc = PartitionProcessor.from_table(p, self.network, self.config, table.items())
        assert not proc.missing_segments, proc.missing_segments
        self.procs[p] = proc
        self.pos[p] = (marker.offset + 1) if isinstance(marker, PartitionMarker) else 0
        if cut is not None:
            self.changelog[p] = list(log)

    def run(
        self,
        p: int,
        batch: int,
        stop_after_batches: int | None = None,
        land: float = 1.0,
    ) -> bool:
        """Process partition p to its end; optionally crash after some batches, with only
        a fraction ``land`` of the last batch's changelog writes landing."""
        if p not in self.procs:
            self.recover(p)
        proc = self.procs[p]
        done = 0
        while self.pos[p] < len(self.logs[p]):
            start = self.pos[p]
            chunk = self.logs[p][start : start + batch]
            for i, (k, v) in enumerate(chunk):
                proc.process(start + i, k, v, WALL)
            self.pos[p] = start + len(chunk)
            for _vid, body in proc.outbox.pickups:
                self.published.append(body)
            for _vid, body in proc.outbox.dead_letters:
                self.dead.append(orjson.loads(body))
            for part, key, value in proc.outbox.reroutes:
                self.logs[part].append((key, value))
            proc.outbox.clear()
            writes = [
                (k, None if v is None else encode_value(v)) for k, v in proc.checkpoint()
            ]
            done += 1
            if stop_after_batches is not None and done >= stop_after_batches:
                n = int(len(writes) * land)
                self.changelog[p].extend(writes[:n])
                del self.procs[p]
                return False
            self.changelog[p].extend(writes)
        return True

    def status(self) -> dict:
        """``/local/status`` over every processor (what one worker owning all would say)."""
        villages = []
        markers = []
        for _p, proc in self.procs.items():
            villages += [(s, proc.stream_time) for s in proc.villages.values()]
            markers.append(proc.marker)
        return local_status(villages, markers,
                            int(self.network.container_overdue_days * 86400e6))


def local_month(at: datetime, network: Network = SAMPLE) -> str:
    return at.astimezone(network.timezone).strftime("%Y-%m")


class MonthModel(Model):
    """The reference model, recording applied events and pickup transitions by month."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.applied_events: list[dict] = []
        #: (village, month) -> [requested, completed, overdue]
        self.pickups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
        #: (village, month) -> pickups cancelled
        self.cancelled: dict[tuple[str, str], int] = defaultdict(int)
        self.sla = timedelta(hours=self.net.pickup_sla_hours)

    def _tick(self, vid: str, v: Any, now: datetime, trig: datetime) -> None:
        n, overdue = v.n, v.overdue_count
        opened = v.opened_at
        super()._tick(vid, v, now, trig)
        if v.n > n:
            self.pickups[(vid, local_month(trig, self.net))][0] += 1
        if v.overdue_count > overdue:
            self.pickups[(vid, local_month(opened + self.sla, self.net))][2] += 1

    def feed(self, e: dict) -> None:
        v = self.v.get(e["village_id"])
        was_open = v.open if v is not None else None
        applied = self.applied
        super().feed(e)
        if self.applied > applied:
            self.applied_events.append(e)
            closes = was_open is not None and e.get("pickup_id") == was_open
            month = local_month(parse_ts(e["occurred_at"]), self.net)
            # a collection naming no pickup that emptied the village served it too
            after = self.v.get(e["village_id"])
            served = was_open is not None and after is not None and after.open != was_open \
                and not e.get("pickup_id")
            if (closes or served) and e["type"] == "recycling_collected":
                self.pickups[(e["village_id"], month)][1] += 1
            elif closes and e["type"] == "pickup_cancelled":
                self.cancelled[(e["village_id"], month)] += 1


def expected_months(m: MonthModel) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (village, local month): generated, recovered, containers, pickups (``pk``:
    requested, completed, overdue) and ``cancelled``, computed from the events the model
    applied."""
    net = m.net
    units = {ct.value: (s.material.value, s.unit_grams) for ct, s in net.container_types.items()}
    out: dict[tuple[str, str], dict[str, Any]] = {}

    def row(vid: str, month: str) -> dict[str, Any]:
        return out.setdefault((vid, month), {
            "gen": defaultdict(int), "rec": defaultdict(int),
            "cont": defaultdict(lambda: [0, 0, 0, 0]),
        })

    for e in m.applied_events:
        r = row(e["village_id"], local_month(parse_ts(e["occurred_at"]), net))
        t = e["type"]
        if t == "shipment":
            if e["direction"] == "down":
                for item in e["packaging"]:
                    r["gen"][item["material"]] += item["grams"]
            for c in e.get("containers", []):  # up: crates carrying produce
                r["cont"][c["container_type"]][0] += 1
        elif t == "packaging_return":
            c = r["cont"][e["container_type"]]
            if e["condition"] == "lost":
                c[3] += e["count"]
            else:
                c[1] += e["count"]
                if e["condition"] == "damaged":
                    c[2] += e["count"]
            if e["condition"] != "ok":
                mat, unit = units[e["container_type"]]
                r["gen"][mat] += e["count"] * unit
                if e["condition"] == "damaged":  # back at the hub: recovered at once
                    r["rec"][mat] += e["count"] * unit
        elif t == "recycling_collected":
            for mat, g in e["collected_grams"].items():
                r["rec"][mat] += g
        elif t == "waste_adjustment":
            for mat, g in e.get("generated_grams", {}).items():
                r["gen"][mat] += g
            for mat, g in e.get("recovered_grams", {}).items():
                r["rec"][mat] += g
    for (vid, month), pk in m.pickups.items():
        out.setdefault((vid, month), {"gen": {}, "rec": {}, "cont": {}})["pk"] = pk
    for (vid, month), n in m.cancelled.items():
        out.setdefault((vid, month), {"gen": {}, "rec": {}, "cont": {}})["cancelled"] = n
    return out


@dataclass
class Backlog:
    """A hub offline for ``days`` days, then uploading what it recorded (see
    :func:`backlog_scenario`): send ``live``, then ``upload`` (the backlog with re-sends of
    part of it mixed in), in that order."""

    hub_id: str
    live: list[dict]
    backlog: list[dict]
    resends: list[dict]
    upload: list[dict]

    @property
    def sent(self) -> list[dict]:
        return self.live + self.upload


def backlog_scenario(
    network: Network = SAMPLE,
    hub_id: str = "H03",
    other_villages: int = 30,
    days: int = 30,
    events: int = 6000,
    seed: int = 5,
    resend_share: float = 0.3,
) -> Backlog:
    """Events over ``days + 6`` days from one hub's villages and ``other_villages`` others;
    the hub's events of days 3 to ``3 + days`` are held back (its connection was down)
    while the others' flow live and move stream time on to the end. Then the hub uploads
    its backlog in time order, re-sending ``resend_share`` of it: half of the re-sends in
    the middle of the upload (a retry after a timeout), half at the end."""
    rng = random.Random(seed)
    hub_villages = sorted(v for v, vil in network.villages.items() if vil.hub_id == hub_id)
    others = rng.sample(
        sorted(v for v, vil in network.villages.items() if vil.hub_id != hub_id), other_villages
    )
    start = datetime(2026, 9, 20, tzinfo=UTC)
    everything = generate(network, events, seed=seed, start=start, span_hours=24 * (days + 6),
                          bad_share=0.0, village_ids=hub_villages + others)
    lo, hi = start + timedelta(days=3), start + timedelta(days=3 + days)

    def held_back(e: dict) -> bool:
        return e["hub_id"] == hub_id and lo <= parse_ts(e["occurred_at"]) < hi

    backlog = [e for e in everything if held_back(e)]
    live = [e for e in everything if not held_back(e)]
    resends = rng.sample(backlog, int(len(backlog) * resend_share))
    half = len(resends) // 2
    mid = len(backlog) // 2
    upload = backlog[:mid] + resends[:half] + backlog[mid:] + resends[half:]
    return Backlog(hub_id, live, backlog, resends, upload)


def quiet_stock(m: MonthModel, want: dict[tuple[str, str], dict[str, Any]]
                ) -> dict[tuple[str, str], dict[str, int]]:
    """Per (village, month) without an event of its own: the grams it still held at the
    month's start, where the stream has reached the month (an applied event of it or later,
    any village: the ledger's rule, `services.ledger.Ledger.month`) and the village has an
    earlier month (`streams.months.start_of_figures`), computed from the applied events."""
    months = sorted({mo for _v, mo in want})
    reached = months[-1] if months else ""
    out: dict[tuple[str, str], dict[str, int]] = {}
    for vid in sorted({v for v, _mo in want}):
        for month in months:
            earlier = [x for (v, mo), x in want.items() if v == vid and mo < month]
            if (vid, month) in want or not earlier or month > reached:
                continue
            held: dict[str, int] = defaultdict(int)
            for x in earlier:
                for mat, g in x["gen"].items():
                    held[mat] += g
                for mat, g in x["rec"].items():
                    held[mat] -= g
            stock = {mat: g for mat, g in held.items() if g > 0}
            if stock:
                out[(vid, month)] = stock
    return out
