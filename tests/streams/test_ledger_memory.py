"""A village whose state starts from nothing (an embedded broker restarted empty) learns
from the ledger what its earlier lives applied: a hub re-sending yesterday's events counts
them once in the ledger, and the village's pickups are numbered after those already sent.
Processors over in-memory logs (`Harness`) and a real SQLite ledger."""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import orjson

from services.ledger import Ledger
from streams.ledger import LedgerFeed
from streams.processor import ProcessingConfig
from streams.state import SealedIds, decode_value
from tests.streams.helpers import SHIPMENT, Harness
from tests.streams.helpers import digest_of as _digest

STREAM = "packloop-worker"
VILLAGE = "H01-V007"


def _shipment(i: int, eps_grams: int = 0) -> bytes:
    event: dict[str, Any] = copy.deepcopy(SHIPMENT)
    event["event_id"] = f"s-{i}"
    event["occurred_at"] = f"2026-11-{11 + i // 2:02d}T08:{i:02d}:00Z"  # over four days
    event["containers"] = []
    event["packaging"] = [{"material": "cardboard", "count": 1, "grams": 200}]
    if eps_grams:
        event["packaging"].append({"material": "eps_foam", "count": 1, "grams": eps_grams})
    return orjson.dumps(event)


def _life(ledger: Ledger, events: list[bytes], remember: bool = True,
          cluster: str | None = None) -> Harness:
    """One life of the stream state: a fresh changelog (a broker started empty, or on
    `cluster` again, a changelog recovered empty), the events processed, the ledger handed
    the rows as the worker hands them over."""
    prior = functools.partial(ledger.prior, STREAM) if remember else None
    h = Harness(config=ProcessingConfig(prior=prior, cluster_id=cluster))
    for raw in events:
        h.produce(raw)
    h.run(0, batch=3)
    feed = LedgerFeed(STREAM)
    sealed = [v for _key, raw in h.changelog[0] if raw is not None
              and isinstance(v := decode_value(raw), SealedIds)]
    assert sealed or len(events) == 1, "the events span days: some segments are sealed"
    rows = feed.rows(h.procs[0].villages.values(), sealed)
    ledger.write(rows)
    feed.written(rows)
    return h


def _month(ledger: Ledger) -> dict[str, Any]:
    [village] = ledger.month(STREAM, "2026-11")["villages"]
    return village


def _pickup_ids(h: Harness) -> list[str]:
    return [orjson.loads(b)["pickup_id"] for b in h.published
            if orjson.loads(b)["type"] == "pickup_requested"]


def _run_twice(tmp_path: Path, remember: bool) -> tuple[dict[str, Any], list[str], list[str]]:
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger-{remember}.db")
    day1 = [_shipment(i) for i in range(5)] + [_shipment(5, eps_grams=6000)]
    first = _life(ledger, day1, remember)
    # the broker restarts empty; the hub sends the whole file again, then one new event
    second = _life(ledger, [*day1, _shipment(6, eps_grams=6000)], remember)
    month = _month(ledger)
    ledger.close()
    return month, _pickup_ids(first), _pickup_ids(second)


def test_a_resend_after_a_fresh_start_counts_once_in_the_ledger(tmp_path: Path) -> None:
    month, first, second = _run_twice(tmp_path, remember=True)
    # 7 distinct shipments of one parcel each: 7 parcels, 1,400 g of cardboard, 12 kg EPS
    assert month["counts"]["parcels"] == 7
    assert month["generated_grams"] == {"cardboard": 7 * 200, "eps_foam": 12000}
    # the pickup the first life sent keeps its id; the new life's is the next one
    assert first == [f"P-{VILLAGE}-1"]
    assert second == [f"P-{VILLAGE}-2"]
    assert month["pickups"]["requested"] == 2


def test_without_the_ledgers_memory_the_resend_counts_twice(tmp_path: Path) -> None:
    """What the memory guards against (this test fails if the processor ignores it)."""
    month, first, second = _run_twice(tmp_path, remember=False)
    assert month["counts"]["parcels"] == 13
    assert first == second == [f"P-{VILLAGE}-1"]


