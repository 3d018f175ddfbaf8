"""The consumer's batch delivery around seeks (``streams.faust_ext``), without a broker.

The races it guards against: a fetch returns on the consumer thread, the final
post-recovery seek moves the partition back and opens the gate, and only then does
the app thread finish collecting that fetch (those records must not reach the hook);
and records the closed gate drops while the final seek runs (they must be read again).
The consumer thread's own methods (`_fetch_records`, `_seek_wait`,
`_seek_to_committed`) run here against a stand-in for aiokafka's consumer.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from faust.types import TP

from streams.faust_ext import PackloopApp, _ConsumerThread

TOPIC = "t-hub-events"
HUB0 = TP(TOPIC, 0)
HUB1 = TP(TOPIC, 1)


@dataclass
class Msg:
    tp: TP
    offset: int

    @property
    def topic(self) -> str:
        return self.tp.topic


class FakeKafka:
    """What the consumer thread uses of aiokafka's consumer: fetches hand out `fetches` in
    turn; seeks are logged; `on_position` runs while a seek waits for its positions."""

    _max_poll_records = 500
    _closed = False

    def __init__(self, assigned: set[TP], committed: dict[TP, int] | None = None) -> None:
        self.assigned = assigned
        self.committed_offsets = committed or {}
        self.fetches: list[dict[TP, list[Msg]]] = []
        self.seeks: list[tuple[TP, int]] = []
        self.on_position: Any = None
        self._fetcher = SimpleNamespace(
            _closed=False, fetched_records=self._fetched,
            _subscriptions=SimpleNamespace(fetch_context=contextlib.nullcontext))

    async def _fetched(self, active: Any, timeout: Any = None, max_records: Any = None) -> Any:
        return self.fetches.pop(0) if self.fetches else {}

    def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))

    async def position(self, tp: TP) -> int:
        if self.on_position is not None:
            hook, self.on_position = self.on_position, None
            hook()
        return 0

    def assignment(self) -> set[TP]:
        return set(self.assigned)

    async def committed(self, tp: TP) -> int | None:
        return self.committed_offsets.get(tp)


def consumer_of(app: PackloopApp, kafka: FakeKafka) -> Any:
    """The app's consumer with a real `_ConsumerThread` whose calls run inline."""
    consumer: Any = app.consumer
    thread: Any = _ConsumerThread.__new__(_ConsumerThread)

    async def call_thread(fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await fn(*args, **kwargs)

    thread.__dict__.update(consumer=consumer, app=app, _consumer=kafka,
                           call_thread=call_thread)
    consumer._thread = thread
    consumer.assignment = lambda: set(kafka.assigned)
    return consumer


def drive(rounds: list[tuple[dict[TP, list[int]], Any]]) -> list[list[tuple[int, int]]]:
    """Run the drain loop over `rounds` of (fetched offsets, a coroutine function run after
    the fetch returned and before the app thread has collected it) and return what the
    hook was given, as (partition, offset) per batch."""

    async def main() -> list[list[tuple[int, int]]]:
        app = PackloopApp("faust-ext-test", broker="kafka://127.0.0.1:1", autodiscover=False)
        kafka = FakeKafka({HUB0, HUB1})
        consumer = consumer_of(app, kafka)
        delivered: list[list[tuple[int, int]]] = []

        async def hook(batch: list[Msg]) -> None:
            delivered.append([(m.tp.partition, m.offset) for m in batch])

        app.packloop_batch_topic = TOPIC
        app.packloop_batch_hook = hook
        todo = list(rounds)

        async def getmany(timeout: float) -> Any:
            offsets, meanwhile = todo.pop(0)
            kafka.fetches.append({tp: [Msg(tp, o) for o in offs] for tp, offs in offsets.items()})
            fetched = await consumer._getmany({HUB0, HUB1}, timeout)  # the fetch returns...
            if meanwhile is not None:
                await meanwhile(app, consumer)  # ...then the app thread is overtaken
            for tp, msgs in fetched.items():
                for m in msgs:
                    yield tp, m
            if not todo:
                consumer._stopped.set()

        consumer.getmany = getmany

        class Fetcher:
            _stopped = asyncio.Event()

        await consumer._drain_messages(Fetcher())
        return delivered

    return asyncio.run(main())


def final_seek(to: dict[TP, int]) -> Any:
    async def seek(app: Any, consumer: Any) -> None:
        await consumer.seek_wait(to)  # through the consumer thread's _seek_wait
        app.packloop_gate_open = True

    return seek


def test_a_fetch_overtaken_by_the_final_seek_is_not_delivered() -> None:
    delivered = drive([
        # fetched from the position before recovery (partition 0 at 900), while the
        # post-recovery seek sends partition 0 back to 500 and opens the gate
        ({HUB0: [900, 901], HUB1: [40]}, final_seek({HUB0: 500})),
        # the fetches after the seek: from 500 on
        ({HUB0: [500, 501]}, None),
        ({HUB0: [502], HUB1: [41]}, None),
    ])
    # partition 1 was not sought: its record of the first fetch is in order and kept
    assert delivered == [[(1, 40)], [(0, 500), (0, 501)], [(0, 502), (1, 41)]]


def test_fetches_without_a_seek_between_are_all_delivered() -> None:
    delivered = drive([
        ({HUB0: [10, 11]}, None),
        ({HUB0: [12], HUB1: [3]}, None),
    ])
    assert delivered == [[(0, 10), (0, 11)], [(0, 12), (1, 3)]]


def test_the_final_seek_reads_again_what_the_gate_dropped_while_it_ran() -> None:
    """Partition 0 resumes from the recovered state (offset 500). Partition 1 has no state
    and no committed offset; while the seek runs, the closed gate drops a fetch of it from
    offset 77 (the position the seek did not touch has moved past it). The gate opens only
    after partition 1 is sought back to 77."""

    async def main() -> tuple[list[tuple[TP, int]], bool]:
        app = PackloopApp("faust-ext-test", broker="kafka://127.0.0.1:1", autodiscover=False)
        kafka = FakeKafka({HUB0, HUB1}, committed={HUB0: 450})
        consumer = consumer_of(app, kafka)

        async def positions(assignment: Any) -> dict[TP, int]:
            return {HUB0: 500}

        app.packloop_seek_hook = positions
        app.packloop_gate_open = False
        app.packloop_final_seek = True

        def gate_drops_a_fetch() -> None:
            consumer.__dict__.setdefault("_packloop_dropped", {})[HUB1] = 77

        kafka.on_position = gate_drops_a_fetch
        await consumer.perform_seek()
        return kafka.seeks, app.packloop_gate_open

    seeks, gate_open = asyncio.run(main())
    # Faust's seek to the committed offset, the recovered state's, then the dropped records'
    assert seeks == [(HUB0, 450), (HUB0, 500), (HUB1, 77)]
    assert gate_open


def test_the_final_seek_never_sends_a_partition_past_its_recovered_position() -> None:
    """A fetch that returned on the consumer thread after Faust's seek to the committed
    offset and before the final seek ran there, collected by the drain loop after
    `perform_seek` had cleared what was dropped: it looked like a drop after the seek,
    from offset 1300, and the partition was sought there, past the recovered position
    (300), so 300-1299 were never read (found by a review of the seek path)."""

    async def main() -> tuple[list[Any], list[Any], bool]:
        app = PackloopApp("faust-ext-test", broker="kafka://127.0.0.1:1", autodiscover=False)
        kafka = FakeKafka({HUB0}, committed={HUB0: 300})
        consumer = consumer_of(app, kafka)
        seek_queued = asyncio.Event()
        fetch_collected = asyncio.Event()
        inline = consumer._thread.call_thread

        async def call_thread(fn: Any, *args: Any, **kw: Any) -> Any:
            if getattr(fn, "__name__", "") == "_seek_wait":
                seek_queued.set()  # the final seek is queued to the consumer thread ...
                await fetch_collected.wait()  # ... which runs it a moment later
            return await inline(fn, *args, **kw)

        consumer._thread.call_thread = call_thread

        async def positions(assignment: Any) -> dict[TP, int]:
            return {HUB0: 300}  # recovered marker 299

        delivered: list[Any] = []

        async def hook(batch: list[Msg]) -> None:
            delivered.append([m.offset for m in batch])

        app.packloop_seek_hook = positions
        app.packloop_batch_topic = HUB0.topic
        app.packloop_batch_hook = hook
        app.packloop_gate_open = False
        app.packloop_final_seek = True
        rounds = [0]

        async def getmany(timeout: float) -> Any:
            rounds[0] += 1
            if rounds[0] == 1:
                await seek_queued.wait()
                # returned on the consumer thread before the queued seek ran there
                kafka.fetches.append({HUB0: [Msg(HUB0, o) for o in (1300, 1301)]})
                fetched = await consumer._getmany({HUB0}, timeout)
                for tp, msgs in fetched.items():
                    for m in msgs:
                        yield tp, m
            else:
                fetch_collected.set()
                consumer._stopped.set()
                await asyncio.sleep(0)

        consumer.getmany = getmany
        fetcher = SimpleNamespace(_stopped=asyncio.Event())
        await asyncio.gather(consumer.perform_seek(), consumer._drain_messages(fetcher))
        return kafka.seeks, delivered, app.packloop_gate_open

    seeks, delivered, gate_open = asyncio.run(main())
    assert all(offset <= 300 for tp, offset in seeks if tp == HUB0), seeks
    assert seeks[-1] == (HUB0, 300) and gate_open
    assert not delivered  # the crossing fetch went nowhere: it is read again from 300
