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
        }


def read_lines(stream: IO[bytes]) -> Iterator[tuple[int, bytes, int]]:
    """Yield ``(line_number, line, bytes_consumed)``; blank lines are skipped.

    Lines longer than the event size limit are cut at the limit (plus one byte, so
    the parser sees they are too large) and the rest of the line is skipped, so a
    runaway line cannot exhaust memory.
    """
    number = 0
    while True:
        chunk = stream.readline(MAX_EVENT_BYTES + 1)
        if not chunk:
            return
        number += 1
        consumed = len(chunk)
        if len(chunk) > MAX_EVENT_BYTES and not chunk.endswith(b"\n"):
            while True:
                rest = stream.readline(1 << 20)
                consumed += len(rest)
                if not rest or rest.endswith(b"\n"):
                    break
        line = chunk.rstrip(b"\r\n")
        if line.strip():
            yield number, line, consumed
        elif consumed:
            yield number, b"", consumed


def check_line(raw: bytes, network: Network,
               acceptance: AcceptanceLimits | None = None) -> tuple[Any, EventError | None]:
    """The event of one line and why it is refused (None: it goes to hub-events)."""
    try:
        event = parse_hub_event(raw)
    except EventError as exc:
        return None, exc
    problem = network.check_event(event)
    if problem is None and acceptance is not None:
        problem = check_occurred_at(event.occurred_at, datetime.now(UTC), acceptance)
    return event, problem


class Emitter:
    """Validate and produce events; one producer for events and dead letters."""

    def __init__(
        self,
        kafka: KafkaConnection,
        topics: Topics,
        network: Network,
        source: str = "emit",
        max_rejections_kept: int = 5,
        acceptance: AcceptanceLimits | None = None,
    ) -> None:
        from kafka import KafkaProducer

        self.topics = topics
        self.network = network
        self.source = source
        self.max_rejections_kept = max_rejections_kept
        self.acceptance = acceptance
        self.producer = KafkaProducer(
            acks="all",
            linger_ms=10,
            batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,
            retries=5,
            client_id=f"packloop-{source}",
            **kafka.kafka_python_kwargs(),
        )
        self.report = EmitReport()
        self._partition_of: dict[bytes, int] = {}
        self._pending_events: list[Any] = []
        self._pending_dead_letters: list[Any] = []

    def validate(self, raw: bytes) -> tuple[Any, EventError | None]:
        return check_line(raw, self.network, self.acceptance)

    def submit(self, raw: bytes, line: int | None = None) -> EventError | None:
        event, problem = self.validate(raw)
        if problem is None:
            key = event.village_id.encode("utf-8")
            self._pending_events.append(
                self.producer.send(
                    self.topics.hub_events,
                    key=key,
                    value=event_to_json(event),
                    partition=self._partition(key),
                )
            )
            return None
        self.reject(raw, problem, line, key=event.village_id if event is not None else None)
        return problem

    def _partition(self, key: bytes) -> int:
        """Kafka's default murmur2 partition of a village key, cached: hubs repeat villages."""
        partition = self._partition_of.get(key)
        if partition is None:
            from kafka.partitioner.default import murmur2

            count = len(self.producer.partitions_for(self.topics.hub_events))
            partition = self._partition_of[key] = (murmur2(key) & 0x7FFFFFFF) % count
        return partition

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
        self._pending_dead_letters.append(
            self.producer.send(
                self.topics.dead_letter,
                key=key.encode("utf-8") if key else None,
                value=record,
            )
        )
        self.report.rejected += 1
        self.report.reasons[problem.code] += 1
        if len(self.report.first_rejections) < self.max_rejections_kept:
            self.report.first_rejections.append(
                Rejection(line or 0, problem.code, problem.field, str(problem))
            )

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait for every send; an event counts as accepted only once the broker has it."""
        self.producer.flush(timeout=timeout_s)
        batches = ((self._pending_events, True), (self._pending_dead_letters, False))
        for pending, is_event in batches:
            for future in pending:
                try:
                    future.get(timeout=0)
                except Exception:  # noqa: BLE001 - any failure means not written
                    self.report.failed += 1
                else:
                    self.report.accepted += is_event
            pending.clear()

    def close(self) -> None:
        self.producer.close(timeout=10)


def emit_stream(
    stream: IO[bytes],
    kafka: KafkaConnection,
    topics: Topics,
    network: Network,
    on_progress: Callable[[int], None] | None = None,
    acceptance: AcceptanceLimits | None = None,
) -> EmitReport:
    """Emit every line of a JSON Lines stream; ``on_progress`` gets bytes consumed."""
    emitter = Emitter(kafka, topics, network, acceptance=acceptance)
    try:
        for number, line, consumed in read_lines(stream):
            if line:
                emitter.submit(line, number)
            if on_progress:
                on_progress(consumed)
        emitter.flush()
    finally:
        emitter.close()
    return emitter.report
