"""Pure state logic: windows in the network's time zone, container FIFO and overdue,
outstanding/over-collected, the dedupe set, serialization, status merging."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from streams.events import parse_hub_event
from streams.state import (
    DAY_US,
    ContainerPool,
    SeenSet,
    VillageState,
    apply,
    decode_value,
    encode_value,
    event_digest,
    id_hash,
    to_us,
)
from streams.state.dedupe import CONTENT_BITS
from streams.state.village import Rejected, check
from streams.views import merge_hub, merge_status

TZ = ZoneInfo("Asia/Shanghai")
CT = {"reusable_crate": ("pp_plastic", 1500), "insulated_box": ("pp_plastic", 900)}


def _ev(at: str, **body: object) -> object:
    base = {"event_id": "e", "occurred_at": at, "hub_id": "H01", "village_id": "H01-V001"}
    return parse_hub_event(dict(base, **body))


def _ship(at: str, grams: int, crates: int = 0) -> object:
    return _ev(
        at,
        type="shipment",
        shipment_id="S",
        direction="down",
        temperature_class="ambient",
        weight_grams=1,
        packaging=[{"material": "cardboard", "count": 1, "grams": grams}],
        containers=[{"container_type": "reusable_crate"}] * crates,
    )


def us(s: str) -> int:
    return to_us(datetime.fromisoformat(s.replace("Z", "+00:00")))


def test_windows_follow_the_network_time_zone() -> None:
    s = VillageState("H01-V001", "H01")
    # 2026-03-31T17:00Z is 2026-04-01 01:00 in Shanghai: April, not March
    for at, g in [
        ("2026-03-25T03:00:00Z", 1),
        ("2026-03-31T15:59:00Z", 10),
        ("2026-03-31T17:00:00Z", 100),
        ("2026-04-01T10:00:00Z", 1000),
    ]:
        e = _ship(at, g)
        apply(s, e, to_us(e.occurred_at), TZ, CT)
    now = us("2026-04-01T12:00:00Z")  # 20:00 on 1 April, local
    assert s.window(now, TZ, "day")["generated_grams"] == {"cardboard": 1100}
    assert s.window(now, TZ, "month")["generated_grams"] == {"cardboard": 1100}
    # 7 days = 26 March .. 1 April (local): 25 March is out
    assert s.window(now, TZ, "7d")["generated_grams"] == {"cardboard": 1110}
    assert s.generated == {"cardboard": 1111}


def test_outstanding_never_negative_and_over_collection_kept() -> None:
    s = VillageState("H01-V001", "H01")
    for e in [
        _ship("2026-04-01T00:00:00Z", 500),
        _ev(
            "2026-04-01T01:00:00Z",
            type="recycling_collected",
            collected_grams={"cardboard": 700, "tape": 5},
        ),
    ]:
        apply(s, e, to_us(e.occurred_at), TZ, CT)
    assert s.outstanding == {}
    assert s.over_collected == {"cardboard": 200, "tape": 5}
    assert s.waste_since is None
    e = _ev(
        "2026-04-01T02:00:00Z",
        type="waste_adjustment",
        reason="scale",
        corrects_event_id="x",
        generated_grams={"cardboard": 300},
        recovered_grams={},
    )
    apply(s, e, to_us(e.occurred_at), TZ, CT)
    assert s.outstanding == {"cardboard": 100}
    assert s.waste_since == us("2026-04-01T02:00:00Z")


def test_a_correction_cannot_take_a_tally_below_zero() -> None:
    """A `waste_adjustment` of -500 g of cardboard for a village that had counted none
    (a correction of an event that never reached it) was applied: the officer's
    "generated" figure read -500 g. It is refused; corrections within what was counted
    are not."""
    s = VillageState("H01-V001", "H01")
    e = _ship("2026-04-01T00:00:00Z", 300)
    apply(s, e, to_us(e.occurred_at), TZ, CT)

    def fix(**grams: object) -> object:
        return _ev("2026-04-01T02:00:00Z", type="waste_adjustment", reason="scale",
                   corrects_event_id="never-seen", **grams)

    with pytest.raises(Rejected) as rej:
        check(s, fix(generated_grams={"cardboard": -301}), CT)
    assert rej.value.reason == "adjustment_below_zero"
    assert rej.value.field == "generated_grams.cardboard"
    with pytest.raises(Rejected) as rej:
        check(s, fix(recovered_grams={"tape": -1}), CT)
    assert rej.value.field == "recovered_grams.tape"
    # the month the correction is dated in counted nothing: its figure would read -300 g
    may = fix(generated_grams={"cardboard": -300})
    may = may.model_copy(
        update={"occurred_at": datetime.fromisoformat("2026-05-02T00:00:00+08:00")})
    with pytest.raises(Rejected) as rej:
        check(s, may, CT, to_us(may.occurred_at), TZ)
    assert "in 2026-05" in rej.value.message and "date a correction" in rej.value.message
    ok = fix(generated_grams={"cardboard": -300}, recovered_grams={"cardboard": 0})
    check(s, ok, CT, to_us(ok.occurred_at), TZ)
    apply(s, ok, to_us(ok.occurred_at), TZ, CT)
    assert s.generated.get("cardboard", 0) == 0 and s.outstanding == {}


def test_container_fifo_overdue_damaged_and_lost() -> None:
    s = VillageState("H01-V001", "H01")
    for e in [
        _ship("2026-04-01T00:00:00Z", 1, crates=2),
        _ship("2026-04-10T00:00:00Z", 1, crates=1),
        _ev(
            "2026-04-12T00:00:00Z",
            type="packaging_return",
            container_type="reusable_crate",
            count=1,
            condition="damaged",
        ),
        _ev(
            "2026-04-12T01:00:00Z",
            type="packaging_return",
            container_type="reusable_crate",
            count=1,
            condition="lost",
        ),
    ]:
        apply(s, e, to_us(e.occurred_at), TZ, CT)
    pool = s.containers["reusable_crate"]
    assert (pool.issued, pool.returned, pool.damaged, pool.lost, pool.in_circulation) == (
        3,
        1,
        1,
        1,
        1,
    )
    assert s.generated["pp_plastic"] == 3000  # damaged + lost count as waste
    # the damaged crate came back to the hub: recovered in the same moment, never waiting
    # at the village; the lost one waits there (outstanding, an hour-dated lot)
    assert s.recovered["pp_plastic"] == 1500
    assert s.outstanding == {"cardboard": 2, "pp_plastic": 1500}
    assert [n for _at, n in s.lots["pp_plastic"]] == [1500]
    assert s.months["2026-04"].recovered["pp_plastic"] == 1500
    # the two 1 April crates were matched first (FIFO): what is out dates from 10 April
    overdue_us = 14 * DAY_US
    assert pool.overdue(us("2026-04-24T00:00:00Z"), overdue_us) == 0
    assert pool.overdue(us("2026-04-24T00:00:01Z"), overdue_us) == 1


def test_crates_carrying_produce_up_issue_and_return_like_boxes() -> None:
    """An `up` shipment's crates count as issued from the village's pool (in the month of
    the shipment) and a packaging_return at the hub brings them back; its packaging is the
    hub's usage, not the village's waste."""
    s = VillageState("H01-V001", "H01")
    up = _ev("2026-04-01T00:00:00Z", type="shipment", shipment_id="U", direction="up",
             temperature_class="chilled", weight_grams=18000,
             packaging=[{"material": "cardboard", "count": 1, "grams": 300}],
             containers=[{"container_type": "reusable_crate"}] * 2)
    back = _ev("2026-04-03T00:00:00Z", type="packaging_return", container_type="reusable_crate",
               count=2, condition="ok")
    for e in (up, back):
        apply(s, e, to_us(e.occurred_at), TZ, CT)
    pool = s.containers["reusable_crate"]
    assert (pool.issued, pool.returned, pool.in_circulation) == (2, 2, 0)
    assert s.months["2026-04"].containers["reusable_crate"][:2] == [2, 2]
    assert s.generated == {} and s.used_up == {"cardboard": 300}


def test_a_return_beyond_what_the_village_has_out_says_where_it_belongs() -> None:
    """A crate handed back at another village than the one it went to: the refusal says
    to send it under the village it was issued to (before, only that it was too many)."""
    s = VillageState("H01-V002", "H01")
    back = _ev("2026-04-03T00:00:00Z", type="packaging_return", container_type="reusable_crate",
               count=1, condition="ok")
    with pytest.raises(Rejected) as rej:
        check(s, back, CT)
    assert rej.value.reason == "return_exceeds_issued" and rej.value.field == "count"
    assert "village H01-V002 has 0 out" in rej.value.message
    assert "under the id of the village it was issued to" in rej.value.message

def test_late_issue_keeps_fifo_ordered() -> None:
    pool = ContainerPool()
    pool.issue(300, 1)
    pool.issue(100, 2)
    pool.issue(200, 1)
    pool.issue(200, 1)
    assert pool.fifo == [[100, 2], [200, 2], [300, 1]]
    pool.take(3)
    assert pool.fifo == [[200, 1], [300, 1]]


def test_seen_set_serializes_compactly_and_prunes_whole_days() -> None:
    seen = SeenSet()
    for i in range(1000):
        seen.add(i * 7919, 5 * DAY_US + i)
    seen.add(42, 9 * DAY_US)
    again = SeenSet.unpack(seen.pack())
    assert again == seen and 42 in again and 7919 in again
    assert len(str(seen.pack())) < 12_000
    again.prune(6 * DAY_US - 1)  # day 5 ends at 6 days - 1 µs: kept
    assert len(again) == 1001
    again.prune(6 * DAY_US)
    assert len(again) == 1 and 42 in again


def test_village_state_round_trip() -> None:
    s = VillageState("H01-V001", "H01")
    e = _ship("2026-04-01T00:00:00Z", 500, crates=1)
    apply(s, e, to_us(e.occurred_at), TZ, CT)
    s.seen.add(123, to_us(e.occurred_at))
    assert decode_value(encode_value(s)) == s


def test_merging_worker_answers() -> None:
    a = {
        "villages": {"V1": {"generated_grams": {"tape": 1}}},
        "hubs": {
            "H1": {
                "containers": {
                    "reusable_crate": {
                        "issued": 2,
                        "returned": 1,
                        "in_circulation": 1,
                        "damaged": 0,
                        "lost": 0,
                        "overdue": 1,
                    }
                }
            }
        },
        "pickups": {"requested": 2, "open": 1, "overdue": 0},
        "events": {"applied": 5, "duplicates": 1, "dead_lettered": 0, "rerouted": 0},
    }
    b = {
        "villages": {"V0": {}},
        "hubs": {
            "H1": {
                "containers": {
                    "reusable_crate": {
                        "issued": 3,
                        "returned": 0,
                        "in_circulation": 3,
                        "damaged": 0,
                        "lost": 0,
                        "overdue": 0,
                    }
                }
            }
        },
        "pickups": {"requested": 1, "open": 0, "overdue": 1},
        "events": {"applied": 2, "duplicates": 0, "dead_lettered": 4, "rerouted": 1},
    }
    m = merge_status([a, b])
    assert list(m["villages"]) == ["V0", "V1"]
    assert m["hubs"]["H1"]["containers"]["reusable_crate"]["issued"] == 5
    assert m["pickups"] == {"requested": 3, "open": 1, "overdue": 1, "cancelled": 0}
    assert m["events"] == {"applied": 7, "duplicates": 1, "dead_lettered": 4, "rerouted": 1}
    h = merge_hub(
        [
            {
                "villages": 1,
                "generated_grams": {"tape": 5},
                "recovered_grams": {"tape": 7},
                "containers": {},
            }
        ],
        "H1",
    )
    assert h["outstanding_grams"] == {} and h["villages"] == 1


def test_a_late_event_leaves_every_months_start_as_it_was_at_midnight() -> None:
    """An event up to 90 days late opens its own, earlier month. Its month's stock at the
    start was the village's outstanding waste of the day it arrived (October starting with
    December's 1,200 g), and the months after it did not see its grams."""
    from streams.months import month_row

    s = VillageState("H01-V001", "H01")
    for e in (_ship("2026-11-30T20:00:00Z", 1200),  # 1 December, 04:00 in Shanghai
              _ship("2026-10-15T04:00:00Z", 200),   # late: October
              _ev("2026-11-10T04:00:00Z", type="recycling_collected",
                  collected_grams={"cardboard": 50})):  # late: November
        apply(s, e, to_us(e.occurred_at), TZ, CT)
    assert month_row(s, "2026-10")["on_hand_start_grams"] == {}
    assert month_row(s, "2026-11")["on_hand_start_grams"] == {"cardboard": 200}
    assert month_row(s, "2026-12")["on_hand_start_grams"] == {"cardboard": 150}
    assert s.outstanding == {"cardboard": 1350}


