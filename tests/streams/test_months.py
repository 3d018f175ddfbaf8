"""Month buckets (the officer's records) against figures computed from the input.

Events spanning three local months go through real partition processors; the expected
monthly figures are computed (``helpers.expected_months``) from the events the
independent model applied (its own dead-letter and dedupe decisions), bucketed by the
local month of each event in Asia/Shanghai — so an event at 20:00 UTC on the last day of
a month must land in the next month. Also: retention of 24 months behind stream time,
and values written before month buckets existed still load.
"""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from streams.months import month_rows, valid_month
from streams.network import load_network
from streams.state import (
    MONTH_BUCKETS_KEPT,
    US,
    MonthBucket,
    VillageState,
    decode_value,
    encode_value,
    prune,
    to_us,
)
from tests.streams.helpers import Harness, MonthModel, expected_months
from tests.streams.reference import generate

NET = load_network()
TZ = NET.timezone


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
            pk = [*x.get("pk", [0, 0, 0]), x.get("cancelled", 0)]
            kinds = ("requested", "completed", "overdue", "cancelled")
            assert [r["pickups"][k] for k in kinds] == pk
            assert {ct: list(c.values()) for ct, c in r["containers"].items()} == {
                ct: c for ct, c in x["cont"].items()
            }
    total_req = sum(r["pickups"]["requested"] for mo in months for r in month_rows(states, mo))
    assert total_req == len(m.requested) > 0
    assert sum(r["pickups"]["overdue"] for mo in months for r in month_rows(states, mo)) == len(
        m.overdue) > 0
    cancelled = sum(r["pickups"]["cancelled"] for mo in months for r in month_rows(states, mo))
    assert cancelled == sum(v.cancelled for v in m.v.values()) > 0


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
    """A changelog written before month buckets and per-reason counts existed recovers."""
    s = VillageState("H01-V001", "H01", generated={"tape": 5}, pickups_requested=2)
    s.months["2026-11"] = MonthBucket({"tape": 5}, {}, 1, 0, 0, {"reusable_crate": [1, 0, 0, 0]})
    s.pickup_reasons = {"outstanding_grams": 2}
    s.dead_reasons = {"hub_mismatch": 1}
    assert decode_value(encode_value(s)) == s
    old = orjson.loads(encode_value(s))
    for key in ("months", "pickup_reasons", "dead_reasons"):
        del old[key]
    loaded = decode_value(orjson.dumps(old))
    assert isinstance(loaded, VillageState)
    assert loaded.months == {} and loaded.pickup_reasons == {} and loaded.generated == {"tape": 5}


@pytest.mark.parametrize(
    ("month", "valid"),
    [("2026-11", True), ("2026-01", True), ("2026-13", False), ("2026-00", False),
     ("26-1", False), ("2026-1", False)],
)
def test_month_parameter(month: str, valid: bool) -> None:
    """``GET /months/{month}`` takes YYYY-MM with a real month number."""
    assert valid_month(month) is valid


def test_campaign_counts_and_on_hand_round_trip_and_old_buckets_load() -> None:
    """A month bucket's campaign counts and on-hand figure survive the changelog; a bucket
    written before they existed loads with no counts and the on-hand unknown."""
    s = VillageState("H01-V001", "H01")
    s.months["2026-11"] = MonthBucket({"tape": 5}, {}, 0, 0, 0, {}, 0,
                                      {"parcels": 3, "tape_known": 2}, {"cardboard": 700})
    assert decode_value(encode_value(s)) == s
    old = orjson.loads(encode_value(s))
    old["months"]["2026-11"] = old["months"]["2026-11"][:4]
    bucket = decode_value(orjson.dumps(old)).months["2026-11"]
    assert bucket.counts == {} and bucket.on_hand_start is None and bucket.generated == {"tape": 5}
