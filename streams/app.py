"""The Faust app factory: everything is passed in, nothing is read from the environment.

``create_worker(kafka, topics, network, options)`` builds the Faust app from the
options, wraps it in a :class:`~streams.worker.StreamsWorker` (the table and the
partitions' processors) and registers on it, in this order, the village agent
(:mod:`streams.agents.village`), the state queries (:mod:`streams.views`) and
``/metrics`` (:mod:`streams.metrics`). Each of those is handed the worker; none
imports this module. ``services`` builds the arguments from its settings and runs the
worker.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from streams import metrics, views
from streams.acceptance import AcceptanceLimits
from streams.agents import village
from streams.cluster_watch import ClusterWatch
from streams.faust_ext import PackloopApp
from streams.kafka import KafkaConnection
from streams.ledger import LedgerWriter
from streams.topics import Topics
from streams.worker import StreamsWorker


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
    #: the backlog a hub may upload: events up to this far behind are applied exactly
    #: once (the dedupe horizon follows from it, see streams.acceptance)
    max_lateness_days: float = 90.0
    #: events dated further ahead of the wall clock are dead-lettered
    future_tolerance_hours: float = 1.0
    #: consumer lag (plus clock skew) the lateness guarantee absorbs
    delivery_margin_days: float = 2.0
    #: a wider dedupe horizon than the lateness needs (None or less: what it needs)
    dedupe_horizon_days: float | None = None
    standby_replicas: int = 0
    datadir: str | None = None
    #: Faust's commit interval (offsets are a hint here: resume uses the table)
    commit_interval_s: float = 1.0
    producer_linger_ms: int = 5
    #: metrics: keep the village label (False: township level, see streams.metrics)
    metrics_village_label: bool = True
    #: Kafka static group membership (group.instance.id); None: dynamic membership
    group_instance_id: str | None = None
    #: also serve Faust's own ``faust_*`` metrics on ``/metrics`` (about 150 series)
    metrics_faust: bool = False
    #: seconds a SIGTERM/SIGINT stop may take before the process exits anyway (Faust's
    #: stop waits on the broker; with it gone the worker never stopped)
    stop_timeout_s: float = 20.0
    #: copies of each changelog partition Faust creates (1: the embedded broker's one node)
    replication_factor: int = 1
    #: seconds between checks that the broker is still the cluster the state came from
    #: (`streams.cluster_watch`; 0: no checks)
    cluster_check_interval_s: float = 2.0
    #: the cluster id the broker gave when the worker started (None: not known): villages'
    #: epochs come from it (`streams.processor.village_epoch`), checks on or off
    cluster_id: str | None = None

    @property
    def acceptance(self) -> AcceptanceLimits:
        """The limits the gateway and ``emit`` must check with (same numbers as here)."""
        return AcceptanceLimits(
            max_lateness_days=self.max_lateness_days,
            future_tolerance_hours=self.future_tolerance_hours,
            delivery_margin_days=self.delivery_margin_days,
        )

    @property
    def url(self) -> str:
        if self.canonical_url:
            return self.canonical_url.rstrip("/")
        host = self.web_host
        if host in ("0.0.0.0", "", "::"):  # bound to every interface: others use our name
            host = socket.getfqdn()
        return f"http://{host}:{self.web_port}"


def faust_app(kafka: KafkaConnection, options: WorkerOptions) -> PackloopApp:
    """The Faust app of a worker: connection, group, web server and codecs."""
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
        topic_replication_factor=options.replication_factor,
        table_standby_replicas=options.standby_replicas,
        table_cleanup_interval=3600.0,
        # The check compares a RocksDB file's offsets with the changelog's end; packloop
        # keeps tables in memory and its partition marker decides where state resumes.
        # On Tansu, whose end offset is the start of the last batch + 1, a recovery
        # restarted by a rebalance had read past that "end" and crashed both workers of
        # the 30-minute chaos soak with ConsistencyError.
        recovery_consistency_check=False,
        web_enabled=True,
        # Faust's /table/ views serve the raw table (every village's state and dedupe
        # digests, a 500 on a village key: an outside audit); packloop's own views are
        # the read side. /router stays: @table_route forwards through the same routing
        web_tables_enabled=False,
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
    return app


def create_worker(
    kafka: KafkaConnection,
    topics: Topics,
    network: Any,
    options: WorkerOptions | None = None,
    ledger: LedgerWriter | None = None,
    cluster: ClusterWatch | None = None,
) -> StreamsWorker:
    """A worker ready to :meth:`~streams.worker.StreamsWorker.run`; `ledger` receives each
    village's monthly figures once they are in the changelog (`streams.ledger`); `cluster`
    stops it when the broker turns into another cluster (`streams.cluster_watch`).

    The agent is registered before ``/metrics`` because the metrics wrap its batch hook
    to time each batch.
    """
    options = options or WorkerOptions()
    worker = StreamsWorker(faust_app(kafka, options), topics, network, options, ledger,
                           cluster)
    village.register(worker)
    local = views.register_views(worker)
    worker.metrics_registry = metrics.install(worker, local)
    return worker
