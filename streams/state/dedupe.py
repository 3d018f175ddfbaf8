"""The dedupe set of a village: which event ids it has applied.

It is part of the village's table value, so the marker "event X applied" and the
change X made land in the same changelog record and cannot recover apart.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from streams.state.times import DAY_US


def id_hash(event_id: str) -> int:
    """A 63-bit digest of an event id: the dedupe set stores this, not the id.

    Collisions need ~3e9 ids in one village's 14-day horizon to become likely.
    """
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big") >> 1


class SeenSet:
    """The dedupe set: 63-bit id hashes grouped by the UTC day of their event.

    Serialized as ``{day number: base64 of 8-byte hashes}`` (~11 bytes an id); a
    day's text is cached until the day gains an id, so writing a village whose
    horizon holds thousands of ids costs little. A day is forgotten once all of it
    is older than the horizon behind stream time: an id is never dropped before
    its own time is (later is harmless: events older than the horizon are refused
    before the set is consulted).
    """

    __slots__ = ("by_id", "by_day", "_packed")

    def __init__(self) -> None:
        self.by_id: dict[int, int] = {}
        self.by_day: dict[int, list[int]] = {}
        self._packed: dict[int, tuple[int, str]] = {}

    def __contains__(self, h: object) -> bool:
        return h in self.by_id

    def __len__(self) -> int:
        return len(self.by_id)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SeenSet) and other.by_id == self.by_id

    def __repr__(self) -> str:
        return f"SeenSet({len(self.by_id)} ids, {len(self.by_day)} days)"

    def add(self, h: int, at: int) -> None:
        if h in self.by_id:
            return
        day = at // DAY_US
        self.by_id[h] = day
        self.by_day.setdefault(day, []).append(h)

    def prune(self, limit: int) -> None:
        """Forget the days that end before ``limit`` (µs)."""
        for day in [d for d in self.by_day if (d + 1) * DAY_US - 1 < limit]:
            for h in self.by_day.pop(day):
                self.by_id.pop(h, None)
            self._packed.pop(day, None)

    def pack(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for day, hashes in self.by_day.items():
            cached = self._packed.get(day)
            if cached is None or cached[0] != len(hashes):
                text = base64.b64encode(b"".join(h.to_bytes(8, "big") for h in hashes)).decode()
                cached = self._packed[day] = (len(hashes), text)
            out[str(day)] = cached[1]
        return out

    @classmethod
    def unpack(cls, packed: Any) -> SeenSet:
        seen = cls()
        for day_s, blob in (packed or {}).items():
            day = int(day_s)
            raw = base64.b64decode(blob)
            hashes = [int.from_bytes(raw[i : i + 8], "big") for i in range(0, len(raw), 8)]
            seen.by_day[day] = hashes
            for h in hashes:
                seen.by_id[h] = day
            seen._packed[day] = (len(hashes), blob)
        return seen
