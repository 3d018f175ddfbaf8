"""The partition processor against the independent model, including simulated crashes
(partial changelog landing, short table recovery) and replays."""

from __future__ import annotations

import random
from datetime import timedelta

import orjson
import pytest

from streams.network import load_network
from streams.processor import ProcessingConfig, murmur2_partition
from streams.state import DAY_US, id_hash
from tests.streams.helpers import WALL, Harness
from tests.streams.reference import Model, generate

NET = load_network()


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return generate(NET, 3000, seed=11, villages=40, span_hours=24 * 20)


def expected(events: list[dict], partitions: int = 1) -> Model:
    m = Model(NET, partitions)
    for e in events:
        m.feed(e)
    return m


@pytest.fixture(scope="module")
def model(events: list[dict]) -> Model:
    """The reference model of the module's events, fed once: the tests only read it, and
    feeding it took a second or two per test."""
    return expected(events)


@pytest.fixture(scope="module")
def calm_counters(events: list[dict]) -> dict[int, dict]:
    """The event counters of a run without crashes, per batch size, computed once each."""
    return {}


def check_against_model(h: Harness, m: Model) -> None:
    st = h.status()
    assert st["villages"] == m.villages()
    assert st["hubs"] == m.hubs()
    assert st["events"]["applied"] == m.applied
    assert st["pickups"]["requested"] == len(m.requested)
    assert st["pickups"]["overdue"] == len(m.overdue)
    assert st["pickups"]["open"] == sum(1 for v in m.v.values() if v.open)


def pickups(h: Harness) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for body in h.published:
        e = orjson.loads(body)
        if e["type"] == "pickup_requested":
            out.setdefault(e["pickup_id"], set()).add(e["event_id"])
    return out


def test_one_pass_matches_model(events: list[dict], model: Model) -> None:
    h = Harness()
    for e in events:
        h.produce(orjson.dumps(e))
    h.run(0, 200)
    m = model
    check_against_model(h, m)
    assert st_dead(h) == sorted(r for r, _ in m.dead)
    assert sorted(pickups(h)) == sorted(m.requested)
    assert len(m.requested) > 5 and m.overdue  # the data exercises the machine


def st_dead(h: Harness) -> list[str]:
    return sorted(d["reason"] for d in h.dead)


def test_every_event_twice_counts_once(events: list[dict], model: Model) -> None:
    """A 20-day file replayed whole: every second-pass event is a duplicate."""
    h = Harness()
    for e in events:
        h.produce(orjson.dumps(e))
    for e in events:
        h.produce(orjson.dumps(e))
    h.run(0, 333)
    m = model
    check_against_model(h, m)
    assert h.status()["events"]["duplicates"] == len(events) - len(m.dead)
    assert not [d for d in h.dead if d["reason"] == "outside_dedupe_horizon"]


@pytest.mark.slow
def test_beyond_the_horizon_is_dead_lettered_never_counted_twice(events: list[dict]) -> None:
    """With a 5-day horizon the second pass of a 20-day file is partly too old to check
    for re-sends: those are dead-lettered, the rest are duplicates, none applied twice."""
    horizon = timedelta(days=5)
    h = Harness(config=ProcessingConfig(dedupe_horizon_us=5 * DAY_US))
    for e in events + events:
        h.produce(orjson.dumps(e))
    h.run(0, 333)
    m = Model(NET, 1, horizon=horizon)
    for e in events:
        m.feed(e)
    check_against_model(h, m)
    bad = {e["event_id"] for _r, e in m.dead}
    late = sum(
        1 for d in h.dead if d["reason"] == "outside_dedupe_horizon" and d["event_id"] not in bad
    )
    assert late > 0
    assert h.status()["events"]["duplicates"] + late == len(events) - len(m.dead)


def test_each_event_sent_twice_in_a_row(events: list[dict], model: Model) -> None:
    h = Harness()
    for e in events:
        h.produce(orjson.dumps(e))
        h.produce(orjson.dumps(e))
    h.run(0, 500)
    m = model
    check_against_model(h, m)
    assert h.status()["events"]["duplicates"] == len(events) - len(m.dead)


