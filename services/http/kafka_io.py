"""Kafka for the HTTP services: a producer that never claims a write it did not get, a
probe, and :class:`KafkaIO`, the one object an app talks to Kafka through.

The producer runs with ``acks=all``, no retries and no idempotence: an answer of
"accepted" is given only for a record whose send future completed before the
deadline, and a record is never written twice by the client's own retry. (The
idempotent producer of kafka-python stays stuck after its batches expire during
an outage of the embedded broker, so it is not used here.) A record whose send
timed out may still reach the topic once the broker wakes up; such a record was
answered 503, and the hub's retry carries the same ``event_id``, which the stream
worker deduplicates.

The probe asks the cluster for its topic list every few seconds from a
background thread, so readiness and the fast 503 path never block a request.

An app takes a :class:`KafkaIO` the way an httpx client takes a transport: the default
(:class:`LiveKafkaIO`) talks to the cluster, a test hands in an in-memory one.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from streams import KafkaConnection

if TYPE_CHECKING:
    from kafka.producer.future import FutureRecordMetadata

log = logging.getLogger("packloop.kafka")


class KafkaUnavailable(RuntimeError):
    """Kafka cannot take writes right now; the message says why (never a secret)."""


def describe_kafka_error(exc: BaseException, kafka: KafkaConnection) -> str:
    """One clear line for an exception from kafka-python (TLS problems named as such)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, ssl.SSLCertVerificationError):
            return (
                f"TLS certificate verification failed for {kafka.bootstrap_servers}: "
                f"{cur.verify_message or cur} (check PACKLOOP_KAFKA_SSL_CAFILE and the "
                "broker's certificate)"
            )
        if isinstance(cur, ssl.SSLError):
            return f"TLS handshake with {kafka.bootstrap_servers} failed: {cur}"
        cur = cur.__cause__ or cur.__context__
    if isinstance(exc, KafkaUnavailable):
        return str(exc)
    name = type(exc).__name__
    text = str(exc) if str(exc).startswith(name) else f"{name}: {exc}"
    low = text.lower()
    if kafka.uses_tls and ("bootstrap" in low or "nobrokers" in low or "connection" in low):
        tls_problem = diagnose_tls(kafka)
        if tls_problem:
            return tls_problem
    if "certificate" in low or "ssl" in low:
        return f"TLS problem with {kafka.bootstrap_servers}: {text}"
    if "nobrokersavailable" in low.replace(" ", "") or "bootstrap" in low:
        return f"no Kafka broker reachable at {kafka.bootstrap_servers} ({text})"
    return f"Kafka at {kafka.bootstrap_servers}: {text}"


def diagnose_tls(kafka: KafkaConnection, timeout_s: float = 3.0) -> str | None:
    """Handshake with each bootstrap server using packloop's TLS settings; the first TLS
    problem found (kafka-python only reports 'unable to bootstrap'), or None."""
    import socket

    try:
        context = kafka.ssl_context()
    except (OSError, ssl.SSLError) as exc:
        return f"cannot load the TLS files (PACKLOOP_KAFKA_SSL_*): {exc}"
    if context is None:
        return None
    for server in kafka.servers:
        host, _, port = server.rpartition(":")
        host = host.strip("[]") or server
        try:
            with socket.create_connection((host, int(port or 9092)), timeout=timeout_s) as sock:
                with context.wrap_socket(sock, server_hostname=host):
                    pass
        except ssl.SSLCertVerificationError as exc:
            return (
                f"TLS certificate verification failed for {server}: "
                f"{exc.verify_message or exc} (check PACKLOOP_KAFKA_SSL_CAFILE and the "
                "broker's certificate)"
            )
        except ssl.SSLError as exc:
            return f"TLS handshake with {server} failed: {exc}"
        except (OSError, ValueError):
            continue
    return None


