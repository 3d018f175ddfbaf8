"""The dedupe set of a village: which event ids it has applied, over a 90-day backlog.

An id joins the *open* part of the set, which is in the village's table value, so the
marker "event X applied" and the change X made land in the same changelog record and
cannot recover apart. Ids are grouped by *segment*: the UTC day of the partition's
stream time when they were applied (never earlier than the village's newest segment).
Once stream time has left a segment's day, nothing joins that segment again, so it is
**sealed**: written once as its own table record (:class:`SealedIds`, key
:func:`segment_key`) *before* the village value that stops carrying it, and named in
that value (``sealed_days``). The changelog is a prefix of the writes, so a village
value that names a sealed segment is never recovered without it; a value written
before the seal still carries the ids itself. A village value therefore carries one
day of ids, not the whole horizon, whatever the horizon.

A segment is forgotten once its whole day is older than the dedupe horizon behind
stream time. Every id in it belongs to an event dated no later than that day (stream
time is at least the event's ``occurred_at`` once applied), and the worker refuses an
event older than the horizon before consulting the set, so no re-send can need it.
The record of a forgotten sealed segment is deleted with a tombstone.

In memory the sealed ids of a village are one sorted ``int64`` array (8 bytes an id,
searched by bisection) with the segment day of each (4 bytes); ``bench/
streams_dedupe_memory.py`` measures it.

What the set stores for an event is its :func:`event_digest`: the top 48 bits of the id's
hash, then 15 bits of the event's content. A re-send repeats both; an event that reuses an
applied id with other content (a sender's bug) matches the id bits only and is told apart
(:meth:`SeenSet.verdict`), so it is dead-lettered instead of being dropped as a re-send.
Digests stored before content bits existed are the whole 63-bit :func:`id_hash`; a re-send
of such an event still matches it exactly.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Literal

import numpy as np

from streams.state.times import DAY_US

SEGMENT_PREFIX = "~s"
_BE = np.dtype(">i8")
#: the low bits of a digest that hold the event's content; the 48 above them are the id's.
#: Two different ids share their 48 bits with odds n / 2**48 per event (n ids kept, ~17,000
#: for the busiest village: 6e-11), and the later one is then dead-lettered as a conflict,
#: visibly; a changed event goes unnoticed (taken for a re-send, as before) with odds about
#: 2**-14 (its content bits, or the id hash's own low bits that an older digest is).
CONTENT_BITS = 15
_CONTENT_MASK = (1 << CONTENT_BITS) - 1
Verdict = Literal["new", "duplicate", "conflict"]


def id_hash(event_id: str) -> int:
    """A 63-bit digest of an event id: the dedupe set stores this, not the id.

    A new event is taken for a re-send only if its digest equals one of the village's
    stored ones: with *n* ids kept (~17,000 for the sample county's busiest village over
    a 92-day horizon) that is *n* / 2**63 ≈ 2e-15 per event.
    """
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big") >> 1


def event_digest(id_h: int, content: bytes) -> int:
    """What the set stores for an applied event: the id's hash (:func:`id_hash`) with its
    low :data:`CONTENT_BITS` replaced by a hash of its content (the JSON object as sent,
    keys sorted: `streams.events.decode_hub_event`)."""
    c = int.from_bytes(hashlib.blake2b(content, digest_size=2).digest(), "big") & _CONTENT_MASK
    return (id_h & ~_CONTENT_MASK) | c


def segment_key(village_id: str, day: int) -> str:
    """The table key of a village's sealed segment (``~s{day}:{village_id}``)."""
    return f"{SEGMENT_PREFIX}{day}:{village_id}"


def is_segment_key(key: str) -> bool:
    return key.startswith(SEGMENT_PREFIX)


def segment_village(key: str) -> str:
    return key.split(":", 1)[1]


