"""`packloop report officer` and `packloop status` against a live worker: the month's
dead letters come from the dead-letter topic, by reason; a month without figures and an
unknown village exit 2 with the reason."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from services.reports.officer import month_shift
from streams.network import load_network
from streams.topics import Topics
from tests.integration.helpers import WorkerProcess, packloop, produce, wait_settled
from tests.services.helpers import shipment, stamp

NET = load_network()


def local_month(at: datetime) -> str:
    return at.astimezone(NET.timezone).strftime("%Y-%m")


def test_the_report_counts_the_months_dead_letters_and_refuses_empty_months(
        broker: Any, topics_factory: Callable[..., Topics],
        workers: Callable[..., WorkerProcess]) -> None:
    topics = topics_factory(2)
    worker = workers(topics.prefix).start()
    worker.wait_ready()
    now = datetime.now(UTC)
    good = [shipment(village="H01-V001", occurred_at=stamp(now - timedelta(minutes=5)))
            for _ in range(3)]
    ahead_at = now + timedelta(hours=3)
    ahead = shipment(village="H01-V002", occurred_at=stamp(ahead_at))  # past the gateway
    lines = [orjson.dumps(e) for e in (*good, ahead)]
    produce(broker.bootstrap, topics.hub_events, lines)
    wait_settled([worker], len(lines))

    month = local_month(now - timedelta(minutes=5))
    result = packloop("report", "officer", "--month", month, "--format", "json",
                      env=worker.env())
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)
    expected = Counter({"future_timestamp": 1} if local_month(ahead_at) == month else {})
    assert report["dead_letters"] == {"by_reason": dict(expected),
                                      "total": sum(expected.values())}
    county = report["rows"][0]
    assert county["level"] == "county" and county["generated_grams"] == 3 * 200
    assert report["generated_at"][:10] == datetime.now(NET.timezone).date().isoformat()

    future = packloop("report", "officer", "--month", month_shift(month, 2), env=worker.env())
    assert future.returncode == 2 and "is in the future" in future.stderr, future.stderr
    unknown = packloop("status", "--village", "H99-V001", env=worker.env())
    assert unknown.returncode == 2 and "unknown village 'H99-V001'" in unknown.stderr
    hub = packloop("status", "--hub", "H01", "--json", "--worker-url", worker.url,
                   env=worker.env())
    assert hub.returncode == 0, hub.stderr
    assert list(orjson.loads(hub.stdout)["villages"]) == ["H01-V001"]