@pytest.mark.parametrize("seed", range(12))
def test_crash_with_partial_changelog_is_exact(events: list[dict], model: Model,
                                               calm_counters: dict[int, dict],
                                               seed: int) -> None:
    rng = random.Random(seed)
    h = Harness()
    for e in events:
        h.produce(orjson.dumps(e))
    batch = rng.choice([13, 50, 200])
    crashes = 0
    while True:
        stop = rng.randint(1, 12)
        finished = h.run(0, batch, stop_after_batches=stop, land=rng.random())
        if finished:
            break
        crashes += 1
        # short recovery (Tansu): the table may be rebuilt a few records short
        cut = max(0, len(h.changelog[0]) - rng.randint(0, 3))
        h.recover(0, cut=cut)
    m = model
    check_against_model(h, m)
    pk = pickups(h)
    assert sorted(pk) == sorted(m.requested)
    assert all(len(ids) == 1 for ids in pk.values()), "a re-sent pickup keeps its event_id"
    assert crashes > 0
    # a record redelivered after the crash is not a re-send: the counters are the ones of
    # a run without crashes (a kill -9 mid-batch counted 906 re-sends that never happened)
    if batch not in calm_counters:
        calm = Harness()
        for e in events:
            calm.produce(orjson.dumps(e))
        calm.run(0, batch)
        calm_counters[batch] = calm.status()["events"]
    assert h.status()["events"] == calm_counters[batch]


def test_four_partitions_and_rerouting(events: list[dict]) -> None:
    h = Harness(partitions=4)
    rng = random.Random(3)
    rerouted = 0
    for e in events:
        if rng.random() < 0.05:  # a client with another partitioner
            right = murmur2_partition(e["village_id"].encode(), 4)
            h.produce(orjson.dumps(e), partition=(right + 1) % 4)
            rerouted += 1
        else:
            h.produce(orjson.dumps(e))
    for _ in range(3):  # re-routed records land on other partitions: go round again
        for p in range(4):
            h.run(p, 100)
    m = Model(NET, 4)
    # the model sees each partition's records in that partition's order
    for p in range(4):
        for _k, v in h.logs[p]:
            e = orjson.loads(v)
            if murmur2_partition(e["village_id"].encode(), 4) == p:
                m.feed(e)
    st = h.status()
    assert st["villages"] == m.villages()
    assert st["hubs"] == m.hubs()
    assert st["events"]["rerouted"] == rerouted


def test_future_and_unparseable_records_are_dead_lettered() -> None:
    h = Harness()
    vid = sorted(NET.villages)[0]
    hub = NET.villages[vid].hub_id
    good = {
        "event_id": "e1",
        "occurred_at": "2026-01-01T00:00:00Z",
        "hub_id": hub,
        "village_id": vid,
        "type": "recycling_collected",
        "collected_grams": {"tape": 5},
    }
    future = dict(good, event_id="e2", occurred_at="2999-01-01T00:00:00Z")
    h.produce(orjson.dumps(good))
    h.produce(b"{not json", key=vid)
    h.produce(orjson.dumps(future))
    h.recover(0)
    proc = h.procs[0]
    for i, (k, v) in enumerate(h.logs[0]):
        proc.process(i, k, v, 1_800_000_000 * 1_000_000)
    reasons = sorted(orjson.loads(b)["reason"] for _, b in proc.outbox.dead_letters)
    assert reasons == ["future_timestamp", "malformed_json"]
    assert h.status()["events"] == {
        "applied": 1, "duplicates": 0, "dead_lettered": 2, "rerouted": 0
    }
    dl = orjson.loads(proc.outbox.dead_letters[1][1])
    assert dl["source"] == "worker" and dl["field"] == "occurred_at" and dl["offset"] == 2


def test_time_dead_letters_name_occurred_at_once() -> None:
    """``dead-letter list`` shows ``field: message`` unless the message starts with it, as
    emit's do (``occurred_at: 2999-… is 8.6e6 h ahead of the clock``). Before, the worker's
    read ``occurred_at: occurred_at 2999-… is more than 1 h ahead``."""
    h = Harness()
    vid = sorted(NET.villages)[0]
    base = {"event_id": "e1", "occurred_at": "2026-06-01T00:00:00Z",
            "hub_id": NET.villages[vid].hub_id, "village_id": vid,
            "type": "recycling_collected", "collected_grams": {"tape": 5}}
    h.produce(orjson.dumps(base))
    h.produce(orjson.dumps(dict(base, event_id="e2", occurred_at="2999-01-01T00:00:00Z")))
    h.produce(orjson.dumps(dict(base, event_id="e3", occurred_at="2026-01-01T00:00:00Z")))
    h.recover(0)
    proc = h.procs[0]
    for i, (k, v) in enumerate(h.logs[0]):
        proc.process(i, k, v, 1_800_000_000 * 1_000_000)
    dead = {d["reason"]: d for d in (orjson.loads(b) for _, b in proc.outbox.dead_letters)}
    assert dead["future_timestamp"]["message"] == (
        "occurred_at: 2999-01-01T00:00:00+00:00 is more than 1 h ahead of the clock")
    assert dead["outside_dedupe_horizon"]["message"] == (
        "occurred_at: 2026-01-01T00:00:00+00:00 is older than the dedupe horizon behind "
        "stream time; a re-send could not be recognised")
    assert all(d["field"] == "occurred_at" for d in dead.values())


