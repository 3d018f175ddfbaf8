"""packloop's stream processing: hub events in, per-village state, pickups and metrics out.

This is the library's public surface: ``services``, ``bench`` and the infra scripts
import these names from ``streams`` (the modules behind them are free to move). A name
is imported from its module on first use, so ``from streams import KafkaConnection``
in a CLI or an HTTP service does not load Faust, which only a worker needs.

The modules, in the order data flows: :mod:`~streams.events` (the event contract),
:mod:`~streams.acceptance` (the time limits a sender checks so that accepted means
counted), :mod:`~streams.kafka` and :mod:`~streams.topics` (where events travel),
:mod:`~streams.network` (the county's reference data), :mod:`~streams.processor` (one
partition's records turned into state changes), :mod:`~streams.state` (the per-village
state), :mod:`~streams.app` (the Faust worker factory, wiring
:mod:`~streams.agents.village`, :mod:`~streams.views` and :mod:`~streams.metrics`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streams.acceptance import AcceptanceLimits, check_occurred_at
    from streams.app import WorkerOptions, create_worker
    from streams.consume import iter_topic, read_topic
    from streams.deadletter import dead_letter_record, decode_raw
    from streams.events import (
        MAX_EVENT_BYTES,
        ContainerType,
        EventError,
        HubEvent,
        Material,
        PickupCancelled,
        event_to_json,
        parse_hub_event,
    )
    from streams.kafka import (
        DEFAULT_FETCH_MAX_WAIT_MS,
        DEFAULT_SESSION_TIMEOUT_MS,
        KafkaConnection,
        is_tansu,
    )
    from streams.metrics import BatchHistogram, PackloopCollector, scrape
    from streams.months import valid_month
    from streams.network import SAMPLE_NETWORK_PATH, Network, NetworkError, Village, load_network
    from streams.state import (
        DAY_US,
        MONTH_BUCKETS_KEPT,
        ContainerPool,
        OpenPickup,
        PartitionMarker,
        SeenSet,
        VillageState,
        id_hash,
        to_us,
    )
    from streams.topics import DEFAULT_PARTITIONS, Topics, create_topics

__all__ = [
    "DAY_US",
    "MONTH_BUCKETS_KEPT",
    "DEFAULT_FETCH_MAX_WAIT_MS",
    "DEFAULT_PARTITIONS",
    "DEFAULT_SESSION_TIMEOUT_MS",
    "MAX_EVENT_BYTES",
    "SAMPLE_NETWORK_PATH",
    "AcceptanceLimits",
    "BatchHistogram",
    "ContainerPool",
    "ContainerType",
    "EventError",
    "HubEvent",
    "KafkaConnection",
    "Material",
    "Network",
    "NetworkError",
    "OpenPickup",
    "PackloopCollector",
    "PartitionMarker",
    "PickupCancelled",
    "SeenSet",
    "Topics",
    "Village",
    "VillageState",
    "WorkerOptions",
    "check_occurred_at",
    "create_topics",
    "create_worker",
    "dead_letter_record",
    "decode_raw",
    "event_to_json",
    "id_hash",
    "is_tansu",
    "iter_topic",
    "load_network",
    "parse_hub_event",
    "read_topic",
    "scrape",
    "to_us",
    "valid_month",
]

_MODULE_OF = {
    name: module
    for module, names in {
        "streams.acceptance": ("AcceptanceLimits", "check_occurred_at"),
        "streams.app": ("WorkerOptions", "create_worker"),
        "streams.consume": ("iter_topic", "read_topic"),
        "streams.deadletter": ("dead_letter_record", "decode_raw"),
        "streams.events": (
            "MAX_EVENT_BYTES",
            "ContainerType",
            "EventError",
            "HubEvent",
            "Material",
            "PickupCancelled",
            "event_to_json",
            "parse_hub_event",
        ),
        "streams.kafka": (
            "DEFAULT_FETCH_MAX_WAIT_MS",
            "DEFAULT_SESSION_TIMEOUT_MS",
            "KafkaConnection",
            "is_tansu",
        ),
        "streams.metrics": ("BatchHistogram", "PackloopCollector", "scrape"),
        "streams.months": ("valid_month",),
        "streams.network": (
            "SAMPLE_NETWORK_PATH",
            "Network",
            "NetworkError",
            "Village",
            "load_network",
        ),
        "streams.state": (
            "DAY_US",
            "MONTH_BUCKETS_KEPT",
            "ContainerPool",
            "OpenPickup",
            "PartitionMarker",
            "SeenSet",
            "VillageState",
            "id_hash",
            "to_us",
        ),
        "streams.topics": ("DEFAULT_PARTITIONS", "Topics", "create_topics"),
    }.items()
    for name in names
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'streams' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
