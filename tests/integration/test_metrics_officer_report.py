"""`packloop report officer` against two real workers on the real broker.

Events spanning three local months are produced; the CSV the CLI prints for each month
(gathered from both workers through ``GET /months/{YYYY-MM}``) must hold, per village,
the figures computed here from the input (the month model of ``tests/streams/test_months``,
independent of packloop's state), and the township rows their villages' sums.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson

from streams.network import load_network
from streams.topics import Topics
from tests.integration.helpers import WorkerProcess, packloop, produce, wait_settled
from tests.streams.helpers import MonthModel, expected_months, quiet_stock
from tests.streams.reference import generate, to_lines

NET = load_network()


def report(worker: WorkerProcess, month: str, fmt: str = "csv") -> str:
    # the worker's broker, topics and URL: the report reads the dead letters too
    out = packloop("report", "officer", "--month", month, "--format", fmt,
                   env=worker.env(), timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.removeprefix("\ufeff")


def test_report_officer_csv_matches_the_input(
    broker: Any,
    topics_factory: Callable[..., Topics],
    workers: Callable[..., WorkerProcess],
) -> None:
    events = generate(NET, 4000, seed=17, villages=30, span_hours=24 * 62,
                      start=datetime(2026, 6, 30, 17, tzinfo=UTC))  # 1 July 01:00 local
    lines = to_lines(events)
    topics = topics_factory(4)
    a = workers(topics.prefix).start()
    b = workers(topics.prefix).start()
    a.wait_ready()
    b.wait_ready()
    produce(broker.bootstrap, topics.hub_events, lines)
    wait_settled([a, b], len(lines))
    m = MonthModel(NET, 4)
    for line in lines:
        m.feed(orjson.loads(line))
    want = expected_months(m)
    quiet = quiet_stock(m, want)
    months = sorted({mo for _v, mo in want})
    assert months == ["2026-07", "2026-08", "2026-09"]
    assert any(mo == "2026-09" for _v, mo in quiet)  # villages quiet in September, holding
    for month in months:
        rows = list(csv.DictReader(io.StringIO(report(a, month))))
        villages = {r["村 village"]: r for r in rows if r["级别 level"] == "村 village"}
        exp = {vid: x for (vid, mo), x in want.items() if mo == month}
        held = {vid: stock for (vid, mo), stock in quiet.items() if mo == month}
        # a quiet village still holding waste has its row: nothing in the month, its stock
        assert set(villages) == set(exp) | set(held), month
        for vid in held:
            assert int(villages[vid]["产生量 generated (g)"]) == 0, (vid, month)
            assert int(villages[vid]["回收量 recovered (g)"]) == 0, (vid, month)
        for vid, x in exp.items():
            r = villages[vid]
            pk = x.get("pk", [0, 0, 0])
            assert int(r["产生量 generated (g)"]) == sum(x["gen"].values()), (vid, month)
            assert int(r["回收量 recovered (g)"]) == sum(x["rec"].values()), (vid, month)
            assert [int(r[k]) for k in ("申请清运 pickups requested",
                                        "完成清运 pickups completed",
                                        "逾期清运 pickups overdue")] == pk, (vid, month)
            assert int(r["容器发出 container uses"]) == sum(c[0] for c in x["cont"].values())
            assert int(r["容器归还 container returns"]) == sum(c[1] for c in x["cont"].values())
        hubs = {r["乡镇 township"]: r for r in rows if r["级别 level"] == "乡镇 township"}
        for hub, hr in hubs.items():
            members = [v for v in villages.values() if v["乡镇 township"] == hub]
            for col in ("产生量 generated (g)", "回收量 recovered (g)",
                        "申请清运 pickups requested"):
                assert int(hr[col]) == sum(int(v[col]) for v in members), (hub, col)
    page = report(b, months[1], "html")
    assert page.startswith("<!DOCTYPE html>") and "回收率 recovery ratio" in page