class SealedIds:
    """The table value of one sealed segment: the ids a village applied on one day."""

    __slots__ = ("village_id", "day", "blob")

    def __init__(self, village_id: str, day: int, blob: bytes) -> None:
        self.village_id = village_id
        self.day = day
        #: the sorted 63-bit hashes, 8 bytes each, big-endian
        self.blob = blob

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SealedIds) and (other.village_id, other.day, other.blob) == (
            self.village_id,
            self.day,
            self.blob,
        )

    def __repr__(self) -> str:
        return f"SealedIds({self.village_id}, day {self.day}, {len(self.blob) // 8} ids)"

    def items(self) -> list[tuple[int, int]]:
        """(hash, segment day) of each id, as `SeenSet.sealed_items` gives them."""
        return [(h, self.day) for h in np.frombuffer(self.blob, dtype=_BE).tolist()]


def _to_blob(hashes: list[int]) -> bytes:
    return np.array(sorted(hashes), dtype=_BE).tobytes()


class SeenSet:
    """The dedupe set: an open part by segment day, and the sealed part in arrays."""

    __slots__ = ("by_id", "by_day", "sealed_days", "attached", "newest", "_hashes", "_days",
                 "_packed", "_open_ids")

    def __init__(self) -> None:
        #: open part: id hash -> segment day, and segment day -> its ids
        self.by_id: dict[int, int] = {}
        self.by_day: dict[int, list[int]] = {}
        #: sealed segments this village's value relies on (their records hold the ids)
        self.sealed_days: set[int] = set()
        #: sealed segments whose ids are in the arrays (all of them, once recovered)
        self.attached: set[int] = set()
        #: the latest segment day (ids never join an older one)
        self.newest = -1
        self._hashes = np.empty(0, dtype=np.int64)
        self._days = np.empty(0, dtype=np.int32)
        self._packed: dict[int, tuple[int, str]] = {}
        #: open part by id bits (digest >> CONTENT_BITS): how many digests carry them
        self._open_ids: dict[int, int] = {}

    def __contains__(self, h: object) -> bool:
        if h in self.by_id:
            return True
        hashes = self._hashes
        if not len(hashes) or not isinstance(h, int):
            return False
        i = int(hashes.searchsorted(h))
        return i < len(hashes) and int(hashes[i]) == h

    def knows_id(self, id_h: int) -> bool:
        """Whether an event with this id (:func:`id_hash`) was applied, whatever its content."""
        key = id_h >> CONTENT_BITS
        if key in self._open_ids:
            return True
        hashes = self._hashes
        if not len(hashes):
            return False
        i = int(hashes.searchsorted(key << CONTENT_BITS))
        return i < len(hashes) and int(hashes[i]) >> CONTENT_BITS == key

    def verdict(self, id_h: int, digest: int) -> Verdict:
        """``duplicate`` for a re-send (the same digest, or the whole id hash a digest
        stored before content bits is), ``conflict`` for an applied id with other content,
        else ``new``."""
        if digest in self or id_h in self:
            return "duplicate"
        return "conflict" if self.knows_id(id_h) else "new"

    def _open_add(self, h: int) -> None:
        key = h >> CONTENT_BITS
        self._open_ids[key] = self._open_ids.get(key, 0) + 1

    def _open_drop(self, h: int) -> None:
        key = h >> CONTENT_BITS
        n = self._open_ids.get(key, 0) - 1
        if n > 0:
            self._open_ids[key] = n
        else:
            self._open_ids.pop(key, None)

    def __len__(self) -> int:
        return len(self.by_id) + len(self._hashes)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, SeenSet)
            and other.by_id == self.by_id
            and other.sealed_days == self.sealed_days
            and np.array_equal(other._hashes, self._hashes)
            and np.array_equal(other._days, self._days)
        )

    def __repr__(self) -> str:
        return (
            f"SeenSet({len(self.by_id)} open ids in {len(self.by_day)} segments, "
            f"{len(self._hashes)} sealed in {len(self.sealed_days)})"
        )

    @property
    def nbytes(self) -> int:
        """Bytes the sealed arrays take (the bench's figure; the open part is a dict)."""
        return int(self._hashes.nbytes + self._days.nbytes)

    def add(self, h: int, now: int) -> None:
        """Record ``h`` as applied at stream time ``now`` (µs)."""
        if h in self.by_id:
            return
        day = max(now // DAY_US, self.newest)
        self.newest = day
        self.by_id[h] = day
        self.by_day.setdefault(day, []).append(h)
        self._open_add(h)

    def prune(self, limit: int) -> list[int]:
        """Forget the segments whose day ends before ``limit`` (µs); returns the sealed
        ones forgotten (their records are to be deleted)."""
        for day in [d for d in self.by_day if (d + 1) * DAY_US - 1 < limit]:
            for h in self.by_day.pop(day):
                if self.by_id.pop(h, None) is not None:
                    self._open_drop(h)
            self._packed.pop(day, None)
        gone = sorted(d for d in self.sealed_days if (d + 1) * DAY_US - 1 < limit)
        if gone:
            self.sealed_days.difference_update(gone)
            self.attached.difference_update(gone)
            keep = self._days > gone[-1]
            self._hashes = self._hashes[keep]
            self._days = self._days[keep]
        return gone

    def seal(self, before_day: int) -> list[tuple[int, bytes]]:
        """Move the open segments older than ``before_day`` to the sealed part; returns
        each as ``(day, blob)``, the record to write before the village value."""
        out = []
        for day in sorted(d for d in self.by_day if d < before_day):
            hashes = self.by_day.pop(day)
            for h in hashes:
                del self.by_id[h]
                self._open_drop(h)
            self._packed.pop(day, None)
            blob = _to_blob(hashes)
            self._merge(blob, day)
            self.sealed_days.add(day)
            self.attached.add(day)
            out.append((day, blob))
        return out

    def attach(self, day: int, blob: bytes) -> bool:
        """Load a sealed segment's record (on recovery); ignored unless the village value
        names it and it is not loaded yet."""
        if day not in self.sealed_days or day in self.attached:
            return False
        self._merge(blob, day)
        self.attached.add(day)
        return True

    def sealed_items(self) -> list[tuple[int, int]]:
        """(hash, segment day) of every id in the loaded sealed segments."""
        return list(zip(self._hashes.tolist(), self._days.tolist(), strict=True))

    def missing(self) -> list[int]:
        """Sealed segments named by the value whose records were not found."""
        return sorted(self.sealed_days - self.attached)

    def _merge(self, blob: bytes, day: int) -> None:
        new = np.frombuffer(blob, dtype=_BE).astype(np.int64)
        hashes = np.concatenate([self._hashes, new])
        days = np.concatenate([self._days, np.full(len(new), day, dtype=np.int32)])
        order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[order]
        self._days = days[order]

    def pack(self) -> dict[str, str]:
        """The open part as ``{segment day: base64 of 8-byte hashes}`` (~11 bytes an id);
        a segment's text is cached until it gains an id."""
        out: dict[str, str] = {}
        for day, hashes in self.by_day.items():
            cached = self._packed.get(day)
            if cached is None or cached[0] != len(hashes):
                text = base64.b64encode(b"".join(h.to_bytes(8, "big") for h in hashes)).decode()
                cached = self._packed[day] = (len(hashes), text)
            out[str(day)] = cached[1]
        return out

    @classmethod
    def unpack(cls, packed: Any, sealed_days: Any = ()) -> SeenSet:
        """The set as a village value carries it: the open part and the sealed days (their
        ids arrive with :meth:`attach`). A value written before segments were sealed has
        every id in the open part, grouped by event day: read as open segments, they are
        sealed at the village's next write."""
        seen = cls()
        for day_s, blob in (packed or {}).items():
            day = int(day_s)
            raw = base64.b64decode(blob)
            hashes = [int.from_bytes(raw[i : i + 8], "big") for i in range(0, len(raw), 8)]
            seen.by_day[day] = hashes
            for h in hashes:
                if h not in seen.by_id:
                    seen._open_add(h)
                seen.by_id[h] = day
            seen._packed[day] = (len(hashes), blob)
        seen.sealed_days = {int(d) for d in sealed_days or ()}
        seen.newest = max([*seen.by_day, *seen.sealed_days], default=-1)
        return seen
