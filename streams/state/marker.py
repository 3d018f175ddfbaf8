"""The partition marker: the table entry written last in every batch.

A changelog partition has one writer and is written in order, so whatever survives
a crash is a prefix of the writes: if a batch's marker survived, every village write
of that batch did too, and the source can resume right after ``offset``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

MARKER_PREFIX = "~p"


def marker_key(partition: int) -> str:
    """The table key of a partition's marker (village values are keyed by village id)."""
    return f"{MARKER_PREFIX}{partition}"


def is_marker_key(key: str) -> bool:
    return key.startswith(MARKER_PREFIX)


@dataclass(slots=True)
class PartitionMarker:
    """Per-partition record written last in every batch (key ``~p{partition}``)."""

    partition: int
    #: last source offset whose batch is completely in the changelog
    offset: int = -1
    stream_time: int | None = None
    #: records not attributable to a known village (bad JSON, unknown village)
    dead_lettered: int = 0
    #: records that arrived on the wrong partition and were re-routed
    rerouted: int = 0
    #: dead_lettered by reason
    dead_reasons: dict[str, int] = field(default_factory=dict)