class KafkaProbe:
    """Background check that the cluster answers and has the topics the app writes to;
    ``ok``/``reason`` for readiness."""

    def __init__(self, kafka: KafkaConnection, interval_s: float = 2.0,
                 timeout_ms: int = 3000) -> None:
        self.kafka = kafka
        self.interval_s = interval_s
        self.timeout_ms = timeout_ms
        self.ok = False
        self.reason = "not checked yet"
        self.checked = threading.Event()
        #: topics the app has written to: each must exist on the cluster (an embedded
        #: broker restarted empty has none, yet acknowledged writes to them that were then
        #: nowhere; and a producer's metadata request would have it create them with one
        #: partition)
        self.required: set[str] = set()
        #: the topics the last check found
        self.topics: frozenset[str] = frozenset()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._admin: Any = None
        #: one check at a time: the probe thread and request threads (`require`) share the
        #: admin client
        self._lock = threading.Lock()

    def check_once(self) -> bool:
        with self._lock:
            return self._check()

    def _check(self) -> bool:
        from kafka import KafkaAdminClient

        kwargs = self.kafka.kafka_python_kwargs()
        kwargs["request_timeout_ms"] = self.timeout_ms
        kwargs["bootstrap_timeout_ms"] = min(self.kafka.connect_timeout_ms, self.timeout_ms * 2)
        try:
            if self._admin is None:
                tls_problem = diagnose_tls(self.kafka) if self.kafka.uses_tls else None
                if tls_problem:  # a wrong certificate is known in one handshake, say so
                    raise KafkaUnavailable(tls_problem)
                self._admin = KafkaAdminClient(client_id="packloop-probe", **kwargs)
            self.topics = frozenset(self._admin.list_topics())
            missing = sorted(self.required - self.topics)
            if missing:
                raise KafkaUnavailable(
                    f"topic{'s' if len(missing) > 1 else ''} {', '.join(missing)} not on the "
                    f"Kafka cluster at {self.kafka.bootstrap_servers} (a broker restarted "
                    "empty? create them: `packloop topics create`)")
        except KafkaUnavailable as exc:  # the cluster answers, but cannot take the writes
            if self.ok or str(exc) != self.reason:
                log.warning("Kafka not ready: %s", exc)
            self.ok, self.reason = False, str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            reason = describe_kafka_error(exc, self.kafka)
            if self.ok or reason != self.reason:
                log.warning("Kafka not ready: %s", reason)
            self.ok, self.reason = False, reason
            self._close_admin()
        else:
            if not self.ok:
                log.info("Kafka reachable at %s", self.kafka.bootstrap_servers)
            self.ok, self.reason = True, "ok"
        self.checked.set()
        return self.ok

    def mark_failed(self, reason: str) -> None:
        """A produce failed: not ready until the next successful probe."""
        self.ok, self.reason = False, reason

    def require(self, topics: set[str]) -> str | None:
        """Add ``topics`` to those the app writes to; why the cluster cannot take writes to
        them, or None. Checked again at once when the last check failed or did not see
        them: no write goes out on an old list (a producer's metadata request for a topic
        the embedded broker does not have creates it, with one partition)."""
        self.required |= topics
        if not self.ok or not topics <= self.topics:
            with self._lock:  # another thread's check may have settled it meanwhile
                if not self.ok or not topics <= self.topics:
                    self._check()
        return None if self.ok else self.reason

    def _close_admin(self) -> None:
        if self._admin is not None:
            try:
                self._admin.close()
            except Exception:  # noqa: BLE001
                pass
            self._admin = None

    def _run(self) -> None:
        while not self._stop.is_set():
            self.check_once()
            self._stop.wait(self.interval_s)
        with self._lock:
            self._close_admin()

    def start(self) -> KafkaProbe:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="kafka-probe", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout_ms / 1000 * 3 + 2)
            self._thread = None


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    key: bytes | None
    value: bytes
    #: Kafka record headers (`services.auth.signing`: the dispatch topic's signature)
    headers: tuple[tuple[str, bytes], ...] = ()


