"""Per-village state and its pure update logic (no Faust, no Kafka, no clock).

Split by concern: :mod:`~streams.state.times` (integer µs, local days and months),
:mod:`~streams.state.tallies` (grams by material, windows, month buckets),
:mod:`~streams.state.pickups` (thresholds and the pickup state machine),
:mod:`~streams.state.containers` (container pools), :mod:`~streams.state.dedupe`
(applied event ids), :mod:`~streams.state.village` (the table value of one village and
how an event changes it), :mod:`~streams.state.marker` (the per-partition record) and
:mod:`~streams.state.codec` (their changelog form). Callers import from here.
"""

from streams.state.codec import decode_value, encode_value
from streams.state.containers import ContainerPool
from streams.state.dedupe import (
    SealedIds,
    SeenSet,
    event_digest,
    id_hash,
    is_segment_key,
    segment_key,
    segment_village,
)
from streams.state.marker import PartitionMarker, is_marker_key, marker_key
from streams.state.pickups import (
    PICKUP_REASON_KINDS,
    Emission,
    Limits,
    OpenPickup,
    crossed,
    evaluate,
    next_due,
    snooze_until,
    snoozed,
)
from streams.state.tallies import DAY_BUCKETS_KEPT, MONTH_BUCKETS_KEPT, MonthBucket
from streams.state.times import DAY_US, HOUR_US, US, from_us, iso, to_us
from streams.state.village import Rejected, VillageState, apply, check, prune

__all__ = [
    "DAY_BUCKETS_KEPT",
    "DAY_US",
    "HOUR_US",
    "MONTH_BUCKETS_KEPT",
    "PICKUP_REASON_KINDS",
    "US",
    "ContainerPool",
    "Emission",
    "Limits",
    "MonthBucket",
    "OpenPickup",
    "PartitionMarker",
    "Rejected",
    "SealedIds",
    "SeenSet",
    "VillageState",
    "apply",
    "check",
    "crossed",
    "decode_value",
    "encode_value",
    "evaluate",
    "from_us",
    "event_digest",
    "id_hash",
    "is_marker_key",
    "is_segment_key",
    "iso",
    "marker_key",
    "next_due",
    "prune",
    "segment_key",
    "segment_village",
    "snooze_until",
    "snoozed",
    "to_us",
]
