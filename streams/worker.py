"""The worker around the Faust app: its one table, and how a batch's results leave it.

:class:`StreamsWorker` owns the ``villages`` table (village id -> whole village state,
plus one ``~p{n}`` marker per partition), the :class:`~streams.runtime.Runtime` of the
partitions it owns, and the two ordered steps that end every batch: publish the
outbox and wait for the acks, then write the table (see :mod:`streams.processor`
for why in that order). The app factory (:mod:`streams.app`) builds it and registers
the agent, the views and ``/metrics`` on it.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from faust.types import TP

from streams.cluster_watch import ClusterUnanswered
from streams.ledger import LedgerFeed, LedgerRow, LedgerWriter, PriorLookup
from streams.log_repeats import RepeatFilter
from streams.processor import PartitionProcessor, ProcessingConfig
from streams.runtime import Runtime
from streams.state import DAY_US, SealedIds, VillageState, encode_value
from streams.topics import Topics

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from streams.app import WorkerOptions
    from streams.cluster_watch import ClusterWatch
    from streams.faust_ext import PackloopApp

log = logging.getLogger("packloop.streams")

TABLE_NAME = "villages"

#: seconds between asks of a cluster that did not answer, before a batch's writes
CLUSTER_RETRY_S = 1.0
#: how long a batch waits for that answer before its writes go ahead unchecked
CLUSTER_WAIT_MAX_S = 300.0


class StreamsWorker:
    """The Faust app with packloop's table, its partitions' processors and the writes
    that end a batch."""

    def __init__(
        self, app: PackloopApp, topics: Topics, network: Any, options: WorkerOptions,
        ledger: LedgerWriter | None = None, cluster: ClusterWatch | None = None,
    ) -> None:
        self.app = app
        self.cluster = cluster
        self.ledger = ledger
        self._ledger_feed = LedgerFeed(options.app_id)
        #: what the ledger holds of villages whose state starts from nothing
        self.prior_lookup = None if ledger is None else PriorLookup(ledger, options.app_id)
        #: rows waiting for their changelog writes to be acknowledged, oldest first
        self._ledger_pending: list[tuple[list[Any], list[LedgerRow]]] = []
        self.topics = topics
        self.network = network
        self.options = options
        limits = options.acceptance
        self.config = ProcessingConfig(
            dedupe_horizon_us=max(
                limits.dedupe_horizon_us, int((options.dedupe_horizon_days or 0) * DAY_US)
            ),
            future_tolerance_us=limits.future_tolerance_us,
            partitions=options.partitions,
            source_topic=topics.hub_events,
            prior=self.prior_lookup,
            cluster_id=options.cluster_id or (None if cluster is None else cluster.expected),
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
        #: packloop's and Faust's metrics, set when ``/metrics`` is installed
        self.metrics_registry: CollectorRegistry | None = None
        self._inflight: list[Any] = []
        self._inflight_offsets: dict[int, int] = {}
        self._durable: dict[int, int] = {}
        self._committed: dict[int, int] = {}
        app.packloop_seek_hook = self.runtime.seek_positions
        self._connect_signals()

    def _connect_signals(self) -> None:
        app = self.app
        runtime = self.runtime

        # mode types a signal handler as taking any positional arguments; Faust sends these
        # signals a fixed set, the handler form its documentation shows
        @app.on_partitions_assigned.connect  # type: ignore[arg-type]
        async def _assigned(sender: Any, assigned: set[TP], **kw: Any) -> None:
            app.packloop_gate_open = False  # until the seek after table recovery
            app.packloop_final_seek = False
            # Taken on before anything else is awaited: Faust recovers the table in a task
            # of its own, and its seek opens the gate whenever recovery is done. With the
            # cluster check (a thread, a new admin client: seconds on a loaded machine)
            # first, a batch could come through the open gate before these partitions were
            # known as owned, and was skipped as a revoked partition's, its offsets passed
            # for good (the new cluster's first 800 events, CI runs of sessions 21 and 22).
            await runtime.on_assigned(assigned)
            # A broker restarted empty makes the group rejoin: a worker holding the old
            # cluster's state stops here, and a batch that comes first is not written
            # (`process_batch` checks the cluster before its writes).
            await self.check_cluster()

        @app.on_partitions_revoked.connect  # type: ignore[arg-type]
        async def _revoked(sender: Any, revoked: set[TP], **kw: Any) -> None:
            app.packloop_gate_open = False
            app.packloop_final_seek = False
            await runtime.on_revoked(revoked)

        @app.on_rebalance_complete.connect  # type: ignore[arg-type]
        async def _rebalance_complete(sender: Any, **kw: Any) -> None:
            app.packloop_final_seek = True  # the next seek uses the recovered table

        @app.timer(self.options.commit_interval_s)
        async def _commit_durable() -> None:
            await self.commit_durable()
            await self.flush_ledger()

        if self.cluster is not None and self.options.cluster_check_interval_s > 0:
            @app.timer(self.options.cluster_check_interval_s)
            async def _same_cluster() -> None:
                await self.check_cluster()

    async def check_cluster(self, before_writes: bool = False) -> bool:
        """Stop the worker when the broker is now another cluster (`streams.cluster_watch`):
        its state and markers belong to the old one. False when it stops. Asked on a timer,
        after partitions are taken on, and before each batch's writes (one metadata round
        trip a batch).

        Before writes an answer is required: a broker that cannot be asked is waited for
        (and False if the worker stops meanwhile). Taken for "no change", the writes of a
        batch checked while the embedded broker was restarting were retried by the
        producer until the new, empty cluster took them, old markers included, and the
        next worker skipped the new cluster's events below them (found by a review)."""
        if self.cluster is None:
            return True
        waited_s = 0.0
        while True:
            try:
                changed = await asyncio.to_thread(self.cluster.check, before_writes)
                break
            except ClusterUnanswered:
                if self.app.should_stop:
                    return False
                if waited_s >= CLUSTER_WAIT_MAX_S:
                    # not for ever: the batch holds the lock, and with it every rebalance,
                    # and a cluster that answered once may stop answering for good (its
                    # permission to describe it withdrawn). A restart of the embedded
                    # broker is over in seconds; so long a silence is something else.
                    log.error("the Kafka cluster has not answered its id for %.0f s: this "
                              "batch's writes go ahead unchecked", waited_s)
                    return True
                if waited_s == 0.0:
                    log.warning("the Kafka cluster cannot be asked its id: this batch's "
                                "writes wait until it answers")
                await asyncio.sleep(CLUSTER_RETRY_S)
                waited_s += CLUSTER_RETRY_S
        if changed is None:
            if waited_s:
                log.info("the Kafka cluster answered after %.0f s: the same one", waited_s)
            return True
        log.critical("%s", changed)
        await self.app.crash(changed)
        return False

    # ---- the end of a batch (called by the agent) ----

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
        villages: list[VillageState] = []
        sealed: list[SealedIds] = []
        for proc in procs:
            for key, value in proc.checkpoint():
                if value is None:  # a tombstone: compaction drops the key
                    data.pop(key, None)
                    raw = None
                else:
                    data[key] = value
                    raw = encode_value(value)
                    if isinstance(value, VillageState):
                        villages.append(value)
                    elif isinstance(value, SealedIds):
                        sealed.append(value)
                futures.append(
                    await producer.send(
                        topic, key.encode("utf-8"), raw, proc.partition, None, None
                    )
                )
            pending[proc.partition] = proc.marker.offset
        self._inflight = futures
        self._inflight_offsets = pending
        if self.ledger is not None and villages:
            rows = self._ledger_feed.rows(villages, sealed)
            if rows:
                self._ledger_pending.append((futures, rows))

    async def flush_ledger(self) -> None:
        """Hand the ledger the rows whose changelog writes are acknowledged (a row never
        gets ahead of the state a restart would recover); a failed write is tried again
        with the next flush, and never stops the stream."""
        if self.ledger is None:
            return
        ready: list[LedgerRow] = []
        while self._ledger_pending:
            futures, rows = self._ledger_pending[0]
            if not all(f.done() for f in futures):
                break
            self._ledger_pending.pop(0)
            if any(f.cancelled() or f.exception() is not None for f in futures):
                continue  # the worker stops on a failed changelog write
            ready.extend(rows)
        if not ready:
            return
        try:
            await asyncio.to_thread(self.ledger.write, ready)
        except Exception as exc:  # noqa: BLE001 - the ledger catches up with the next rows
            log.warning("ledger write failed, retrying with the next flush: %r", exc)
            self._ledger_pending.insert(0, ([], ready))
            return
        self._ledger_feed.written(ready)

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

    def run(self, loglevel: str = "info") -> None:
        """Run the worker in this process until SIGTERM/SIGINT."""
        worker = bounded_stop_worker(self.options.stop_timeout_s)(
            self.app, loglevel=loglevel, quiet=True)
        worker.execute_from_commandline()


