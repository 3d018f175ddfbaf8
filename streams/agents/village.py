"""The village agent: validation, dedupe, waste tallies, pickup trigger and container
pool in one pass over ``hub-events``.

One agent (not one per concern) because each village's whole state is one table
value: the dedupe marker, the tallies, the pickup state machine and the container
pool change together in a single changelog record. Separate agents would need
separate tables whose changelogs could recover to different points. The logic is
split by concern in :mod:`streams.state` (pure, unit-tested) instead.

Records arrive in whole fetches (:meth:`streams.faust_ext._Consumer._drain_messages`
hands them to :func:`process_batch`), so a village touched by many events in a
fetch is written once. The Faust agent below subscribes the topic and is the
fallback path (``take_events``) when the batch hook is not installed. The topic is
already keyed by village: no ``group_by`` repartition.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from faust.types import TP

from streams.processor import PartitionProcessor, village_epoch
from streams.state import to_us

if TYPE_CHECKING:
    from streams.worker import StreamsWorker

log = logging.getLogger("packloop.streams")


def _occurred_at_us(value: bytes | None) -> int | None:
    """The record's ``occurred_at`` in µs, read cheaply (None when it cannot be)."""
    try:
        return to_us(datetime.fromisoformat(orjson.loads(value or b"")["occurred_at"]))
    except Exception:  # noqa: BLE001 - the processor says what is wrong with it
        return None


async def fetch_priors(worker: StreamsWorker, batch: list[tuple[PartitionProcessor, Any]]
                       ) -> None:
    """The ledger's Priors of the villages new to this batch, asked in a thread: a
    database query per new village in the event loop held Kafka's heartbeats (every
    village is new after an embedded broker restarted empty)."""
    lookup = worker.prior_lookup
    if lookup is None:
        return
    wanted: dict[str, tuple[PartitionProcessor, int]] = {}
    for proc, msg in batch:
        vid = msg.key.decode("utf-8", "replace") if msg.key else None
        if not vid or vid in proc.villages or vid in proc.priors:
            continue
        at = _occurred_at_us(msg.value)
        if at is not None:  # the earliest of its records: any of them may be the first applied
            day = proc.since_day(at)
            if vid not in wanted or day < wanted[vid][1]:
                wanted[vid] = (proc, day)
    if not wanted:
        return
    found = await asyncio.to_thread(lookup.many, {
        v: (day, village_epoch(p.config.cluster_id, v)) for v, (p, day) in wanted.items()})
    for vid, prior in found.items():
        wanted[vid][0].priors[vid] = prior


async def process_batch(worker: StreamsWorker, messages: Iterable[Any]) -> None:
    """Apply one batch of source records; publish, then write state (see processor)."""
    runtime = worker.runtime
    app = worker.app
    async with runtime.lock:
        generation = app.consumer_generation_id
        wall = time.time_ns() // 1000  # µs: only to refuse events from the future
        touched: dict[int, PartitionProcessor] = {}
        batch: list[tuple[PartitionProcessor, Any]] = []
        not_owned = stale = 0
        for msg in messages:
            if msg.partition not in runtime.assigned:
                not_owned += 1
                continue  # revoked while buffered: its new owner processes it
            if msg.generation_id is not None and msg.generation_id != generation:
                stale += 1
                continue  # fetched before a rebalance; re-read after the seek
            proc = touched.get(msg.partition)
            if proc is None:
                proc = touched[msg.partition] = runtime.processor(msg.partition)
            batch.append((proc, msg))
        if not_owned or stale:
            # said, because records skipped here are not read again by this worker
            log.info("%d record(s) of partitions no longer owned and %d fetched before the "
                     "last rebalance skipped (owned now: %s)", not_owned, stale,
                     sorted(runtime.assigned))
        await fetch_priors(worker, batch)
        for proc, msg in batch:
            proc.process(msg.offset, msg.key, msg.value, wall)
        for proc in touched.values():
            proc.priors.clear()  # of villages whose events were refused before their state
        if touched:
            # Faust's slow-processing checks read the monitor's inbound times, which
            # its stream path would set; records do not take that path here.
            monitor = app.monitor
            if monitor is not None:
                now = time.monotonic()
                topic = worker.topics.hub_events
                for p in touched:
                    monitor.stream_inbound_time[TP(topic, p)] = now
            # nothing of a batch is written to a broker that is now another cluster (the
            # embedded one restarted empty): the old state and markers would land in the
            # new cluster's changelog, and its events below the old markers be skipped
            # for good (800 of 2,000, seen in CI, with only the timer's check)
            if not await worker.check_cluster(before_writes=True):
                return
            await worker.publish_outbox(touched.values())
            await worker.write_state(touched.values())


def register(worker: StreamsWorker) -> Any:
    """Subscribe the agent and hand whole fetches to :func:`process_batch`."""
    app = worker.app
    options = worker.options

    async def batch_hook(messages: list[Any]) -> None:
        await process_batch(worker, messages)

    app.packloop_batch_topic = worker.topics.hub_events
    app.packloop_batch_hook = batch_hook

    @app.agent(worker.hub_topic, name="packloop.village")
    async def village_agent(stream: Any) -> None:
        async for events in stream.take_events(options.batch_size, within=options.batch_within_s):
            await process_batch(worker, [e.message for e in events])

    return village_agent