def test_a_quiet_month_keeps_the_waste_a_village_holds_from_before() -> None:
    """A village with no event in November still holds October's 40 kg of cardboard: its
    November row carries it (nothing generated or recovered), once the stream has reached
    November, and not for a month before its first bucket or ahead of the stream. Without
    that row the township's November recovery ratio left the 40 kg out: 0.90 read for 0.39."""
    from streams.months import month_rows
    from streams.officer_kpis import add_rows, kpis

    quiet, busy, empty = (VillageState(v, "H01") for v in ("H01-V001", "H01-V002", "H01-V003"))
    for s, e in ((quiet, _ship("2026-10-10T04:00:00Z", 40_000)),
                 (busy, _ship("2026-11-10T04:00:00Z", 30_000)),
                 (busy, _ev("2026-11-20T04:00:00Z", type="recycling_collected",
                            collected_grams={"cardboard": 27_000})),
                 (empty, _ship("2026-10-10T04:00:00Z", 5_000)),
                 (empty, _ev("2026-10-20T04:00:00Z", type="recycling_collected",
                             collected_grams={"cardboard": 5_000}))):
        apply(s, e, to_us(e.occurred_at), TZ, CT)
    states = [quiet, busy, empty]
    rows = {r["village_id"]: r for r in month_rows(states, "2026-11", reached="2026-11")}
    assert set(rows) == {"H01-V001", "H01-V002"}  # V003 holds nothing
    q = rows["H01-V001"]
    assert q["on_hand_start_grams"] == {"cardboard": 40_000} == q["on_hand_end_grams"]
    assert q["generated_grams"] == {} and q["recovered_grams"] == {}
    assert q["pickups"]["requested"] == 0
    ratio = kpis(add_rows(rows.values()))["recovery_ratio"]
    assert ratio == pytest.approx(27_000 / (40_000 + 30_000))
    # not ahead of the stream, nor before the village's first month
    assert {r["village_id"] for r in month_rows(states, "2026-11")} == {"H01-V002"}
    assert {r["village_id"] for r in month_rows(states, "2026-11", reached="2026-10")} == {
        "H01-V002"}
    assert month_rows(states, "2026-09", reached="2026-11") == []
    # December: both still hold what November left them
    dec = {r["village_id"]: r["on_hand_start_grams"]
           for r in month_rows(states, "2026-12", reached="2026-12")}
    assert dec == {"H01-V001": {"cardboard": 40_000}, "H01-V002": {"cardboard": 3_000}}