def test_a_fractional_future_tolerance_is_shown_as_set() -> None:
    """Before: a tolerance of half an hour read "more than 0 h ahead"."""
    h = Harness(config=ProcessingConfig(future_tolerance_us=1_800_000_000))
    vid = sorted(NET.villages)[0]
    h.produce(orjson.dumps({"event_id": "e1", "occurred_at": "2999-01-01T00:00:00Z",
                            "hub_id": NET.villages[vid].hub_id, "village_id": vid,
                            "type": "recycling_collected", "collected_grams": {"tape": 5}}))
    h.recover(0)
    for i, (k, v) in enumerate(h.logs[0]):
        h.procs[0].process(i, k, v, 1_800_000_000 * 1_000_000)
    (dead,) = (orjson.loads(b) for _, b in h.procs[0].outbox.dead_letters)
    assert "is more than 0.5 h ahead of the clock" in dead["message"]


def test_an_event_id_reused_with_other_content_is_dead_lettered_not_dropped() -> None:
    """A sender that reuses an applied event_id for a different event (a bug in its id
    scheme) lost that event in silence: it was counted as a re-send. It is dead-lettered
    now, naming the field; a true re-send (the same event, keys in another order) stays a
    duplicate, before and after its id's segment is sealed."""
    h = Harness()
    vid = sorted(NET.villages)[0]
    base = {"event_id": "e1", "occurred_at": "2026-06-01T00:00:00Z",
            "hub_id": NET.villages[vid].hub_id, "village_id": vid,
            "type": "recycling_collected", "collected_grams": {"tape": 5}}
    other = dict(base, collected_grams={"tape": 7})
    later = dict(base, event_id="e2", occurred_at="2026-06-03T00:00:00Z")
    resent = dict(reversed(list(base.items())))
    for body in (base, other, later, resent, other):
        h.produce(orjson.dumps(body))
    h.recover(0)
    proc = h.procs[0]
    for i, (k, v) in enumerate(h.logs[0]):
        proc.process(i, k, v, WALL)
        if i == 2:
            proc.checkpoint()  # stream time is two days on: e1's segment is sealed
            assert proc.villages[vid].seen.sealed_days
    dead = [orjson.loads(b) for _, b in proc.outbox.dead_letters]
    assert [(d["reason"], d["field"], d["event_id"]) for d in dead] == [
        ("event_id_conflict", "event_id", "e1")] * 2
    assert "already applied to village" in dead[0]["message"]
    state = proc.villages[vid]
    assert (state.applied, state.duplicates, state.dead_lettered) == (2, 1, 2)


def test_a_resend_of_an_event_stored_before_content_bits_is_still_a_duplicate() -> None:
    """A village value written by an older worker stores an id's whole 63-bit hash; a
    re-send after the upgrade must match it, not be taken for a conflict."""
    h = Harness()
    vid = sorted(NET.villages)[0]
    body = {"event_id": "old-1", "occurred_at": "2026-06-01T00:00:00Z",
            "hub_id": NET.villages[vid].hub_id, "village_id": vid,
            "type": "recycling_collected", "collected_grams": {"tape": 5}}
    h.produce(orjson.dumps(body))
    h.recover(0)
    proc = h.procs[0]
    at = 1_780_272_000 * 1_000_000  # 2026-06-01
    state = proc._new_village(vid, NET.villages[vid].hub_id, at)
    state.seen.add(id_hash("old-1"), at)  # as the older worker stored it
    proc.stream_time = at
    for i, (k, v) in enumerate(h.logs[0]):
        proc.process(i, k, v, WALL)
    assert (state.applied, state.duplicates, state.dead_lettered) == (0, 1, 0)
