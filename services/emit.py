"""Emit hub events from JSON Lines to Kafka: validate, produce, dead-letter the rest.

Every non-blank input line ends up in exactly one place: on the hub-events
topic (valid) or on the dead-letter topic with its reason and line number, so
``accepted + rejected == non-blank lines`` always holds.

With :class:`~streams.acceptance.AcceptanceLimits` (what ``packloop emit`` passes), an
event the stream worker would not apply for its time (too far ahead of the clock, or
behind it) is rejected here with that reason, so the count of accepted events is the
count the worker applies.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

from streams import (
    MAX_EVENT_BYTES,
    AcceptanceLimits,
    EventError,
    KafkaConnection,
    Network,
    Topics,
    check_occurred_at,
    dead_letter_record,
    event_to_json,
    parse_hub_event,
)
from streams.events import UTF8_BOM, size_problem, too_large

#: how many distinct write errors a report keeps (with their counts)
MAX_FAILURE_REASONS = 5


@dataclass(frozen=True, slots=True)
class Rejection:
    line: int
    reason: str
    field: str | None
    message: str


@dataclass
class EmitReport:
    accepted: int = 0
    rejected: int = 0
    failed: int = 0  # produce errors: neither on the topic nor dead-lettered
    reasons: Counter[str] = field(default_factory=Counter)
    first_rejections: list[Rejection] = field(default_factory=list)
    #: why records failed to be written ("topic: error"), with how many each
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return self.rejected == 0 and self.failed == 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "rejected": self.rejected,
            "failed": self.failed,
            "reasons": dict(self.reasons),
            "first_rejections": [
                {"line": r.line, "reason": r.reason, "field": r.field, "message": r.message}
                for r in self.first_rejections
            ],
            "failures": dict(self.failures),
        }

    def failed_write(self, count: int, why: str) -> None:
        self.failed += count
        if why in self.failures or len(self.failures) < MAX_FAILURE_REASONS:
            self.failures[why] += count
        else:
            self.failures["(other errors)"] += count


def read_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes, int, int]]:
    """Yield ``(line_number, line, bytes_consumed, line_size)``; blank lines are skipped
    (yielded as ``b""``). ``line_size`` is the line's real length without its line break.

    Lines longer than the event size limit are cut at the limit (plus one byte, so
    the parser sees they are too large) and the rest of the line is skipped, so a
    runaway line cannot exhaust memory; ``line_size`` still counts all of it.

    One UTF-8 byte order mark at the start of the stream is dropped (not counted in
    ``line_size``, counted as consumed): Windows tools (Notepad, Excel) write one, and
    the first event would otherwise be refused as malformed JSON. Elsewhere it is part
    of its line.
    """
    number = 0
    while True:
        chunk = stream.readline(MAX_EVENT_BYTES + 1)
        if not chunk:
            return
        number += 1
        bom = 0
        if number == 1 and chunk.startswith(UTF8_BOM):
            bom = len(UTF8_BOM)
            chunk = chunk[bom:]
            if chunk and not chunk.endswith(b"\n"):  # read as far as without a BOM
                chunk += stream.readline(bom)
        consumed = bom + len(chunk)
        last = chunk
        if len(chunk) > MAX_EVENT_BYTES and not chunk.endswith(b"\n"):
            while True:
                rest = stream.readline(1 << 20)
                consumed += len(rest)
                if rest:
                    last = last[-1:] + rest  # enough to see a "\r\n" split across reads
                if not rest or rest.endswith(b"\n"):
                    break
        ending = len(last) - len(last.rstrip(b"\r\n")) if last.endswith(b"\n") else 0
        line = chunk.rstrip(b"\r\n")
        if line.strip():
            yield number, line, consumed, consumed - bom - ending
        elif consumed:
            yield number, b"", consumed, 0


def check_line(raw: bytes, network: Network, acceptance: AcceptanceLimits | None = None,
               size: int | None = None) -> tuple[Any, EventError | None]:
    """The event of one line and why it is refused (None: it goes to hub-events).

    ``size`` is the line's real length when ``raw`` was cut short (:func:`read_lines`);
    the size rule is the gateway's (:func:`streams.events.size_problem`): the line as
    received, then the event as it would be written.
    """
    event, problem, _ = _checked(raw, network, acceptance, size)
    return event, problem


def _checked(raw: bytes, network: Network, acceptance: AcceptanceLimits | None,
             size: int | None) -> tuple[Any, EventError | None, bytes]:
    """:func:`check_line`, and the event as it is written (``b""`` if refused early)."""
    received = len(raw) if size is None else size
    if received > MAX_EVENT_BYTES:
        return None, too_large(received), b""
    try:
        event = parse_hub_event(raw)
    except EventError as exc:
        return None, exc, b""
    problem = network.check_event(event)
    if problem is None and acceptance is not None:
        problem = check_occurred_at(event.occurred_at, datetime.now(UTC), acceptance)
    if problem is not None:
        return event, problem, b""
    written = event_to_json(event)
    return event, size_problem(received, written), written


class Emitter:
    """Validate and produce events; one producer for events and dead letters.

    Why not kafka-python's producer: its per-record ``send`` costs ~100 us of Python, which
    held `packloop emit` near 9,000 events/s. Here records go straight into aiokafka's batch
    builders, one open batch per partition, on an event loop in a background thread; the
    caller's thread only validates and hands records over. A batch is sent when full, when
    it has waited `linger_s` (events emitted at a live pace still go out promptly), and at
    `flush`. An event counts as accepted only once the broker acknowledged its batch
    (acks=all)."""

    def __init__(
        self,
        kafka: KafkaConnection,
        topics: Topics,
        network: Network,
        source: str = "emit",
        max_rejections_kept: int = 5,
        acceptance: AcceptanceLimits | None = None,
        linger_s: float = 0.02,
        max_in_flight_events: int = 200_000,
    ) -> None:
        self.topics = topics
        self.network = network
        self.source = source
        self.max_rejections_kept = max_rejections_kept
        self.acceptance = acceptance
        self.linger_s = linger_s
        self.report = EmitReport()
        self._room = threading.BoundedSemaphore(max_in_flight_events)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True,
                                        name=f"packloop-{source}-producer")
        self._thread.start()
        self._batches: dict[tuple[str, int], tuple[Any, int, float]] = {}
        self._sending: set[asyncio.Future[Any]] = set()
        self._partitions: dict[str, int] = {}
        self._partition_of: dict[tuple[str, bytes], int] = {}
        #: topics the broker listed without partitions (a write to them fails: said why)
        self._no_partitions: set[str] = set()
        self._next: dict[str, int] = {}
        try:
            self._call(self._start(kafka, source))
        except BaseException:
            self._stop_loop()
            raise

    # -- the caller's thread ----------------------------------------------------------------

    def validate(self, raw: bytes, size: int | None = None) -> tuple[Any, EventError | None]:
        return check_line(raw, self.network, self.acceptance, size)

    def submit(self, raw: bytes, line: int | None = None,
               size: int | None = None, original: bytes | None = None) -> EventError | None:
        """Validate one event and hand it over; ``size``: its real length when ``raw`` is
        a line cut short; ``original``: the line as the file has it, when ``raw`` was
        changed (``emit --shift-to-now``): a dead letter carries the file's bytes."""
        event, problem, written = _checked(raw, self.network, self.acceptance, size)
        if problem is None:
            self._room.acquire()
            self._loop.call_soon_threadsafe(self._add, self.topics.hub_events,
                                            event.village_id.encode("utf-8"), written, True)
            return None
        self.reject(raw if original is None else original, problem, line,
                    key=event.village_id if event is not None else None)
        return problem

    def reject(
        self, raw: bytes, problem: EventError, line: int | None, key: str | None = None
    ) -> None:
        record = dead_letter_record(
            self.source,  # type: ignore[arg-type]
            problem.code,
            raw,
            field=problem.field,
            line=line,
            message=str(problem),
        )
        self._room.acquire()
        self._loop.call_soon_threadsafe(self._add, self.topics.dead_letter,
                                        key.encode("utf-8") if key else None, record, False)
        self.report.rejected += 1
        self.report.reasons[problem.code] += 1
        if len(self.report.first_rejections) < self.max_rejections_kept:
            self.report.first_rejections.append(
                Rejection(line or 0, problem.code, problem.field, str(problem))
            )

    def flush(self, timeout_s: float = 60.0) -> None:
        """Send what is open and wait for every batch's acknowledgement."""
        self._call(self._flush(), timeout_s)

    def close(self) -> None:
        try:
            self._call(self._stop(), 10.0)
        finally:
            self._stop_loop()

    def _call(self, coro: Any, timeout_s: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    # -- the producer's loop ----------------------------------------------------------------

    async def _start(self, kafka: KafkaConnection, source: str) -> None:
        from aiokafka import AIOKafkaProducer

        self._producer = AIOKafkaProducer(
            acks="all", linger_ms=0, max_batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024, client_id=f"packloop-{source}",
            enable_idempotence=False, **kafka.aiokafka_kwargs())
        try:
            await self._producer.start()
        except BaseException:
            await self._producer.stop()
            raise
        for topic in (self.topics.hub_events, self.topics.dead_letter):
            parts = await self._producer.partitions_for(topic)
            self._partitions[topic] = len(parts) if parts else 1
            if not parts:
                self._no_partitions.add(topic)
        self._lingering = asyncio.ensure_future(self._linger())

    def _partition(self, topic: str, key: bytes | None) -> int:
        """Kafka's default murmur2 partition of a key (hubs repeat villages: cached);
        keyless records rotate."""
        count = self._partitions[topic]
        if key is None:
            n = self._next[topic] = (self._next.get(topic, -1) + 1) % count
            return n
        partition = self._partition_of.get((topic, key))
        if partition is None:
            from aiokafka.partitioner import murmur2

            partition = self._partition_of[(topic, key)] = (murmur2(key) & 0x7FFFFFFF) % count
        return partition

    def _add(self, topic: str, key: bytes | None, value: bytes, is_event: bool) -> None:
        where = (topic, self._partition(topic, key))
        open_batch = self._batches.get(where)
        if open_batch is None:
            open_batch = (self._producer.create_batch(), 0, time.monotonic())
        batch, count, since = open_batch
        if batch.append(key=key, value=value, timestamp=None) is None:
            if count:  # full: send it and start another
                self._send(where, batch, count, is_event)
            batch, count, since = self._producer.create_batch(), 0, time.monotonic()
            if batch.append(key=key, value=value, timestamp=None) is None:
                # larger than a whole batch: cannot be written
                self._failed(1, f"{topic}: a record of {len(value)} bytes does not fit in a "
                                "producer batch")
                self._batches.pop(where, None)
                return
        self._batches[where] = (batch, count + 1, since)

    def _send(self, where: tuple[str, int], batch: Any, count: int, is_event: bool) -> None:
        self._batches.pop(where, None)
        task = asyncio.ensure_future(self._deliver(where, batch, count, is_event))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(self, where: tuple[str, int], batch: Any, count: int,
                       is_event: bool) -> None:
        batch.close()
        try:
            delivered = await self._producer.send_batch(batch, where[0], partition=where[1])
            await delivered
        except Exception as exc:  # noqa: BLE001 - any failure means not written
            why = f"{where[0]}: {_error_text(exc)}"
            if where[0] in self._no_partitions:
                why += (" (the broker lists no partitions for this topic: delete it, or restart "
                        "the embedded broker, and run `packloop topics create`)")
            self._failed(count, why)
        else:
            if is_event:
                self.report.accepted += count
            self._room.release(count)

    def _failed(self, count: int, why: str) -> None:
        self.report.failed_write(count, why)
        self._room.release(count)

    def _send_open(self, older_than_s: float = 0.0) -> None:
        now = time.monotonic()
        for where, (batch, count, since) in list(self._batches.items()):
            if now - since >= older_than_s:
                self._send(where, batch, count, where[0] == self.topics.hub_events)

    async def _linger(self) -> None:
        while True:
            await asyncio.sleep(self.linger_s / 2)
            self._send_open(self.linger_s)

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # records handed over before flush() are in their batches
        self._send_open()
        while self._sending:
            await asyncio.gather(*list(self._sending), return_exceptions=True)

    async def _stop(self) -> None:
        self._lingering.cancel()
        await self._producer.stop()


def _error_text(exc: BaseException) -> str:
    """``Type: message``, once (aiokafka's errors already start with their type)."""
    name, text = type(exc).__name__, str(exc)
    if not text:
        return name
    return text if text.startswith(name) else f"{name}: {text}"


def emit_stream(
    stream: IO[bytes],
    kafka: KafkaConnection,
    topics: Topics,
    network: Network,
    on_progress: Callable[[int], None] | None = None,
    acceptance: AcceptanceLimits | None = None,
    transform: Callable[[bytes], bytes] | None = None,
) -> EmitReport:
    """Emit every line of a JSON Lines stream; ``on_progress`` gets bytes consumed;
    ``transform`` changes each line before it is checked (a refused line is dead-lettered
    as the stream has it)."""
    emitter = Emitter(kafka, topics, network, acceptance=acceptance)
    try:
        for number, line, consumed, size in read_lines(stream):
            if line and transform is not None:
                emitter.submit(transform(line), number, size, original=line)
            elif line:
                emitter.submit(line, number, size)
            if on_progress:
                on_progress(consumed)
        emitter.flush()
    finally:
        emitter.close()
    return emitter.report
