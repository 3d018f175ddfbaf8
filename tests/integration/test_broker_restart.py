"""The embedded broker restarted under a running worker: a new, empty cluster on the same
address. The worker left running used to skip the new cluster's events as already applied
(its markers were ahead of the new topic's offsets), silently. It now stops, naming the
change, and started again it counts the new cluster's events exactly.

Its own broker (not the session's): the test restarts it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.broker import EmbeddedBroker, free_port
from streams import create_topics
from streams.kafka import KafkaConnection
from streams.topics import Topics
from tests.helpers import wait_until
from tests.integration.helpers import WorkerProcess, produce, wait_settled
from tests.integration.test_stream_worker import assert_matches_input
from tests.streams.reference import generate, to_lines

PARTITIONS = 2


@pytest.fixture
def own_port() -> Iterator[int]:
    yield free_port()


def _started(port: int, topics: Topics) -> EmbeddedBroker:
    b = EmbeddedBroker(port=port).start()
    create_topics(KafkaConnection(bootstrap_servers=b.bootstrap), topics, partitions=PARTITIONS)
    return b


def test_a_worker_stops_when_the_broker_restarts_empty_and_counts_the_new_one_exactly(
        own_port: int, tmp_path: Path) -> None:
    from streams.network import load_network

    net = load_network()
    first = to_lines(generate(net, 3_000, seed=21, villages=12, span_hours=24))
    second = to_lines(generate(net, 2_000, seed=22, villages=12, span_hours=24))
    topics = Topics(prefix="restart-")
    broker = _started(own_port, topics)
    # the timer's check as good as off: the checks before partitions are taken on and
    # before each batch's writes must catch the change (with the timer alone, 800 events
    # produced to the new cluster before it fired were lost in a CI run)
    w = WorkerProcess(broker.bootstrap, topics.prefix, tmp_path,
                      {"PACKLOOP_WORKER_CLUSTER_CHECK_S": "3600"})
    try:
        w.start().wait_ready()
        produce(broker.bootstrap, topics.hub_events, first)
        wait_settled([w], len(first))

        broker.stop()
        broker = _started(own_port, topics)  # same address, a new and empty cluster
        # events on the new cluster while the old worker still runs: the window in which
        # they were skipped as applied (their offsets below the old markers)
        early, late = second[:800], second[800:]
        produce(broker.bootstrap, topics.hub_events, early)
        wait_until(lambda: not w.alive(), 60, "the worker to stop on the new cluster")
        assert w.proc is not None and w.proc.returncode != 0
        assert "the Kafka cluster changed under this worker" in w.log()

        w.start().wait_ready()
        produce(broker.bootstrap, topics.hub_events, late)
        st = wait_settled([w], len(second))
        # the new cluster's events, each once, and nothing of the old cluster's state
        assert_matches_input(st, second, PARTITIONS, broker.bootstrap, topics)
    finally:
        w.kill9()
        broker.stop()


def test_a_service_never_answers_a_write_to_a_restarted_empty_broker_as_written(
        own_port: int) -> None:
    """The gateway's and the planner's producer (`LiveKafkaIO`) across an embedded broker
    restarted empty on the same address. Its cached metadata had the new cluster
    acknowledge writes to topics it did not have, and they were nowhere: the gateway had
    answered "accepted". Now such writes are unavailable (503) until the topics exist,
    and once they do a write lands on the new cluster."""
    from services.http.kafka_io import KafkaUnavailable, LiveKafkaIO, Record
    from tests.integration.helpers import read_topic

    topics = Topics(prefix="svc-restart-")
    broker = _started(own_port, topics)
    io = LiveKafkaIO(KafkaConnection(bootstrap_servers=broker.bootstrap), probe_interval_s=60)
    io.start()

    def write(value: bytes) -> BaseException | None:
        try:
            [outcome] = io.produce([Record(topics.hub_events, b"H01-V001", value)])
        except KafkaUnavailable as exc:
            return exc
        return outcome

    try:
        assert write(b"{\"v\": \"before\"}") is None
        broker.stop()
        broker = EmbeddedBroker(port=own_port).start()
        answers = [write(b"{\"v\": \"after\"}") for _ in range(3)]
        assert all(a is not None for a in answers), answers  # none "written"
        assert "packloop topics create" in str(answers[-1]) or "changed" in str(answers[-1])
        create_topics(KafkaConnection(bootstrap_servers=broker.bootstrap), topics,
                      partitions=PARTITIONS)
        wait_until(lambda: write(b'{"v": "created"}') is None, 30, "a write to the new topics")
        assert {"v": "created"} in read_topic(broker.bootstrap, topics.hub_events)
    finally:
        io.stop()
        broker.stop()
