"""A worker asked to stop while Kafka is gone still stops (`streams.worker.bounded_stop_worker`).

Faust's stop waits on the broker for its consumer and producer; with the broker gone a
worker ignored SIGTERM until SIGKILL (past 70 s), which an orchestrator counts as a hung
pod and an operator as a worker that will not die."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from services.broker import EmbeddedBroker
from streams.kafka import KafkaConnection
from streams.topics import Topics, create_topics
from streams.worker import STOP_TIMEOUT_EXIT
from tests.integration.helpers import WorkerProcess

pytestmark = pytest.mark.integration

STOP_TIMEOUT_S = 3


def test_a_worker_stops_within_its_timeout_when_kafka_is_gone(tmp_path: Path) -> None:
    with EmbeddedBroker(log_path=tmp_path / "tansu.log") as broker:
        topics = Topics("stop-")
        create_topics(KafkaConnection(bootstrap_servers=broker.bootstrap), topics, partitions=2)
        worker = WorkerProcess(broker.bootstrap, topics.prefix, tmp_path,
                               {"PACKLOOP_WORKER_STOP_TIMEOUT_S": str(STOP_TIMEOUT_S)})
        try:
            worker.start().wait_ready()
            broker.stop()
            assert worker.proc is not None
            t0 = time.monotonic()
            worker.proc.send_signal(signal.SIGTERM)
            code = worker.proc.wait(STOP_TIMEOUT_S + 20)
            took = time.monotonic() - t0
        finally:
            worker.kill9()
    assert code in (0, STOP_TIMEOUT_EXIT), worker.log()[-2000:]
    assert took < STOP_TIMEOUT_S + 8  # the timeout, and a few seconds to exit
    if code == STOP_TIMEOUT_EXIT:
        assert "stop did not finish within 3 s" in worker.log()
