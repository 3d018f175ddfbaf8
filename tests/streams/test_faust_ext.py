"""The consumer's batch delivery around seeks (``streams.faust_ext``), without a broker.

The race it guards against: a fetch returns on the consumer thread, the final
post-recovery seek moves the partition back and opens the gate, and only then does
the app thread finish collecting that fetch. The records must not reach the hook.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from faust.types import TP

from streams.faust_ext import PackloopApp

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


class Thread:
    """The consumer thread's side of a fetch: the records and the seek counts then."""

    def __init__(self, consumer: Any) -> None:
        self.consumer = consumer

    async def getmany(self, active: Any, timeout: float) -> Any:
        from streams.faust_ext import _Fetched

        fetched = _Fetched(self.consumer.pending)
        fetched.seeks = {tp: self.consumer.packloop_seeks.get(tp, 0) for tp in fetched}
        return fetched


def drive(rounds: list[tuple[dict[TP, list[int]], Any]]) -> list[list[tuple[int, int]]]:
    """Run the drain loop over ``rounds`` of (fetched offsets, what happens after the
    fetch returned and before the app thread has collected it) and return what the
    hook was given, as (partition, offset) per batch."""

    async def main() -> list[list[tuple[int, int]]]:
        app = PackloopApp("faust-ext-test", broker="kafka://127.0.0.1:1", autodiscover=False)
        consumer: Any = app.consumer
        delivered: list[list[tuple[int, int]]] = []

        async def hook(batch: list[Msg]) -> None:
            delivered.append([(m.tp.partition, m.offset) for m in batch])

        app.packloop_batch_topic = TOPIC
        app.packloop_batch_hook = hook
        consumer._thread = Thread(consumer)
        todo = list(rounds)

        async def getmany(timeout: float) -> Any:
            offsets, meanwhile = todo.pop(0)
            consumer.pending = {tp: [Msg(tp, o) for o in offs] for tp, offs in offsets.items()}
            await consumer._getmany(None, timeout)  # the fetch returns...
            if meanwhile is not None:
                meanwhile(app, consumer)  # ...then the app thread is overtaken
            for tp, msgs in consumer.pending.items():
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
    def seek(app: Any, consumer: Any) -> None:
        for tp, offset in to.items():
            consumer.count_seek(tp)
            consumer._read_offset[tp] = offset
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