#: exit status of a stop that ran out of time, or of a second signal (EX_TEMPFAIL: try again)
STOP_TIMEOUT_EXIT = 75


def bounded_stop_worker(timeout_s: float) -> type[Any]:
    """Faust's Worker whose stop on SIGTERM/SIGINT ends within ``timeout_s``: Faust waits on
    the broker to stop its consumer and producer, so with Kafka down a worker never exited
    until SIGKILL (measured past 70 s). Exiting without that is safe: offsets are only a
    hint, the table and its changelog decide where the next start resumes, and an event
    read twice is counted once. A second signal exits at once, as Ctrl-C twice does in
    most servers."""
    import os
    import signal as _signal

    from faust.worker import Worker

    class BoundedStopWorker(Worker):
        def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
            super().on_setup_root_logger(logger, level)
            quiet_repeats(logger)

        def _schedule_shutdown(self, signum: _signal.Signals) -> None:
            if self._signal_stop_time:
                log.warning("second %s: exiting now", signum.name)
                os._exit(STOP_TIMEOUT_EXIT)

            def give_up() -> None:
                log.error("stop did not finish within %.0f s (Kafka unreachable?): exiting; "
                          "the next start resumes from the table", timeout_s)
                logging.shutdown()
                os._exit(STOP_TIMEOUT_EXIT)

            timer = threading.Timer(timeout_s, give_up)
            timer.daemon = True
            timer.start()
            super()._schedule_shutdown(signum)

    return BoundedStopWorker


def quiet_repeats(root: logging.Logger) -> None:
    """Rate-limit repeated messages on every handler of ``root`` (:class:`RepeatFilter`),
    and log an exception that ends a thread as one record.

    Python reports such an exception on ``sys.stderr``, which Faust's worker turns into a
    log record for every ``write``, so a traceback came out as one ``[WARNING]`` line per
    fragment (``^``, ``.``, ``CancelledError``): aiokafka's consumer thread ends with a
    ``CancelledError`` when it is stopped while Kafka is unreachable (its fetcher awaits
    a task it has just cancelled).
    """
    for handler in root.handlers:
        if not any(isinstance(f, RepeatFilter) for f in handler.filters):
            handler.addFilter(RepeatFilter())
    threading.excepthook = _log_thread_exception


def _log_thread_exception(args: threading.ExceptHookArgs) -> None:
    name = args.thread.name if args.thread is not None else "?"
    if args.exc_type is SystemExit:
        return  # as Python's own hook: a thread may end itself so
    if args.exc_type is asyncio.CancelledError:
        log.warning("thread %s ended with CancelledError (aiokafka's consumer does when it is "
                    "stopped while Kafka is unreachable)", name)
        return
    log.error("thread %s ended with an exception", name, exc_info=args.exc_value)
