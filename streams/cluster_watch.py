"""Which Kafka cluster a worker's state belongs to, and noticing when the broker turns
into another one.

A worker's table and partition markers describe one cluster's topics. The embedded
broker keeps everything in memory, so restarted it is a new, empty cluster on the same
address: its hub-events start again at offset 0, below every marker, and a worker left
running skipped each new event as one it had already applied. Nothing said so (half a
simulated day, 13,845 events, went uncounted). On Apache Kafka the same happens when a
worker is pointed at another cluster behind the same address.

So a worker stops when the cluster id it started with changes; started again, it
rebuilds its state from the new cluster's changelogs and reads hub-events from there.
Stopping, not carrying on with a reset, because the table Faust holds cannot be
re-pointed in place; a supervisor (compose, Kubernetes, systemd) restarts the worker.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.kafka import KafkaConnection

log = logging.getLogger("packloop.streams")


class ClusterChanged(RuntimeError):
    """The broker now answers as another cluster than the worker's state came from."""

    def __init__(self, expected: str, found: str) -> None:
        super().__init__(
            f"the Kafka cluster changed under this worker (cluster id {expected!r} -> "
            f"{found!r}: the broker was restarted empty, as the embedded broker is, or "
            "replaced); its state belongs to the old cluster, so it stops rather than skip "
            "the new cluster's events as already applied. Start the worker again: it "
            "rebuilds its state from the new cluster.")
        self.expected = expected
        self.found = found


class ClusterUnanswered(RuntimeError):
    """The broker could not be asked its cluster id now (it is down or restarting)."""


def cluster_id(kafka: KafkaConnection) -> str | None:
    """The cluster id the broker reports, or None when it cannot be asked now."""
    return ClusterWatch(kafka).current(close=True)


class ClusterWatch:
    """The cluster id a worker started with, checked again on demand (blocking: call it
    from a thread). A broker that cannot be asked is not a change (the worker's Kafka
    client reports outages itself), except before a batch's writes, which wait for an
    answer (`check(must_answer=True)`)."""

    def __init__(self, kafka: KafkaConnection, expected: str | None = None) -> None:
        self.kafka = kafka
        self.expected = expected
        self._admin: Any = None
        self._lock = threading.Lock()

    def current(self, close: bool = False) -> str | None:
        with self._lock:
            try:
                # a client kept from before still holds its connection to the broker that
                # went away: its first question after a restart fails, so a fresh client
                # asks again at once (else the check right after a restart, as the group
                # rejoins, saw no change and the new partitions were taken on)
                for _ in range(2 if self._admin is not None else 1):
                    try:
                        return self._ask()
                    except Exception as exc:
                        self._close()
                        log.debug("cluster id not available now: %r", exc)
                return None
            finally:
                if close:
                    self._close()

    def _ask(self) -> str | None:
        from kafka import KafkaAdminClient

        if self._admin is None:
            self._admin = KafkaAdminClient(client_id="packloop-cluster-watch",
                                           **self.kafka.kafka_python_kwargs())
        found = self._admin.describe_cluster().get("cluster_id")
        return str(found) if found else None

    def check(self, must_answer: bool = False) -> ClusterChanged | None:
        """The change, if the broker now reports another cluster id than the first one
        seen (the one given, else the first this watch could read). A broker that cannot
        be asked is no change, or `ClusterUnanswered` with ``must_answer`` once an id is
        known (a cluster that has never answered, say for want of a permission, has nothing
        to compare with and holds nothing up)."""
        found = self.current()
        if found is None:
            if must_answer and self.expected is not None:
                raise ClusterUnanswered("the Kafka cluster cannot be asked its id now")
            return None
        if self.expected is None:
            self.expected = found
            return None
        return ClusterChanged(self.expected, found) if found != self.expected else None

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:  # closing a client whose broker went away
                pass
            self._admin = None