class SafeProducer:
    """acks=all producer whose ``produce`` reports, per record, whether the broker has it."""

    def __init__(self, kafka: KafkaConnection, timeout_s: float = 5.0,
                 client_id: str = "packloop-gateway") -> None:
        self.kafka = kafka
        self.timeout_s = timeout_s
        self.client_id = client_id
        self._producer: Any = None
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._producer is None:
                from kafka import KafkaProducer

                request_ms = max(1000, int(self.timeout_s * 1000))
                kwargs = self.kafka.kafka_python_kwargs()
                kwargs["request_timeout_ms"] = request_ms
                kwargs["bootstrap_timeout_ms"] = min(self.kafka.connect_timeout_ms, request_ms)
                try:
                    self._producer = KafkaProducer(
                        acks="all",
                        enable_idempotence=False,
                        retries=0,
                        linger_ms=2,
                        batch_size=512 * 1024,
                        max_request_size=4 * 1024 * 1024,
                        delivery_timeout_ms=request_ms + 500,
                        max_block_ms=request_ms,
                        client_id=self.client_id,
                        **kwargs,
                    )
                except Exception as exc:  # noqa: BLE001
                    raise KafkaUnavailable(describe_kafka_error(exc, self.kafka)) from None
            return self._producer

    def produce(self, records: Sequence[Record]) -> list[BaseException | None]:
        """Send every record and wait (up to the timeout) for each acknowledgement.

        Returns one entry per record: None when the broker acknowledged it, else the
        error. Raises KafkaUnavailable when no producer can be built at all.
        """
        producer = self._get()
        futures: list[FutureRecordMetadata | BaseException] = []
        deadline = time.monotonic() + self.timeout_s + 1.0
        for rec in records:
            try:
                futures.append(producer.send(rec.topic, key=rec.key, value=rec.value,
                                             headers=list(rec.headers) or None))
            except Exception as exc:  # noqa: BLE001 - e.g. metadata not available in time
                futures.append(exc)
        outcome: list[BaseException | None] = []
        for fut in futures:
            if isinstance(fut, BaseException):
                outcome.append(fut)
                continue
            try:
                fut.get(timeout=max(0.0, deadline - time.monotonic()))
            except Exception as exc:  # noqa: BLE001 - any failure means not written
                outcome.append(exc)
            else:
                outcome.append(None)
        return outcome

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                try:
                    self._producer.close(timeout=5)
                except Exception:  # noqa: BLE001
                    pass
                self._producer = None


def close_quietly(consumer: Any) -> None:
    """Close a consumer that may already be broken, without committing: what was not
    committed is redelivered to the next owner, which is what the callers rely on."""
    if consumer is None:
        return
    try:
        consumer.close(autocommit=False)
    except Exception:  # noqa: BLE001 - it is being thrown away
        pass


def is_unavailable(exc: BaseException) -> bool:
    """Errors that mean 'Kafka is not taking writes' (503) rather than 'this record is bad'."""
    from kafka import errors as ke

    permanent = (
        ke.MessageSizeTooLargeError,
        ke.RecordListTooLargeError,
        ke.InvalidRecordError,
        ke.CorruptRecordError,
    )
    return not isinstance(exc, permanent)


class KafkaIO(Protocol):
    """What an HTTP service (and a planner worker) needs from Kafka."""

    def start(self) -> None:
        """Begin watching the cluster (readiness)."""

    def stop(self) -> None:
        """Stop watching and close the producer."""

    def unavailable(self, wait_s: float) -> str | None:
        """Why Kafka cannot take writes now, or None; waits up to ``wait_s`` for the first
        check after start."""

    def mark_failed(self, reason: str) -> None:
        """A write failed: unavailable until the next successful check."""

    def produce(self, records: Sequence[Record]) -> list[BaseException | None]:
        """Per record, None once the broker acknowledged it (acks=all), else the error;
        raises KafkaUnavailable when nothing could be sent at all."""

    def read_since(self, topic: str, since_ms: int, max_wait_s: float) -> Iterator[bytes]:
        """The values of ``topic``'s records from ``since_ms`` (record time) on, every
        partition, until the topic stays quiet."""


