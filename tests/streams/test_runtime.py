"""When a worker's state may be read (`streams.runtime.Runtime.ready`)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from faust.types import TP

from streams.runtime import Runtime


def _runtime() -> tuple[Runtime, SimpleNamespace]:
    app = SimpleNamespace(packloop_gate_open=True)  # faust_ext's default before any rebalance
    async def wait_changelog() -> None:
        return None

    worker = SimpleNamespace(app=app, topics=SimpleNamespace(hub_events="hub-events"),
                             table=SimpleNamespace(data={}), wait_changelog=wait_changelog)
    return Runtime(worker, None, SimpleNamespace(partitions=4)), app  # type: ignore[arg-type]


def test_the_state_is_read_only_once_assigned_and_recovered() -> None:
    """Before the first assignment the table is empty, between an assignment and the seek
    after recovery it is partial: neither may be read as the worker's state (a restarted
    worker's /status said applied 0, then 66,368 of 113,787, with HTTP 200)."""
    rt, app = _runtime()
    assert not rt.ready()  # started, nothing assigned yet (the gate's default is open)
    app.packloop_gate_open = False  # what the assignment signal does first
    asyncio.run(rt.on_assigned({TP("hub-events", 0), TP("hub-events", 1)}))
    assert not rt.ready()  # recovering
    app.packloop_gate_open = True  # the seek after recovery
    assert rt.ready()
    app.packloop_gate_open = False  # the next rebalance: everything revoked first
    asyncio.run(rt.on_revoked({TP("hub-events", 0), TP("hub-events", 1)}))
    assert not rt.ready()  # owns nothing, but only until it is handed partitions again
    asyncio.run(rt.on_assigned({TP("hub-events", 1)}))
    assert not rt.ready()
    app.packloop_gate_open = True
    assert rt.ready()


def test_a_worker_without_partitions_has_nothing_to_recover() -> None:
    rt, app = _runtime()
    app.packloop_gate_open = False
    asyncio.run(rt.on_assigned(set()))
    assert rt.ready()
