"""`LiveKafkaIO` across a broker that turned into another cluster, its parts replaced by
stand-ins (the real broker: tests/integration/test_broker_restart.py)."""

from __future__ import annotations

from services.http.kafka_io import KafkaUnavailable, LiveKafkaIO, Record
from streams.kafka import KafkaConnection


def test_a_write_sent_to_the_old_cluster_is_not_trusted_after_another_saw_the_change(
        ) -> None:
    """Two writes in flight when the embedded broker restarts empty: the first to finish
    sees the new cluster id and moves `expected` to it; the second compared its answer
    with the moved id and trusted acknowledgements into nowhere."""
    io = LiveKafkaIO(KafkaConnection(bootstrap_servers="127.0.0.1:1"))
    io.watch.expected = "old-cluster"
    io.watch.current = lambda close=False: "new-cluster"  # type: ignore[method-assign]
    io.probe.require = lambda topics: None  # type: ignore[method-assign]

    def produce(records):  # the other write finished meanwhile and saw the change
        io.watch.expected = "new-cluster"
        return [None for _ in records]

    io.producer.produce = produce  # type: ignore[method-assign]
    [outcome] = io.produce([Record("t-hub-events", b"k", b"{}")])
    assert isinstance(outcome, KafkaUnavailable) and "changed" in str(outcome)
    # the next write goes to the new cluster and is trusted
    io.producer.produce = lambda records: [None for _ in records]  # type: ignore
    assert io.produce([Record("t-hub-events", b"k", b"{}")]) == [None]