def test_a_state_lost_on_its_own_cluster_re_applies_its_records(tmp_path: Path) -> None:
    """A worker restarted on the same cluster whose changelog recovered empty (a Tansu
    quirk) re-reads the partition from offset 0. With a random epoch the ledger's ids of
    the life it is re-building made every record a "re-send": its tallies lost them (an
    outside audit: 15 of 24 villages). Its epoch is the same life's now: the records count
    again in its state, once in the ledger; a new cluster still takes them for re-sends."""
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    day1 = [_shipment(i) for i in range(5)] + [_shipment(5, eps_grams=6000)]
    first = _life(ledger, day1, cluster="tansu-packloop-c1")
    again = _life(ledger, day1, cluster="tansu-packloop-c1")
    assert again.status()["events"] == first.status()["events"]
    assert again.status()["events"]["applied"] == 6
    assert _pickup_ids(again) == _pickup_ids(first) == [f"P-{VILLAGE}-1"]
    assert _month(ledger)["generated_grams"] == {"cardboard": 6 * 200, "eps_foam": 6000}
    fresh = _life(ledger, [*day1, _shipment(6, eps_grams=6000)], cluster="tansu-packloop-c2")
    assert (fresh.status()["events"]["applied"], fresh.status()["events"]["duplicates"]) \
        == (1, 6)
    assert _pickup_ids(fresh) == [f"P-{VILLAGE}-2"]
    month = _month(ledger)
    assert month["generated_grams"] == {"cardboard": 7 * 200, "eps_foam": 12000}
    assert month["pickups"]["requested"] == 2
    ledger.close()


def test_an_apache_cluster_that_came_back_empty_under_its_id_starts_a_new_life(
        tmp_path: Path) -> None:
    """Apache Kafka keeps its cluster id when it comes back empty (a lost volume under a
    fixed CLUSTER_ID): the records of the life before are not there to re-read, so a state
    that starts from nothing is a new life, and a hub's re-sent file counts once (taken
    for the same life, the review found it counted twice and its ledger rows overwritten)."""
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    day1 = [_shipment(i) for i in range(6)]
    _life(ledger, day1, cluster="MkU3OEVBNTcwNTJENDM2Qk")
    again = _life(ledger, [*day1[3:], _shipment(6)], cluster="MkU3OEVBNTcwNTJENDM2Qk")
    assert (again.status()["events"]["applied"], again.status()["events"]["duplicates"]) \
        == (1, 3)
    assert _month(ledger)["generated_grams"] == {"cardboard": 7 * 200}
    ledger.close()


def test_prior_keeps_ids_from_the_day_asked_and_sums_pickups_over_epochs(tmp_path) -> None:
    from streams.ledger import LedgerRow

    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")

    def row(epoch: str, month: str, requested: int, ids: tuple = ()) -> LedgerRow:
        return LedgerRow(STREAM, VILLAGE, "H01", month, epoch, 1,
                         {"pickups": {"requested": requested}}, ids)

    ledger.write([row("a", "2026-10", 2, ((11, 100), (12, 101))),
                  row("a", "2026-11", 1, ((13, 130),))])
    ledger.write([row("b", "2026-11", 4, ((13, 130), (14, 131)))])  # 13 again: kept once
    prior = ledger.prior(STREAM, VILLAGE, 101)
    assert sorted(prior.ids) == [(12, 101), (13, 130), (14, 131)]
    assert prior.pickups_requested == 7
    prior = ledger.prior(STREAM, VILLAGE, 101, "b")  # b starting again: a's only
    assert sorted(prior.ids) == [(12, 101), (13, 130)] and prior.pickups_requested == 3
    assert ledger.prior("another-stream", VILLAGE, 0).ids == ()
    ledger.close()


