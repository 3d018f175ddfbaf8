"""Consume the ``dispatch`` topic into the gateway's database.

A consumer in group ``packloop-gateway-dispatch`` (several gateways on one database share
it) reads from the earliest offset not yet committed, stores each run sheet and commits
after the batch is stored, so a gateway that dies mid-batch leaves it to the next one;
storing twice is harmless (same dispatch: a no-op).

Who may write to the topic is limited by Kafka's ACLs (docs/operations.md), and with a
server secret (``PACKLOOP_TOKEN_PEPPER``) every record must carry the planner's signature
(`services.auth.signing`): the first sheet of a (hub, date) is the one served, so a forged
one would decide what a hub's vans do. A record must also look as the planner writes it:
one not keyed by its ``hub_id`` (the planner's key, which places it in its hub's
partition) or whose date is not a calendar date is refused and logged, never stored.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from datetime import date
from typing import Any

import orjson
from pydantic import ValidationError

from services.auth.signing import verified
from services.gateway.config import GatewayConfig
from services.gateway.dispatch_store import DispatchStore, Outcome
from services.gateway.metrics import GatewayMetrics
from services.http.kafka_io import close_quietly
from services.planner.dispatch import DISPATCH_PURPOSE, Dispatch

log = logging.getLogger("packloop.gateway.dispatch")

_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def _calendar_date(text: str) -> bool:
    """``YYYY-MM-DD`` naming a real day: the form the hubs ask for (``?date=``). A sheet
    under any other text would be stored where no hub looks, and one longer than the
    column (10 characters) fails on PostgreSQL at every retry, stalling the intake."""
    if not _DATE.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


class DispatchIntake:
    def __init__(self, config: GatewayConfig, store: DispatchStore,
                 group_id: str | None = None, poll_timeout_ms: int = 500,
                 metrics: GatewayMetrics | None = None) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics
        prefix = config.topics.prefix.rstrip("-")
        self.group_id = group_id or ("packloop-gateway-dispatch" + (f"-{prefix}" if prefix
                                                                     else ""))
        self.poll_timeout_ms = poll_timeout_ms
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def handle(self, value: bytes, key: bytes | None,
               headers: Iterable[tuple[str, bytes | None]] | None = None) -> Outcome | str:
        """Store one record's dispatch: stored, same, rejected, or invalid (counted in
        packloop_gateway_dispatches_total: a rejected sheet is a re-planned date the hub
        may already be driving by, which operations should hear of)."""
        hub, outcome = "", self._handle(value, key, headers)
        if isinstance(outcome, tuple):
            hub, outcome = outcome
        if self.metrics is not None:
            self.metrics.dispatches.labels(hub, outcome).inc()
        if outcome == "rejected":
            log.warning("dispatch for %s rejected: a different sheet for a date already "
                        "published", hub)
        return outcome

    def _handle(self, value: bytes, key: bytes | None,
                headers: Iterable[tuple[str, bytes | None]] | None
                ) -> tuple[str, Outcome | str] | str:
        pepper = self.config.signing_pepper
        signed = pepper is None or verified(pepper, DISPATCH_PURPOSE, value, headers)
        try:
            dispatch = Dispatch.model_validate(orjson.loads(value))
        except (orjson.JSONDecodeError, ValidationError) as exc:
            log.warning("dispatch record ignored: not a dispatch (%s)", str(exc)[:200])
            return "invalid"
        if dispatch.hub_id not in self.config.network.hubs:
            log.warning("dispatch for unknown hub %r ignored", dispatch.hub_id[:128])
            return "invalid"
        if not signed:
            # counted under the hub it names: a planner started without the pepper (every
            # planner process needs it, --no-api workers too) loses that hub's sheet
            log.error("dispatch for %s ignored: not signed with this gateway's "
                      "PACKLOOP_TOKEN_PEPPER (a planner without it, or not a planner)",
                      dispatch.hub_id)
            return dispatch.hub_id, "invalid"
        if key != dispatch.hub_id.encode():
            log.warning("dispatch for %s ignored: its record's key %r is not its hub_id",
                        dispatch.hub_id, (key or b"")[:128])
            return "invalid"
        if not _calendar_date(dispatch.date):
            log.warning("dispatch for %s ignored: date %r is not a YYYY-MM-DD date",
                        dispatch.hub_id, dispatch.date[:32])
            return "invalid"
        return dispatch.hub_id, self.store.put(dispatch.model_dump(mode="json"))

    def _consumer(self) -> Any:
        from kafka import KafkaConsumer

        kafka = self.config.kafka
        consumer = KafkaConsumer(
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=kafka.session_timeout_ms,
            heartbeat_interval_ms=max(500, kafka.session_timeout_ms // 3),
            fetch_max_wait_ms=kafka.fetch_max_wait_ms,
            client_id="packloop-gateway-dispatch",
            **kafka.kafka_python_kwargs(),
        )
        consumer.subscribe([self.config.topics.dispatch])
        return consumer

    def _run(self) -> None:
        consumer = None
        while not self._stop.is_set():
            try:
                if consumer is None:
                    consumer = self._consumer()
                batches = consumer.poll(timeout_ms=self.poll_timeout_ms, max_records=100)
                if not batches:
                    continue
                for records in batches.values():
                    for rec in records:
                        self.handle(rec.value, rec.key, rec.headers)
                consumer.commit()
            except Exception as exc:  # noqa: BLE001 - keep consuming after Kafka/DB hiccups
                log.warning("dispatch intake: %s: %s (retrying)", type(exc).__name__, exc)
                close_quietly(consumer)
                consumer = None
                self._stop.wait(2.0)
        close_quietly(consumer)

    def start(self) -> DispatchIntake:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="dispatch-intake",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
