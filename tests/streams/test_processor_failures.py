"""A record the worker cannot apply is dead-lettered, never a stop: the poison pills of the
new-user test, and any exception while an event is applied (injected here at every step
of applying one), which leaves the village exactly as it was before the record."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from typing import Any, cast

import orjson
import pytest

import streams.processor as processor_module
import streams.state.pickups as pickups_module
import streams.state.village as village_module
from streams.network import load_network
from streams.processor import APPLY_FAILED, PartitionProcessor, ProcessingConfig
from streams.state import VillageState, encode_value
from streams.state.containers import ContainerPool
from tests.streams.helpers import SHIPMENT, WALL
from tests.streams.reference import generate

NET = load_network()
VID = str(SHIPMENT["village_id"])
GRAMS = sum(int(item["grams"]) for item in cast(list[dict[str, Any]], SHIPMENT["packaging"]))


def _ship(event_id: str, **changes: Any) -> bytes:
    return orjson.dumps({**SHIPMENT, "event_id": event_id, **changes})


class Feed:
    """One processor fed records at increasing offsets; every dead letter kept."""

    def __init__(self) -> None:
        self.proc = PartitionProcessor(0, NET, ProcessingConfig())
        self.offsets = itertools.count()
        self.dead: list[dict[str, Any]] = []
        self.pickups: list[bytes] = []

    def send(self, raw: bytes, key: str = VID) -> None:
        self.proc.process(next(self.offsets), key.encode(), raw, WALL)
        self.dead += [orjson.loads(body) for _, body in self.proc.outbox.dead_letters]
        self.pickups += [body for _, body in self.proc.outbox.pickups]
        self.proc.outbox.clear()

    def village(self, vid: str = VID) -> VillageState:
        return self.proc.villages[vid]


def figures(state: VillageState) -> dict[str, Any]:
    """What an event changes in a village value (not the offset, the counters a dead
    letter bumps or the random epoch)."""
    d = orjson.loads(encode_value(state))
    for key in ("offset", "counts", "dead_reasons", "epoch"):
        d.pop(key)
    return d


def test_the_poison_pills_are_dead_lettered_and_the_partition_goes_on() -> None:
    """Before: five 2^62 g shipments passed validation and the batch's state write raised
    (Integer exceeds 64-bit range), on every restart; `{"type": []}` and a year-1 time
    with +14:00 raised out of the parser."""
    feed = Feed()
    huge = [_ship(f"OVF-{i}", packaging=[{"material": "cardboard", "count": 1,
                                          "grams": 2**62}]) for i in range(5)]
    pills = [
        *huge,
        orjson.dumps({"type": "recycling_collected", "schema_version": 1, "event_id": "R",
                      "occurred_at": "2026-11-11T09:00:00Z", "hub_id": "H01",
                      "village_id": VID, "collected_grams": {"cardboard": 7}}
                     ).replace(b'"cardboard":7', b'"cardboard":18446744073709551616'),
        _ship("W", weight_grams=7).replace(b'"weight_grams":7', b'"weight_grams":1e308'),
        _ship("T", type=[]),
        _ship("Y", occurred_at="0001-01-01T00:00:00+14:00"),
    ]
    for raw in pills:
        feed.send(raw)
    feed.send(_ship("good"))
    assert [d["reason"] for d in feed.dead] == (
        ["less_than_equal"] * 7 + ["unknown_type", "value_error"])
    assert [d["field"] for d in feed.dead][5:] == [
        "collected_grams.cardboard", "weight_grams", "type", "occurred_at"]
    assert feed.village().applied == 1
    for _key, value in feed.proc.checkpoint():  # what the worker writes: it encodes
        if value is not None:
            encode_value(value)


class Injector:
    """Raises at the n-th call of any of the steps of applying an event."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        self.fail_at: int | None = None
        self.failed = False
        for module, name in [
            (village_module, "add_grams"), (village_module, "add_lot"),
            (village_module, "take_oldest"), (village_module, "take_newest"),
            (village_module, "day_bucket"), (village_module, "month_bucket"),
            (village_module, "_count_campaign_fields"), (pickups_module, "month_bucket"),
            (pickups_module, "crossed"), (processor_module, "emission_to_json"),
        ]:
            monkeypatch.setattr(module, name, self.wrap(getattr(module, name)))
        for name in ("issue", "take"):
            monkeypatch.setattr(ContainerPool, name, self.wrap(getattr(ContainerPool, name)))
        fire = PartitionProcessor._fire_timers

        def timers_untouched(proc: PartitionProcessor, trigger_at: int) -> None:
            armed, self.fail_at = self.fail_at, None  # only the record's own steps fail
            try:
                fire(proc, trigger_at)
            finally:
                self.fail_at = armed

        monkeypatch.setattr(PartitionProcessor, "_fire_timers", timers_untouched)

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            if self.fail_at is not None and self.calls == self.fail_at:
                self.failed = True
                raise RuntimeError(f"injected failure at step {self.calls}")
            return fn(*args, **kwargs)

        return step

    def arm(self, at: int | None) -> Iterator[None]:
        self.calls, self.fail_at, self.failed = 0, at, False
        yield
        self.fail_at = None