def test_a_batch_fetches_its_new_villages_priors_ahead_and_in_one_go(tmp_path) -> None:
    """The agent asks the ledger for the batch's new villages before processing (in a
    thread); the processor then uses what was fetched and asks nothing in line."""
    import asyncio
    from types import SimpleNamespace

    from streams.agents.village import fetch_priors
    from streams.ledger import PriorLookup
    from streams.processor import PartitionProcessor
    from streams.state import id_hash

    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    _life(ledger, [_shipment(0)])  # an earlier life applied s-0
    asked: list[dict[str, int]] = []
    lookup = PriorLookup(ledger, STREAM)
    many = lookup.many
    lookup.many = lambda wanted: asked.append(dict(wanted)) or many(wanted)  # type: ignore

    def in_line(_vid: str, _day: int) -> None:
        raise AssertionError("asked in line, in the event loop")

    proc = PartitionProcessor(0, Harness().network, ProcessingConfig(prior=in_line))
    raw = _shipment(0)  # sent again
    msg = SimpleNamespace(key=VILLAGE.encode(), value=raw, partition=0, offset=0)
    asyncio.run(fetch_priors(SimpleNamespace(prior_lookup=lookup), [(proc, msg), (proc, msg)]))
    assert list(asked[0]) == [VILLAGE] and len(asked) == 1
    assert _digest(_shipment(0)) in dict(proc.priors[VILLAGE].ids)
    assert _digest(_shipment(0)) != id_hash("s-0")  # the content's bits, not the id's
    proc.process(0, msg.key, raw, 4_000_000_000 * 1_000_000)
    state = proc.villages[VILLAGE]
    assert (state.applied, state.duplicates) == (0, 1) and not proc.priors
    ledger.close()


def test_a_ledger_that_fails_is_not_asked_again_for_a_while() -> None:
    from streams.ledger import PriorLookup

    calls: list[str] = []

    class Down:
        def prior(self, stream: str, village_id: str, since_day: int, epoch: str) -> Any:
            calls.append(village_id)
            raise OSError("connection refused")

    lookup = PriorLookup(Down(), STREAM, pause_s=60)  # type: ignore[arg-type]
    assert lookup.many({"a": (0, ""), "b": (0, "")}) == {} and calls == ["a", "a"]  # twice
    assert lookup("c", 0) is None and calls == ["a", "a"]  # paused: nothing asked
    lookup._down_until = 0.0
    assert lookup("c", 0) is None and calls == ["a", "a", "c", "c"]


def test_a_restarted_worker_hands_over_the_sealed_ids_it_recovered(tmp_path) -> None:
    """A worker that died after a batch's changelog landed and before its rows reached the
    ledger lost the ids that batch sealed: no later batch carried them. The first handover
    of a process now carries the village's sealed ids too (stored once)."""
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    h = Harness()
    for i in range(6):  # over three days: segments sealed
        h.produce(_shipment(i))
    h.run(0, batch=6)
    h.recover(0)  # the process died before handing anything over; another recovers it
    feed = LedgerFeed(STREAM)
    rows = feed.rows(h.procs[0].villages.values())
    ledger.write(rows)
    feed.written(rows)
    stored = {digest for digest, _day in ledger.prior(STREAM, VILLAGE, 0).ids}
    assert stored == {_digest(_shipment(i)) for i in range(6)}
    assert h.procs[0].villages[VILLAGE].seen.sealed_items()  # some were sealed
    h.produce(_shipment(7))
    h.run(0, batch=6)
    later = feed.rows(h.procs[0].villages.values())
    assert [d for r in later for d, _day in r.ids] == [_digest(_shipment(7))]  # not all again
    ledger.close()


def test_a_pickup_a_timer_raises_reaches_the_ledger(tmp_path: Path) -> None:
    """A village's waste ages past its limit; the pickup is requested when another
    village's event moves the partition's stream time, without an event of its own. The
    ledger kept the row with the higher applied-event count only, so the rewrite carrying
    that pickup was dropped: the archived month said 0 requested where the worker said 1
    (an outside audit: 3 against 4, overdue 0 against 1)."""
    ledger = Ledger(f"sqlite:///{tmp_path}/ledger.db")
    h = Harness()
    feed = LedgerFeed(STREAM)

    def hand_over() -> None:
        rows = feed.rows(h.procs[0].villages.values())
        ledger.write(rows)
        feed.written(rows)

    h.produce(_shipment(0))  # 2026-11-11: 200 g of cardboard at H01-V007
    h.run(0, batch=1)
    hand_over()
    other = orjson.loads(_shipment(1))
    other.update(village_id="H01-V001", event_id="other-1",
                 occurred_at="2026-11-25T08:00:00Z")  # two weeks on, another village
    h.produce(orjson.dumps(other))
    h.run(0, batch=1)
    state = h.procs[0].villages[VILLAGE]
    assert state.pickups_requested == 1 and state.applied == 1  # the timer's, no event
    hand_over()
    [row] = [v for v in ledger.month(STREAM, "2026-11")["villages"]
             if v["village_id"] == VILLAGE]
    assert row["pickups"]["requested"] == 1
    ledger.close()