def test_seen_set_tells_a_reused_id_from_a_resend_in_every_part() -> None:
    """The id bits are found in the open part, after sealing, after a round trip through
    the village value, and not once their day is pruned."""
    h = id_hash("e-1")
    digest = event_digest(h, b'{"tape":5}')
    other = event_digest(h, b'{"tape":7}')
    assert digest != other and digest >> CONTENT_BITS == h >> CONTENT_BITS
    seen = SeenSet()
    seen.add(digest, 5 * DAY_US)
    seen.add(event_digest(id_hash("e-2"), b"x"), 6 * DAY_US)
    assert (seen.verdict(h, digest), seen.verdict(h, other)) == ("duplicate", "conflict")
    assert seen.verdict(id_hash("e-3"), event_digest(id_hash("e-3"), b"x")) == "new"
    again = SeenSet.unpack(seen.pack())
    assert again.verdict(h, other) == "conflict"
    [(day, blob)] = seen.seal(6)
    assert day == 5 and not seen.by_id.get(digest)
    assert (seen.verdict(h, digest), seen.verdict(h, other)) == ("duplicate", "conflict")
    assert seen.prune(6 * DAY_US) == [5]
    assert seen.verdict(h, other) == "new" and seen.knows_id(id_hash("e-2"))
    seen.prune(7 * DAY_US)
    assert not seen.knows_id(id_hash("e-2"))