def test_an_event_that_raises_half_applied_leaves_no_trace(monkeypatch) -> None:
    """The shipment raises on its second packaging line, after the first was counted:
    dead-lettered apply_failed, the village as before; sent again, it counts once."""
    feed = Feed()
    feed.send(_ship("before"))
    before = figures(feed.village())
    counts = (feed.village().applied, feed.village().dead_lettered)
    injector = Injector(monkeypatch)
    lines = 0

    def count_lines(*_: Any) -> None:
        nonlocal lines
        lines += 1
        if lines == 2:
            raise ValueError("no such material after all")

    real_tally = village_module._tally

    def tally(*args: Any, **kwargs: Any) -> None:
        count_lines()
        real_tally(*args, **kwargs)

    monkeypatch.setattr(village_module, "_tally", tally)
    for _ in injector.arm(None):
        feed.send(_ship("poison"))
    (dead,) = feed.dead
    assert (dead["reason"], dead["event_id"], dead["offset"]) == (APPLY_FAILED, "poison", 1)
    assert "ValueError: no such material after all" in dead["message"]
    assert figures(feed.village()) == before
    assert (feed.village().applied, feed.village().dead_lettered) == (counts[0], counts[1] + 1)
    assert feed.village().dead_reasons == {APPLY_FAILED: 1}
    assert feed.village().offset == 1  # a redelivery of offset 1 is skipped
    monkeypatch.setattr(village_module, "_tally", real_tally)
    feed.send(_ship("poison"))  # the hub sends it again once the bug is fixed
    assert feed.village().applied == counts[0] + 1
    assert sum(feed.village().generated.values()) == 2 * GRAMS


def test_a_failure_at_any_step_rolls_back_exactly(monkeypatch) -> None:
    """Two processors get the same stream; in one, events fail at a random step of being
    applied (tallies, lots, containers, buckets, the pickup machine, the notice) and are
    sent again. Both end with the same figures, dedupe set and pickup notices."""
    events = [orjson.dumps(e) for e in generate(NET, 3000, seed=5, villages=6,
                                                span_hours=24 * 21, bad_share=0.02)]
    plain, failing = Feed(), Feed()
    injector = Injector(monkeypatch)
    rng = random.Random(3)
    failures = 0
    for raw in events:
        key = orjson.loads(raw).get("village_id", "?")
        plain.send(raw, key)
        before = len(failing.dead)
        for _ in injector.arm(rng.randint(1, 40)):
            failing.send(raw, key)
        if injector.failed:
            assert [d["reason"] for d in failing.dead[before:]] == [APPLY_FAILED]
            failures += 1
            failing.send(raw, key)  # sent again: applied now
    assert failures > 300
    assert sorted(plain.proc.villages) == sorted(failing.proc.villages)
    for vid, state in plain.proc.villages.items():
        other = failing.proc.villages[vid]
        assert figures(other) == figures(state), vid
        assert other.applied == state.applied and other.duplicates == state.duplicates
        assert other.dead_lettered - other.dead_reasons.get(APPLY_FAILED, 0) == \
            state.dead_lettered
    assert failing.pickups == plain.pickups
    assert failing.proc.stream_time == plain.proc.stream_time


def test_a_timer_that_raises_leaves_its_village_and_the_stream_alone(monkeypatch) -> None:
    """A pickup timer has no record to dead-letter: the village stays as it was, the
    stream goes on (and the next event of the village tries again)."""
    limit = NET.villages[VID].thresholds.outstanding_grams
    feed = Feed()
    feed.send(_ship("heavy", packaging=[{"material": "cardboard", "count": 1,
                                         "grams": limit}]))
    assert feed.village().open_pickup is not None and len(feed.pickups) == 1
    before = figures(feed.village())

    def broken(em: Any) -> bytes:
        raise RuntimeError("cannot build the notice")

    monkeypatch.setattr(processor_module, "emission_to_json", broken)
    other = next(v for v in sorted(NET.villages) if v != VID
                 and processor_module.murmur2_partition(v.encode(), 1) == 0)
    late = {**SHIPMENT, "event_id": "later", "village_id": other,
            "hub_id": NET.villages[other].hub_id, "occurred_at": "2026-11-30T08:30:00Z",
            "packaging": [], "containers": []}
    feed.send(orjson.dumps(late), other)  # past the SLA: the overdue timer fires, fails
    op = feed.village().open_pickup
    assert figures(feed.village()) == before and op is not None and not op.overdue
    assert feed.village(other).applied == 1 and feed.dead == []


def test_a_failure_after_the_pickup_went_overdue_puts_the_pickup_back(monkeypatch) -> None:
    """The village's own event finds its pickup past the SLA: the machine marks it overdue,
    then building the notice fails. The pickup is open and not overdue again, nothing
    counted; the event sent again marks it overdue once, with one notice."""
    limit = NET.villages[VID].thresholds.outstanding_grams
    feed = Feed()
    feed.send(_ship("heavy", packaging=[{"material": "cardboard", "count": 1,
                                         "grams": limit}]))
    before = figures(feed.village())
    real = processor_module.emission_to_json

    def broken(em: Any) -> bytes:
        raise RuntimeError("cannot build the notice")

    monkeypatch.setattr(processor_module, "emission_to_json", broken)
    late = _ship("late", occurred_at="2026-11-30T08:30:00Z", packaging=[], containers=[])
    feed.send(late)
    assert [d["reason"] for d in feed.dead] == [APPLY_FAILED]
    assert figures(feed.village()) == before
    op = feed.village().open_pickup
    assert op is not None and not op.overdue and feed.village().pickups_overdue == 0
    monkeypatch.setattr(processor_module, "emission_to_json", real)
    feed.send(late)
    op = feed.village().open_pickup
    assert feed.village().pickups_overdue == 1 and op is not None and op.overdue
    kinds = [orjson.loads(b)["type"] for b in feed.pickups]
    assert kinds == ["pickup_requested", "pickup_overdue"]
