"""The village agent: validation, dedupe, waste tallies, pickup trigger and container
pool in one pass over ``hub-events``.

One agent (not one per concern) because each village's whole state is one table
value: the dedupe marker, the tallies, the pickup state machine and the container
pool change together in a single changelog record. Separate agents would need
separate tables whose changelogs could recover to different points. The logic is
split by concern in :mod:`streams.state` (pure, unit-tested) instead.

Batches (``take_events``) amortise the table writes: a village touched by many
events in a batch is written once. The topic is already keyed by village, so there
is no ``group_by`` repartition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from streams.processor import PartitionProcessor

if TYPE_CHECKING:
    from streams.app import StreamsWorker


def register(worker: StreamsWorker) -> Any:
    from streams.app import now_us

    app = worker.app
    runtime = worker.runtime
    options = worker.options

    @app.agent(worker.hub_topic, name="packloop.village")
    async def village_agent(stream: Any) -> None:
        async for events in stream.take_events(options.batch_size, within=options.batch_within_s):
            async with runtime.lock:
                generation = app.consumer_generation_id
                wall = now_us()
                touched: dict[int, PartitionProcessor] = {}
                for event in events:
                    msg = event.message
                    if msg.partition not in runtime.assigned:
                        continue  # revoked while buffered: its new owner processes it
                    if msg.generation_id is not None and msg.generation_id != generation:
                        continue  # fetched before a rebalance; re-read after the seek
                    proc = touched.get(msg.partition)
                    if proc is None:
                        proc = touched[msg.partition] = runtime.processor(msg.partition)
                    proc.process(msg.offset, msg.key, msg.value, wall)
                if touched:
                    await worker.publish_outbox(touched.values())
                    worker.write_state(touched.values())

    return village_agent