class LiveKafkaIO:
    """:class:`KafkaIO` on a real cluster: a :class:`SafeProducer` and a :class:`KafkaProbe`."""

    def __init__(self, kafka: KafkaConnection, produce_timeout_s: float = 5.0,
                 client_id: str = "packloop-gateway", probe_interval_s: float = 2.0) -> None:
        from streams.cluster_watch import ClusterWatch

        self.kafka = kafka
        self.producer = SafeProducer(kafka, produce_timeout_s, client_id=client_id)
        self.probe = KafkaProbe(kafka, interval_s=probe_interval_s)
        #: the cluster the producer writes to (`streams.cluster_watch`): checked after
        #: every acknowledged write
        self.watch = ClusterWatch(kafka)

    def start(self) -> None:
        self.probe.start()

    def stop(self) -> None:
        self.probe.stop()
        self.producer.close()
        self.watch.close()

    def unavailable(self, wait_s: float) -> str | None:
        if not self.probe.checked.is_set():
            self.probe.checked.wait(timeout=wait_s)
        return None if self.probe.ok else self.probe.reason

    def mark_failed(self, reason: str) -> None:
        self.probe.mark_failed(reason)

    def produce(self, records: Sequence[Record]) -> list[BaseException | None]:
        """As :meth:`KafkaIO.produce`; besides, nothing is sent to a topic the cluster does
        not have, and acknowledgements from a cluster other than the one the producer
        started on count for nothing. An embedded broker restarted empty on the same
        address acknowledged a producer's writes to topics it no longer had, from the
        producer's old metadata, and they were nowhere: the gateway had answered
        "accepted". Such records are answered unavailable (503): the hub sends them again
        with the same event ids, which the stream deduplicates."""
        missing = self.probe.require({r.topic for r in records})
        if missing is not None:
            raise KafkaUnavailable(missing)
        if self.watch.expected is None:
            self.watch.expected = self.watch.current()
        # the cluster this write is sent to: compared with the one that answers after it,
        # not with `expected` then (a concurrent write that saw the change first moves it,
        # and this one's acknowledgements from the new cluster were trusted)
        before = self.watch.expected
        try:
            outcome = self.producer.produce(records)
        except KafkaUnavailable as exc:
            self.probe.mark_failed(str(exc))
            raise
        if any(e is not None and is_unavailable(e) for e in outcome):
            first = next(e for e in outcome if e is not None)
            self.probe.mark_failed(f"produce failed: {type(first).__name__}: {first}")
        if any(e is None for e in outcome):
            found = self.watch.current()
            if found is not None and before not in (None, found):
                reason = (f"the Kafka cluster at {self.kafka.bootstrap_servers} changed "
                          f"(cluster id {before!r} -> {found!r}: a broker "
                          "restarted empty?); writes it acknowledged are not trusted, send "
                          "them again")
                log.warning("%s", reason)
                self.watch.expected = found
                self.producer.close()  # the next writes start from fresh metadata
                self.probe.topics = frozenset()  # and from a new look at the topics
                self.probe.mark_failed(reason)
                return [KafkaUnavailable(reason) for _ in outcome]
        return outcome

    def read_since(self, topic: str, since_ms: int, max_wait_s: float = 120.0,
                   ) -> Iterator[bytes]:
        """Seeks by record time when the broker can (``offsets_for_times``), else reads from
        the beginning; stops when polls stay empty for 1.5 s, never trusting end offsets
        (the embedded broker reports them short)."""
        from kafka import KafkaConsumer, TopicPartition

        kafka = self.kafka
        consumer = KafkaConsumer(enable_auto_commit=False, group_id=None,
                                 fetch_max_wait_ms=kafka.fetch_max_wait_ms,
                                 max_partition_fetch_bytes=8 * 1024 * 1024,
                                 **kafka.kafka_python_kwargs())
        try:
            parts = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            if not tps:
                return
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            try:
                found = consumer.offsets_for_times({tp: since_ms for tp in tps})
                for tp, off in (found or {}).items():
                    if off is not None:
                        consumer.seek(tp, off.offset)
            except Exception:  # noqa: BLE001 - not supported: read from the beginning
                consumer.seek_to_beginning(*tps)
            deadline = time.monotonic() + max_wait_s
            idle_since = time.monotonic()
            while time.monotonic() < deadline and time.monotonic() - idle_since < 1.5:
                batch = consumer.poll(timeout_ms=200, max_records=20_000)
                if not batch:
                    continue
                idle_since = time.monotonic()
                for records in batch.values():
                    for rec in records:
                        yield rec.value
        finally:
            consumer.close()
