"""The changelog form of the table's values: compact JSON, one place for the format.

The ``villages`` table holds three kinds of value: a :class:`VillageState` per village,
a :class:`PartitionMarker` per partition and a :class:`SealedIds` per sealed dedupe
segment of a village; all are written to the changelog and read back on recovery by
:func:`decode_value` (a deleted segment is a tombstone, which Faust drops before
decoding). Fields added after a value format was in use are read with a default, so an
older changelog still recovers (``tests/streams/test_state.py`` decodes a value in the
first format).
"""

from __future__ import annotations

import base64
from typing import Any

import orjson

from streams.state.containers import ContainerPool
from streams.state.dedupe import SealedIds, SeenSet
from streams.state.marker import PartitionMarker
from streams.state.pickups import OpenPickup
from streams.state.tallies import MonthBucket
from streams.state.times import HOUR_US
from streams.state.village import VillageState

#: 2: sealed dedupe segments (``sealed_days``), cancelled pickups, waste lots
STATE_VERSION = 2


TableValue = VillageState | PartitionMarker | SealedIds


def encode_value(value: TableValue) -> bytes:
    if isinstance(value, PartitionMarker):
        return orjson.dumps(_marker_to_dict(value))
    if isinstance(value, SealedIds):
        return orjson.dumps(
            {"segment_of": value.village_id, "day": value.day,
             "ids": base64.b64encode(value.blob).decode()}
        )
    return orjson.dumps(_village_to_dict(value))


def decode_value(raw: bytes) -> TableValue:
    d = orjson.loads(raw)
    if "marker" in d:
        return _marker_from_dict(d)
    if "segment_of" in d:
        return SealedIds(d["segment_of"], d["day"], base64.b64decode(d["ids"]))
    return _village_from_dict(d)


def _marker_to_dict(m: PartitionMarker) -> dict[str, Any]:
    return {
        "marker": m.partition,
        "offset": m.offset,
        "stream_time": m.stream_time,
        "dead_lettered": m.dead_lettered,
        "rerouted": m.rerouted,
        "dead_reasons": m.dead_reasons,
    }


def _marker_from_dict(d: dict[str, Any]) -> PartitionMarker:
    return PartitionMarker(
        d["marker"],
        d["offset"],
        d.get("stream_time"),
        d["dead_lettered"],
        d["rerouted"],
        dict(d.get("dead_reasons") or {}),
    )


def _pool_to_list(pool: ContainerPool) -> list[Any]:
    return [pool.issued, pool.returned, pool.damaged, pool.lost, pool.fifo]


def _pool_from_list(data: list[Any]) -> ContainerPool:
    return ContainerPool(data[0], data[1], data[2], data[3], [list(e) for e in data[4]])


def _month_to_list(b: MonthBucket) -> list[Any]:
    return [
        b.generated,
        b.recovered,
        [b.pickups_requested, b.pickups_completed, b.pickups_overdue, b.pickups_cancelled],
        b.containers,
        b.counts,
        b.on_hand_start,
    ]


def _month_from_list(data: list[Any]) -> MonthBucket:
    pk = data[2]
    return MonthBucket(
        dict(data[0]),
        dict(data[1]),
        pk[0],
        pk[1],
        pk[2],
        {k: list(v) for k, v in data[3].items()},
        pk[3] if len(pk) > 3 else 0,
        dict(data[4]) if len(data) > 4 else {},
        dict(data[5]) if len(data) > 5 and data[5] is not None else None,
    )


def _lots_from(d: dict[str, Any]) -> dict[str, list[list[int]]]:
    """The dated lots of outstanding waste; a value written before lots existed knew only
    when the outstanding total last left zero, so all of it is dated then (to the hour)."""
    lots = d.get("lots")
    if lots is not None:
        return {m: [list(lot) for lot in v] for m, v in lots.items()}
    since = d.get("waste_since")
    if since is None:
        return {}
    hour = since - since % HOUR_US
    generated, recovered = d["generated"], d["recovered"]
    return {
        m: [[hour, g - recovered.get(m, 0)]]
        for m, g in generated.items()
        if g - recovered.get(m, 0) > 0
    }


def _village_to_dict(s: VillageState) -> dict[str, Any]:
    op = s.open_pickup
    return {
        "v": STATE_VERSION,
        "village_id": s.village_id,
        "hub_id": s.hub_id,
        "offset": s.offset,
        "counts": [s.applied, s.duplicates, s.dead_lettered],
        "last_at": s.last_at,
        "generated": s.generated,
        "recovered": s.recovered,
        "used_up": s.used_up,
        "used_down": s.used_down,
        "days": s.days,
        "lots": s.lots,
        "pickups": [
            s.pickups_requested,
            s.pickups_overdue,
            s.pickups_collected,
            s.pickups_cancelled,
        ],
        "open_pickup": None
        if op is None
        else [op.pickup_id, op.requested_at, op.reasons, op.overdue],
        "snooze": None
        if s.snooze_from is None
        else [s.snooze_from, s.snooze_hours, s.snooze_new],
        "containers": {k: _pool_to_list(v) for k, v in s.containers.items()},
        "seen": s.seen.pack(),
        "sealed_days": sorted(s.seen.sealed_days),
        "pickup_reasons": s.pickup_reasons,
        "pickup_materials": s.pickup_materials,
        "dead_reasons": s.dead_reasons,
        "months": {k: _month_to_list(v) for k, v in s.months.items()},
        "epoch": s.epoch,
        "pickup_base": s.pickup_base,
    }


def _village_from_dict(d: dict[str, Any]) -> VillageState:
    op = d.get("open_pickup")
    sn = d.get("snooze")
    counts = d["counts"]
    pk = d["pickups"]
    return VillageState(
        village_id=d["village_id"],
        hub_id=d["hub_id"],
        offset=d["offset"],
        applied=counts[0],
        duplicates=counts[1],
        dead_lettered=counts[2],
        last_at=d.get("last_at"),
        generated=dict(d["generated"]),
        recovered=dict(d["recovered"]),
        used_up=dict(d.get("used_up") or {}),
        used_down=dict(d.get("used_down") or {}),
        days={k: [dict(v[0]), dict(v[1])] for k, v in d["days"].items()},
        lots=_lots_from(d),
        pickups_requested=pk[0],
        pickups_overdue=pk[1],
        pickups_collected=pk[2],
        pickups_cancelled=pk[3],
        open_pickup=None if op is None else OpenPickup(op[0], op[1], list(op[2]), op[3]),
        snooze_from=sn[0] if sn else None,
        snooze_hours=sn[1] if sn else None,
        snooze_new=dict(sn[2]) if sn else {},
        containers={k: _pool_from_list(v) for k, v in d["containers"].items()},
        seen=SeenSet.unpack(d["seen"], d.get("sealed_days")),
        pickup_reasons=dict(d.get("pickup_reasons") or {}),
        pickup_materials=dict(d.get("pickup_materials") or {}),
        dead_reasons=dict(d.get("dead_reasons") or {}),
        months={k: _month_from_list(v) for k, v in (d.get("months") or {}).items()},
        epoch=str(d.get("epoch") or ""),
        pickup_base=int(d.get("pickup_base") or 0),
    )
