"""Month buckets (the officer's records) against figures computed from the input.

Events spanning three local months go through real partition processors; the expected
monthly figures are computed here from the events the independent model applied (its
own dead-letter and dedupe decisions), bucketed by the local month of each event in
Asia/Shanghai — so an event at 20:00 UTC on the last day of a month must land in the
next month. Also: retention of 24 months behind stream time, and values written before
month buckets existed still load.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from streams.months import month_rows, valid_month
from streams.network import load_network
from streams.state import (
    MONTH_BUCKETS_KEPT,
    US,
    MonthBucket,
    VillageState,
    prune,
    to_us,
)
from tests.streams.reference import Model, generate, parse_ts
from tests.streams.test_processor import Harness

NET = load_network()
TZ = NET.timezone
SLA = timedelta(hours=NET.pickup_sla_hours)


def local_month(at: datetime) -> str:
    return at.astimezone(TZ).strftime("%Y-%m")


class MonthModel(Model):
    """The reference model, recording applied events and pickup transitions by month."""

    def __init__(self, *a: Any, **kw: Any) -> None:
        super().__init__(*a, **kw)
        self.applied_events: list[dict] = []
        self.pickups: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])

    def _tick(self, vid: str, v: Any, now: datetime, trig: datetime) -> None:
        n, overdue = v.n, v.overdue_count
        opened = v.opened_at
        super()._tick(vid, v, now, trig)
        if v.n > n:
            self.pickups[(vid, local_month(trig))][0] += 1
        if v.overdue_count > overdue:
            self.pickups[(vid, local_month(opened + SLA))][2] += 1

    def feed(self, e: dict) -> None:
        v = self.v.get(e["village_id"])
        was_open = v.open if v is not None else None
        applied = self.applied
        super().feed(e)
        if self.applied > applied:
            self.applied_events.append(e)
            if (
                e["type"] == "recycling_collected"
                and was_open is not None
                and e.get("pickup_id") == was_open
            ):
                self.pickups[(e["village_id"], local_month(parse_ts(e["occurred_at"])))][1] += 1


def expected_months(m: MonthModel) -> dict[tuple[str, str], dict[str, Any]]:
    units = {ct.value: (s.material.value, s.unit_grams) for ct, s in NET.container_types.items()}
    out: dict[tuple[str, str], dict[str, Any]] = {}

    def row(vid: str, month: str) -> dict[str, Any]:
        return out.setdefault((vid, month), {
            "gen": defaultdict(int), "rec": defaultdict(int),
            "cont": defaultdict(lambda: [0, 0, 0, 0]),
        })

    for e in m.applied_events:
        r = row(e["village_id"], local_month(parse_ts(e["occurred_at"])))
        t = e["type"]
        if t == "shipment" and e["direction"] == "down":
            for item in e["packaging"]:
                r["gen"][item["material"]] += item["grams"]
            for c in e.get("containers", []):
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
    return out


def test_month_rows_match_the_input() -> None:
    # 70 days from 1 Oct 2026: October, November and the start of December (local)
    events = generate(NET, 3000, seed=3, villages=25, span_hours=24 * 70,
                      start=datetime(2026, 9, 30, 15, tzinfo=UTC))
    h = Harness(2)
    for e in events:
        h.produce(orjson.dumps(e))
    for p in range(2):
        h.run(p, batch=250)
    m = MonthModel(NET, 2)
    for e in events:
        m.feed(e)
    want = expected_months(m)
    states = [s for proc in h.procs.values() for s in proc.villages.values()]
    months = sorted({month for _v, month in want})
    assert months == ["2026-09", "2026-10", "2026-11", "2026-12"]  # 15:00 UTC 30 Sep = 23:00
    for month in months:
        got = {r["village_id"]: r for r in month_rows(states, month)}
        exp = {vid: x for (vid, mo), x in want.items() if mo == month}
        assert set(got) == set(exp), month
        for vid, x in exp.items():
            r = got[vid]
            assert r["generated_grams"] == {k: g for k, g in x["gen"].items() if g}, (vid, month)
            assert r["recovered_grams"] == {k: g for k, g in x["rec"].items() if g}, (vid, month)
            pk = x.get("pk", [0, 0, 0])
            assert [r["pickups"][k] for k in ("requested", "completed", "overdue")] == pk
            assert {ct: list(c.values()) for ct, c in r["containers"].items()} == {
                ct: c for ct, c in x["cont"].items()
            }
    total_req = sum(r["pickups"]["requested"] for mo in months for r in month_rows(states, mo))
    assert total_req == len(m.requested) > 0
    assert sum(r["pickups"]["overdue"] for mo in months for r in month_rows(states, mo)) == len(
        m.overdue) > 0


def test_months_are_kept_for_24_months_behind_stream_time() -> None:
    s = VillageState("H01-V001", "H01")
    for i in range(40):  # Jan 2024 .. Apr 2027
        y, mo = divmod(i, 12)
        s.months[f"{2024 + y:04d}-{mo + 1:02d}"] = MonthBucket(generated={"tape": i + 1})
    now = to_us(datetime(2027, 4, 15, tzinfo=UTC))
    prune(s, now, TZ, 14 * 86400 * US)
    kept = sorted(s.months)
    assert len(kept) == MONTH_BUCKETS_KEPT == 25
    assert kept[0] == "2025-04" and kept[-1] == "2027-04"


def test_old_values_without_months_still_load_and_round_trip() -> None:
    s = VillageState("H01-V001", "H01", generated={"tape": 5}, pickups_requested=2)
    s.months["2026-11"] = MonthBucket({"tape": 5}, {}, 1, 0, 0, {"reusable_crate": [1, 0, 0, 0]})
    s.pickup_reasons = {"outstanding_grams": 2}
    s.dead_reasons = {"hub_mismatch": 1}
    again = VillageState.from_bytes(s.to_bytes())
    assert again == s
    old = s.to_dict()
    for key in ("months", "pickup_reasons", "dead_reasons"):
        del old[key]
    loaded = VillageState.from_dict(old)
    assert loaded.months == {} and loaded.pickup_reasons == {} and loaded.generated == {"tape": 5}


def test_month_parameter() -> None:
    assert valid_month("2026-11") and not valid_month("2026-13") and not valid_month("26-1")
