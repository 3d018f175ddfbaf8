"""The officer's month survives the embedded broker and every worker being killed.

A month of events goes through a worker on a broker of the test's own (the session's broker
must live on); `report officer --format json` is taken; then the worker is killed with -9
and the broker stopped (memory storage: every topic and changelog gone), a fresh broker and
a fresh worker start on the same ledger database, and the report for that month must be the
same at every level. Without the ledger the fresh worker has nothing for the month. The
month sent again to the fresh broker leaves the report as it was: the fresh worker takes
the events the ledger holds for re-sends.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from services.broker import EmbeddedBroker
from streams import KafkaConnection, Topics, create_topics
from streams.network import load_network
from tests.helpers import wait_until
from tests.integration.helpers import WorkerProcess, packloop, produce, wait_settled
from tests.streams.reference import generate, to_lines

NET = load_network()
MONTH = "2026-11"


def _levels(worker: WorkerProcess, source: str = "auto") -> dict[str, Any] | None:
    out = packloop("report", "officer", "--month", MONTH, "--format", "json", "--source",
                   source, "--allow-empty", env=worker.env(), timeout=60)
    assert out.returncode == 0, out.stderr
    data = orjson.loads(out.stdout)
    return {k: data[k] for k in ("county", "townships", "villages")}


def test_a_month_survives_a_broker_and_worker_restart(tmp_path: Path) -> None:
    events = generate(NET, 2500, seed=21, villages=20, span_hours=24 * 25,
                      start=datetime(2026, 11, 2, tzinfo=UTC))
    lines = to_lines(events)
    ledger = {"PACKLOOP_LEDGER_DB_URL": f"sqlite:///{tmp_path}/ledger.db"}
    topics = Topics("ledger-")
    first = EmbeddedBroker(log_path=tmp_path / "broker-1.log").start()
    try:
        create_topics(KafkaConnection(bootstrap_servers=first.bootstrap), topics, 4)
        a = WorkerProcess(first.bootstrap, topics.prefix, tmp_path, ledger).start()
        a.wait_ready()
        produce(first.bootstrap, topics.hub_events, lines)
        wait_settled([a], len(lines))
        before = _levels(a, "worker")
        assert before is not None and before["county"]["parcels"] > 500
        # the ledger trails the worker by a commit interval
        wait_until(lambda: _levels(a, "ledger") == before, 60, "the ledger to catch up")
        a.kill9()
    finally:
        first.stop()
    second = EmbeddedBroker(log_path=tmp_path / "broker-2.log").start()
    try:
        create_topics(KafkaConnection(bootstrap_servers=second.bootstrap), topics, 4)
        b = WorkerProcess(second.bootstrap, topics.prefix, tmp_path, ledger).start()
        b.wait_ready()
        fresh = _levels(b, "worker")
        assert fresh is not None and fresh["villages"] == [] and fresh["county"]["parcels"] == 0
        assert _levels(b) == before
        # a hub sends the whole month again to the fresh broker: the worker learns from
        # the ledger which events the lost state had applied (the ledger counted them
        # twice, and pickup ids were numbered from 1 again)
        produce(second.bootstrap, topics.hub_events, lines)
        st = wait_settled([b], len(lines))
        assert st["events"]["applied"] + st["events"]["dead_lettered"] < len(lines) // 10
        wait_until(lambda: _levels(b, "ledger") == before, 60,
                   "the ledger unchanged by the re-sent month")
        assert _levels(b) == before
        b.kill9()
    finally:
        second.stop()

