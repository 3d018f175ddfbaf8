"""The Faust app factory: everything is passed in, nothing is read from the environment.

``create_worker(kafka, topics, network, options)`` returns a :class:`StreamsWorker`
holding the Faust app, its one table (``villages``: village id -> whole village
state, plus one ``~p{n}`` marker per partition), the village agent and the web
views. ``services.worker_cli`` builds the arguments from the settings object and
runs it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from faust.types import TP

from streams.faust_ext import PackloopApp
from streams.kafka import KafkaConnection
from streams.processor import (
    PartitionMarker,
    PartitionProcessor,
    ProcessingConfig,
    is_marker_key,
    marker_key,
    murmur2_partition,
)
from streams.state import DAY_US, HOUR_US, VillageState
from streams.topics import Topics

log = logging.getLogger("packloop.streams")

TABLE_NAME = "villages"

#: Listener of partition assignment changes: (assigned, revoked) hub-events partitions.
PartitionListener = Callable[[set[int], set[int]], Any]


@dataclass(frozen=True)
class WorkerOptions:
    """Worker knobs; defaults suit the embedded broker on a small machine."""

    app_id: str = "packloop-worker"
    partitions: int = 4
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    #: URL other workers use to reach this one (default http://{web_host}:{web_port})
    canonical_url: str | None = None
    batch_size: int = 10_000
    batch_within_s: float = 0.05
    dedupe_horizon_days: float = 14.0
    future_tolerance_hours: float = 1.0
    standby_replicas: int = 0
    datadir: str | None = None
    #: Faust's commit interval (offsets are a hint here: resume uses the table)
    commit_interval_s: float = 1.0
    producer_linger_ms: int = 5
    #: metrics: keep the village label (False: township level, see streams.metrics)
    metrics_village_label: bool = True
    #: Kafka static group membership (group.instance.id); None: dynamic membership
    group_instance_id: str | None = None

    @property
    def url(self) -> str:
        if self.canonical_url:
            return self.canonical_url.rstrip("/")
        host = self.web_host
        if host in ("0.0.0.0", "", "::"):  # bound to every interface: others use our name
            import socket

            host = socket.getfqdn()
        return f"http://{host}:{self.web_port}"


def now_us() -> int:
    return time.time_ns() // 1000


class Runtime:
    """Processors of the partitions this worker owns, rebuilt after each rebalance."""

    def __init__(
        self,
        worker: StreamsWorker,
        network: Any,
        config: ProcessingConfig,
    ) -> None:
        self.worker = worker
        self.network = network
        self.config = config
        self.processors: dict[int, PartitionProcessor] = {}
        self.assigned: set[int] = set()
        self.listeners: list[PartitionListener] = []
        #: rebalances after which the table was rebuilt behind the committed offset
        self.short_recoveries = 0
        self._lock: asyncio.Lock | None = None

    @property
    def lock(self) -> asyncio.Lock:
        if self._lock is None:
            self._lock = asyncio.Lock()
        return self._lock

    def partition_of(self, key: str) -> int:
        if is_marker_key(key):
            return int(key[2:])
        return murmur2_partition(key.encode("utf-8"), self.config.partitions)

    def processor(self, partition: int) -> PartitionProcessor:
        proc = self.processors.get(partition)
        if proc is None:
            proc = self._build(partition)
            self.processors[partition] = proc
        return proc

    def _build(self, partition: int) -> PartitionProcessor:
        data = self.worker.table.data
        villages: dict[str, VillageState] = {}
        marker: PartitionMarker | None = None
        for key, value in list(data.items()):
            if isinstance(value, VillageState):
                if self.partition_of(key) == partition:
                    villages[key] = value
        m = data.get(marker_key(partition))
        if isinstance(m, PartitionMarker):
            marker = m
        proc = PartitionProcessor(partition, self.network, self.config, villages, marker)
        proc.resume()
        log.info(
            "partition %d: %d villages recovered, marker offset %s",
            partition,
            len(villages),
            proc.marker.offset,
        )
        return proc

    def stream_time(self, partition: int) -> int | None:
        proc = self.processors.get(partition)
        if proc is not None:
            return proc.stream_time
        m = self.worker.table.data.get(marker_key(partition))
        return m.stream_time if isinstance(m, PartitionMarker) else None

    # ---- rebalance hooks (the one place metrics will hang off) ----

    async def seek_positions(self, assignment: Iterable[TP]) -> Mapping[TP, int]:
        """Resume each source partition after the last batch the recovered table holds."""
        topic = self.worker.topics.hub_events
        data = self.worker.table.data
        positions: dict[TP, int] = {}
        committed = getattr(self.worker.app.consumer, "_committed_offset", {}) or {}
        for tp in assignment:
            if tp.topic != topic:
                continue
            m = data.get(marker_key(tp.partition))
            resume = m.offset + 1 if isinstance(m, PartitionMarker) and m.offset >= 0 else None
            done = committed.get(tp)
            if done is not None and (resume or 0) < done:
                # Offsets are committed only once the state is in the changelog, so a
                # table recovered behind the committed offset was rebuilt short (Tansu
                # answers "latest offset" with the start of the last batch + 1). Resume
                # from the recovered state: the records in between are re-applied, and
                # those already in a village value are recognised by its offset.
                self.short_recoveries += 1
                log.warning(
                    "%s: table recovered to offset %s but %s was committed: "
                    "re-applying %s record(s) from the recovered state",
                    tp,
                    (resume or 0) - 1,
                    done - 1,
                    done - (resume or 0),
                )
            if resume is not None:
                positions[tp] = resume
            elif done is not None:
                positions[tp] = 0  # no state at all for this partition: start over
        return positions

    async def on_assigned(self, tps: set[TP]) -> None:
        parts = {tp.partition for tp in tps if tp.topic == self.worker.topics.hub_events}
        async with self.lock:
            # Tables are re-recovered after any rebalance: rebuild processors from them.
            self.processors.clear()
            added = parts - self.assigned
            self.assigned = parts
        self._notify(added, set())

    async def on_revoked(self, tps: set[TP]) -> None:
        parts = {tp.partition for tp in tps if tp.topic == self.worker.topics.hub_events}
        async with self.lock:  # wait for the batch in flight, then stop writing
            await self.worker.wait_changelog()
            for p in parts:
                self.processors.pop(p, None)
            self.assigned -= parts
        self._notify(set(), parts)

    def _notify(self, assigned: set[int], revoked: set[int]) -> None:
        for listener in self.listeners:
            try:
                listener(assigned, revoked)
            except Exception:  # a metrics hook must never stop processing
                log.exception("partition listener failed")


class StreamsWorker:
    """The Faust app with packloop's table, agent and views wired in."""

    def __init__(
        self,
        kafka: KafkaConnection,
        topics: Topics,
        network: Any,
        options: WorkerOptions | None = None,
    ) -> None:
        options = options or WorkerOptions()
        self.kafka = kafka
        self.topics = topics
        self.network = network
        self.options = options
        static_membership: dict[str, Any] = (
            {"consumer_group_instance_id": options.group_instance_id}
            if options.group_instance_id
            else {}
        )
        app = PackloopApp(
            options.app_id,
            broker=kafka.faust_broker_url(),
            broker_credentials=kafka.faust_credentials(),
            broker_session_timeout=kafka.session_timeout_ms / 1000.0,
            broker_heartbeat_interval=max(0.5, kafka.session_timeout_ms / 3000.0),
            broker_request_timeout=max(kafka.request_timeout_ms / 1000.0, 30.0),
            broker_rebalance_timeout=max(kafka.session_timeout_ms / 1000.0, 10.0),
            broker_commit_interval=options.commit_interval_s,
            consumer_auto_offset_reset="earliest",
            store="memory://",
            topic_partitions=options.partitions,
            topic_replication_factor=1,
            table_standby_replicas=options.standby_replicas,
            table_cleanup_interval=3600.0,
            web_enabled=True,
            web_bind=options.web_host,
            web_port=options.web_port,
            web_host=options.web_host,
            canonical_url=options.url,
            producer_linger_ms=options.producer_linger_ms,
            stream_buffer_maxsize=max(4096, options.batch_size * 2),
            broker_max_poll_records=options.batch_size,
            datadir=options.datadir or f"/tmp/packloop-faust-{options.app_id}-{options.web_port}",
            autodiscover=False,
            key_serializer="raw",
            value_serializer="raw",
            **static_membership,
        )
        app.packloop_fetch_max_wait_ms = kafka.fetch_max_wait_ms
        self.app = app
        self.config = ProcessingConfig(
            dedupe_horizon_us=int(options.dedupe_horizon_days * DAY_US),
            future_tolerance_us=int(options.future_tolerance_hours * HOUR_US),
            partitions=options.partitions,
            source_topic=topics.hub_events,
        )
        self.hub_topic = app.topic(
            topics.hub_events,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=options.partitions,
        )
        # Our own changelog topic: Faust derives a table's changelog codecs from
        # key_type/value_type ("json" for anything but bytes), ours are custom.
        changelog = app.topic(
            f"{options.app_id}-{TABLE_NAME}-changelog",
            key_serializer="packloop_utf8",
            value_serializer="packloop_state",
            partitions=options.partitions,
            compacting=True,
            deleting=False,
            acks=False,
            internal=True,
        )
        self.table = app.Table(
            TABLE_NAME,
            default=None,
            partitions=options.partitions,
            changelog_topic=changelog,
            recovery_buffer_size=5000,
        )
        # faust's TableT leaves out the serializer attributes every faust Collection has
        self.table.key_serializer = "packloop_utf8"  # type: ignore[attr-defined]
        self.table.value_serializer = "packloop_state"  # type: ignore[attr-defined]
        self.runtime = Runtime(self, network, self.config)
        self._inflight: list[Any] = []
        self._inflight_offsets: dict[int, int] = {}
        self._durable: dict[int, int] = {}
        self._committed: dict[int, int] = {}
        app.packloop_seek_hook = self.runtime.seek_positions
        self.started_at = time.time()

        # mode types a signal handler as taking any positional arguments; Faust sends these
        # signals a fixed set, the handler form its documentation shows
        @app.on_partitions_assigned.connect  # type: ignore[arg-type]
        async def _assigned(sender: Any, assigned: set[TP], **kw: Any) -> None:
            app.packloop_gate_open = False  # until the seek after table recovery
            app.packloop_final_seek = False
            await self.runtime.on_assigned(assigned)

        @app.on_partitions_revoked.connect  # type: ignore[arg-type]
        async def _revoked(sender: Any, revoked: set[TP], **kw: Any) -> None:
            app.packloop_gate_open = False
            app.packloop_final_seek = False
            await self.runtime.on_revoked(revoked)

        @app.on_rebalance_complete.connect  # type: ignore[arg-type]
        async def _rebalance_complete(sender: Any, **kw: Any) -> None:
            app.packloop_final_seek = True  # the next seek uses the recovered table

        @app.timer(options.commit_interval_s)
        async def _commit_durable() -> None:
            await self.commit_durable()

        from streams.agents import village
        from streams.views import register_views

        village.register(self)
        register_views(self)
        from streams.metrics import install

        install(self)

    # ---- publishing (used by the agent) ----

    async def publish_outbox(self, procs: Iterable[PartitionProcessor]) -> None:
        """Send every pending pickup notice, dead letter and re-route; wait for acks."""
        producer = self.app.producer
        futures = []
        for proc in procs:
            ob = proc.outbox
            if not ob:
                continue
            for vid, value in ob.pickups:
                futures.append(
                    await producer.send(
                        self.topics.pickup_requests, vid.encode("utf-8"), value, None, None, None
                    )
                )
            for dead_vid, value in ob.dead_letters:
                futures.append(
                    await producer.send(
                        self.topics.dead_letter,
                        dead_vid.encode("utf-8") if dead_vid else None,
                        value,
                        None,
                        None,
                        None,
                    )
                )
            for partition, key, value in ob.reroutes:
                futures.append(
                    await producer.send(self.topics.hub_events, key, value, partition, None, None)
                )
            ob.clear()
        if futures:
            await asyncio.gather(*futures)

    async def write_state(self, procs: Iterable[PartitionProcessor]) -> None:
        """Table writes of a finished batch: villages first, the partition marker last.

        Sent straight to the producer (not Faust's one-at-a-time buffer), in order, so
        each changelog partition receives a batch's writes in the order given. The
        previous batch's writes must be acknowledged before a new batch's are sent:
        a failure then stops the worker with the changelog still a prefix of the writes.
        """
        await self.wait_changelog()
        producer = self.app.producer
        topic = self.table.changelog_topic.get_topic_name()
        data = self.table.data
        futures = []
        pending: dict[int, int] = {}
        for proc in procs:
            pending[proc.partition] = proc.marker.offset
            for key, value in proc.checkpoint():
                data[key] = value
                futures.append(
                    await producer.send(
                        topic, key.encode("utf-8"), value.to_bytes(), proc.partition, None, None
                    )
                )
            pending[proc.partition] = proc.marker.offset
        self._inflight = futures
        self._inflight_offsets = pending

    async def wait_changelog(self) -> None:
        inflight, self._inflight = self._inflight, []
        offsets, self._inflight_offsets = self._inflight_offsets, {}
        if inflight:
            try:
                await asyncio.gather(*inflight)
            except Exception as exc:
                log.error("changelog write failed, stopping the worker: %r", exc)
                await self.app.crash(exc)
                raise
        for p, offset in offsets.items():
            if offset >= 0:
                self._durable[p] = offset + 1

    async def commit_durable(self) -> None:
        """Commit, per partition, the offset up to which the state is in the changelog.

        Resuming does not depend on it (the table's marker decides), but lag
        monitoring and tools that read committed offsets see the truth."""
        topic = self.topics.hub_events
        offsets = {
            TP(topic, p): o
            for p, o in self._durable.items()
            if p in self.runtime.assigned and self._committed.get(p) != o
        }
        if not offsets:
            return
        try:
            # private to faust's Consumer, not on the ConsumerT interface
            await self.app.consumer._commit(offsets)  # type: ignore[attr-defined]
            for tp, o in offsets.items():
                self._committed[tp.partition] = o
        except Exception as exc:  # a failed commit only delays lag figures
            log.warning("offset commit failed: %r", exc)

    # ---- running ----

    def run(self, loglevel: str = "info") -> None:
        """Run the worker in this process until SIGTERM/SIGINT."""
        from faust.worker import Worker

        worker = Worker(self.app, loglevel=loglevel, quiet=True)
        worker.execute_from_commandline()


def create_worker(
    kafka: KafkaConnection,
    topics: Topics,
    network: Any,
    options: WorkerOptions | None = None,
) -> StreamsWorker:
    return StreamsWorker(kafka, topics, network, options)
