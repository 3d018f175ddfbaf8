"""Read a topic back to a known end, without trusting the broker's end offsets.

The embedded broker answers "latest offset" with the start of the last record
batch + 1, so "lag 0" cannot mean "read to the end". We stop when the records'
own count reaches what the caller expects, or when polls stay empty for a while.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from streams.kafka import KafkaConnection


@dataclass(frozen=True, slots=True)
class ConsumedRecord:
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp_ms: int


def iter_topic(
    kafka: KafkaConnection,
    topic: str,
    expected: int | None = None,
    idle_timeout_s: float = 2.0,
    max_wait_s: float = 60.0,
) -> Iterator[ConsumedRecord]:
    """Every record of ``topic`` from the beginning, across all partitions."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        enable_auto_commit=False,
        group_id=None,
        fetch_max_wait_ms=kafka.fetch_max_wait_ms,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        **kafka.kafka_python_kwargs(),
    )
    try:
        deadline = time.monotonic() + max_wait_s
        partitions = None
        while partitions is None and time.monotonic() < deadline:
            partitions = consumer.partitions_for_topic(topic)
            if partitions is None:
                time.sleep(0.1)
        if not partitions:
            return
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning(*assigned)
        seen = 0
        last_data = time.monotonic()
        while time.monotonic() < deadline:
            if expected is not None and seen >= expected:
                return
            batch = consumer.poll(timeout_ms=200, max_records=10_000)
            if not batch:
                if expected is None and time.monotonic() - last_data > idle_timeout_s:
                    return
                continue
            last_data = time.monotonic()
            for tp, records in batch.items():
                for r in records:
                    seen += 1
                    yield ConsumedRecord(tp.partition, r.offset, r.key, r.value, r.timestamp)
    finally:
        consumer.close()


def read_topic(
    kafka: KafkaConnection,
    topic: str,
    expected: int | None = None,
    idle_timeout_s: float = 2.0,
    max_wait_s: float = 60.0,
) -> list[ConsumedRecord]:
    return list(iter_topic(kafka, topic, expected, idle_timeout_s, max_wait_s))
