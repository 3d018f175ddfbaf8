"""Late data is counted, not dropped: a hub's 30-day backlog, uploaded after the other
villages moved stream time on, with re-sends of part of it, is applied exactly once —
through real partition processors, with and without crashes, against the independent
model (:mod:`tests.streams.reference`) and its monthly figures. Also: how the dedupe
state is written (sealed segments, one day of ids per village value) and that a value
written in the old format still recovers."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import orjson
import pytest

from streams.months import month_rows
from streams.network import load_network
from streams.processor import PartitionProcessor, ProcessingConfig
from streams.state import (
    DAY_US,
    SealedIds,
    VillageState,
    decode_value,
    is_segment_key,
    segment_key,
)
from tests.streams.helpers import (
    Backlog,
    Harness,
    MonthModel,
    backlog_scenario,
    digest_of,
    expected_months,
)

NET = load_network()


@pytest.fixture(scope="module")
def scenario() -> Backlog:
    return backlog_scenario(NET)


def model_of(sent: list[dict], partitions: int = 1) -> MonthModel:
    m = MonthModel(NET, partitions)
    for e in sent:
        m.feed(e)
    return m


def check_counted_once(h: Harness, s: Backlog, m: MonthModel, crashed: bool = False) -> None:
    st = h.status()
    assert st["villages"] == m.villages()
    assert st["hubs"] == m.hubs()
    assert st["pickups"]["requested"] == len(m.requested)
    assert st["pickups"]["overdue"] == len(m.overdue)
    # every distinct event once: the model applies an event id at most once, and it
    # applied every backlog event the reference data allows
    applied_ids = [e["event_id"] for e in m.applied_events]
    assert len(applied_ids) == len(set(applied_ids)) == st["events"]["applied"]
    refused = {e["event_id"] for _r, e in m.dead}
    assert {e["event_id"] for e in s.backlog} - refused <= set(applied_ids)
    assert m.duplicates >= len(s.resends) - len(refused)
    # records re-delivered after a crash count as duplicates too (docs/streams.md)
    assert st["events"]["duplicates"] >= m.duplicates if crashed else (
        st["events"]["duplicates"] == m.duplicates)
    assert not [d for d in h.dead if d["reason"] == "outside_dedupe_horizon"]
    # a dead letter may be published again after a crash, always the same record
    got_dead = [(d["event_id"], d["reason"]) for d in h.dead]
    want_dead = [(e["event_id"], r) for r, e in m.dead]
    if crashed:
        got_dead, want_dead = sorted(set(got_dead)), sorted(set(want_dead))
    assert sorted(got_dead) == sorted(want_dead)
    states = [v for proc in h.procs.values() for v in proc.villages.values()]
    want = expected_months(m)
    for month in sorted({mo for _v, mo in want}):
        got = {r["village_id"]: r for r in month_rows(states, month)}
        for (vid, mo), x in want.items():
            if mo == month and (x["gen"] or x["rec"]):
                assert got[vid]["generated_grams"] == {k: g for k, g in x["gen"].items() if g}
                assert got[vid]["recovered_grams"] == {k: g for k, g in x["rec"].items() if g}


def test_the_scenario_is_what_it_says(scenario: Backlog) -> None:
    """The backlog spans 30 days of one hub, uploaded when stream time is days past it."""
    times = sorted(e["occurred_at"] for e in scenario.backlog)
    assert {e["hub_id"] for e in scenario.backlog} == {scenario.hub_id}
    assert len(scenario.backlog) > 400 and len(scenario.resends) > 100
    assert times[0] < "2026-09-24" and times[-1] > "2026-10-22"
    assert max(e["occurred_at"] for e in scenario.live) > "2026-10-25"


@pytest.mark.slow
def test_a_30_day_backlog_with_resends_counts_once(scenario: Backlog) -> None:
    h = Harness()
    for e in scenario.sent:
        h.produce(orjson.dumps(e))
    h.run(0, 200)
    check_counted_once(h, scenario, model_of(scenario.sent))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
def test_a_backlog_through_crashes_and_four_partitions(scenario: Backlog, seed: int) -> None:
    """Crashes with part of a batch's changelog landing and short recoveries, while sealed
    segments and the village values naming them are written."""
    rng = random.Random(seed)
    h = Harness(partitions=4)
    for e in scenario.sent:
        h.produce(orjson.dumps(e))
    crashes = 0
    for p in range(4):
        while not h.run(p, rng.choice([50, 200]), stop_after_batches=rng.randint(1, 6),
                        land=rng.random()):
            crashes += 1
            h.recover(p, cut=max(0, len(h.changelog[p]) - rng.randint(0, 3)))
    assert crashes > 0
    for p in range(4):  # recovered from the changelog alone
        h.recover(p)
    check_counted_once(h, scenario, model_of(scenario.sent, 4), crashed=True)
    assert any(is_segment_key(k) for p in range(4) for k, _v in h.changelog[p])


def test_a_village_value_carries_one_day_of_ids_whatever_the_horizon() -> None:
    """60 days at 150 events a day: ids of past days go to sealed segment records (written
    before the value that names them), so the value stays small; segments older than the
    horizon are deleted with tombstones; and a recovered processor still knows every id."""
    vid = "H01-V001"
    hub = NET.villages[vid].hub_id
    h = Harness(config=ProcessingConfig(dedupe_horizon_us=40 * DAY_US))
    lines = []
    for i in range(60 * 150):
        at = 1_790_000_000 + i * 576  # 150 a day
        lines.append(orjson.dumps({
            "type": "recycling_collected", "event_id": f"e{i}", "hub_id": hub,
            "village_id": vid, "occurred_at": f"{_iso(at)}", "collected_grams": {"tape": 1},
        }))
    for line in lines:
        h.produce(line)
    h.run(0, 500)
    log = h.changelog[0]
    values = [v for k, v in log if k == vid]
    assert max(len(v or b"") for v in values[-20:]) < 20_000  # ~1 day of ids, not 40
    order = [k for k, _v in log]
    first_value_naming = {}
    for i, (k, v) in enumerate(log):
        if k == vid and v is not None:
            for d in orjson.loads(v)["sealed_days"]:
                first_value_naming.setdefault(d, i)
    for d, i in first_value_naming.items():
        assert order.index(segment_key(vid, d)) < i, "a segment is written before its name"
    tombstones = [k for k, v in log if v is None]
    assert tombstones and all(is_segment_key(k) for k in tombstones)
    h.recover(0)
    state = h.procs[0].villages[vid]
    horizon_start = h.procs[0].stream_time - 40 * DAY_US
    kept = [i for i in range(len(lines)) if 1_790_000_000e6 + i * 576e6 >= horizon_start]
    assert all(digest_of(lines[i]) in state.seen for i in kept)
    assert len(state.seen) < len(lines)  # the old days were forgotten
    for i in kept[:50]:  # and re-sends of kept ids are duplicates
        h.produce(lines[i])
    before = h.status()["events"]["duplicates"]
    h.run(0, 500)
    assert h.status()["events"]["duplicates"] == before + 50


def _iso(unix_s: int) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat().replace("+00:00", "Z")


#: A village value as the first changelog format wrote it (before sealed segments,
#: cancelled pickups per month and waste lots): ids grouped by event day, all in the value.
OLD_VALUE = {
    "v": 1, "village_id": "H01-V001", "hub_id": "H01", "offset": 41, "counts": [3, 0, 0],
    "last_at": 1_790_000_000_000_000, "generated": {"cardboard": 700},
    "recovered": {"cardboard": 100}, "used_up": {}, "used_down": {"cardboard": 700},
    "days": {"2026-09-22": [{"cardboard": 700}, {"cardboard": 100}]},
    "waste_since": 1_789_900_000_000_000, "pickups": [1, 0, 0, 0],
    "open_pickup": ["P-H01-V001-1", 1_789_950_000_000_000, ["max_age_hours"], False],
    "containers": {"reusable_crate": [2, 0, 0, 0, [[1_789_900_000_000_000, 2]]]},
    "seen": {"20716": "AAAAAAAAAAE=", "20717": "AAAAAAAAAAIAAAAAAAAAAw=="},
    "pickup_reasons": {"max_age_hours": 1}, "dead_reasons": {},
    "months": {"2026-09": [{"cardboard": 700}, {"cardboard": 100}, [1, 0, 0],
                           {"reusable_crate": [2, 0, 0, 0]}]},
}


def test_a_value_in_the_first_format_recovers_and_is_resealed() -> None:
    """A worker started on a changelog an older packloop wrote (Apache Kafka keeps it)
    decodes it, still recognises its ids, and seals them at the village's next write."""
    raw = orjson.dumps(OLD_VALUE)
    state = decode_value(raw)
    assert isinstance(state, VillageState)
    assert {1, 2, 3} <= {h for h in (1, 2, 3) if h in state.seen}
    assert state.months["2026-09"].pickups_requested == 1
    proc = PartitionProcessor.from_table(0, NET, ProcessingConfig(), [("H01-V001", state)])
    now = 20_720 * DAY_US
    proc.stream_time = now
    proc.dirty["H01-V001"] = state
    writes = proc.checkpoint()
    keys = [k for k, _v in writes]
    assert keys[:3] == [segment_key("H01-V001", 20716), segment_key("H01-V001", 20717),
                        "H01-V001"]
    seg = writes[0][1]
    assert isinstance(seg, SealedIds) and seg.blob == (1).to_bytes(8, "big")
    assert 2 in state.seen and 3 in state.seen and state.seen.sealed_days == {20716, 20717}
