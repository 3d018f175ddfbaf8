"""One partition's processing, pure and synchronous (Faust only feeds it records).

A :class:`PartitionProcessor` takes the records of one ``hub-events`` partition
in offset order and turns them into state changes, pickup notices, dead-letter
records and re-routed records. At the end of a batch, :meth:`checkpoint` returns
the table writes: every village value that changed, then this partition's
:class:`PartitionMarker` **last**.

Exactly-once effect on state, without transactions
--------------------------------------------------
The table changelog of partition *p* is written in order and only by the owner of
*p*, so whatever survives a crash (or a short table recovery) is a *prefix* of the
writes. Hence:

* If the marker of a batch survived, every village write of that batch did too:
  resuming the source at ``marker.offset + 1`` loses nothing.
* Records after the marker may already be reflected in some village values (the
  part of the last batch that landed). Each village value carries the offset of
  the last record processed for it, so such records are recognised and skipped,
  and the village's counters (written in the same value) are not bumped twice.
* A re-sent event (new offset, same ``event_id``) is found in the village's dedupe
  set, which is also part of the same value (its sealed segments are records written
  before the value that names them: :mod:`streams.state.dedupe`).

Pickup notices are published (and acknowledged) *before* the state that records
them is written, and their ``pickup_id``/``event_id`` are derived from the state,
so a crash can only cause the same notice to be sent again, never a lost or a
different one.

A record the worker cannot apply never stops it
-----------------------------------------------
Applying an event to its village is journaled (:mod:`streams.state.undo`). If any step
raises, the village is put back as it was before the record, and the record is
dead-lettered (``apply_failed``, with the exception) and counted in the village's
``dead_lettered`` in the same value that records its offset: a redelivery is skipped,
a re-send fails the same way, and nothing of the event was counted. Without this, a
record that raised would stop the worker, which would stop again on the same record
after every restart.
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from streams.acceptance import AcceptanceLimits
from streams.deadletter import dead_letter_record
from streams.events import (
    EventError,
    Material,
    PickupOverdue,
    PickupRequested,
    decode_hub_event,
    event_to_json,
)
from streams.kafka import EMBEDDED_CLUSTER_PREFIX
from streams.ledger import Prior
from streams.state import (
    DAY_US,
    HOUR_US,
    Emission,
    Limits,
    PartitionMarker,
    Rejected,
    SealedIds,
    VillageState,
    apply,
    check,
    evaluate,
    event_digest,
    from_us,
    id_hash,
    marker_key,
    next_due,
    prune,
    segment_key,
    to_us,
)
from streams.state.undo import Journal

log = logging.getLogger("packloop.streams")

#: The dead-letter reason of a record whose application raised (see the module docstring).
APPLY_FAILED = "apply_failed"
#: The dead-letter reason of an event reusing an applied event_id with other content: taken
#: for a re-send it would be lost in silence (`streams.state.dedupe`, content bits).
EVENT_ID_CONFLICT = "event_id_conflict"

#: A table write: a value, or ``None`` to delete the key (a tombstone).
TableWrite = tuple[str, VillageState | PartitionMarker | SealedIds | None]

_LIMITS = AcceptanceLimits()

#: Namespace of pickup notice event ids: uuid5(PICKUP_NAMESPACE, pickup_id + ":" + kind)
PICKUP_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:packloop:pickups")

def pickup_event_id(pickup_id: str, kind: str) -> str:
    return str(uuid.uuid5(PICKUP_NAMESPACE, f"{pickup_id}:{kind}"))


_PARTITION_CACHE: dict[tuple[bytes, int], int] = {}


def murmur2_partition(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (Java client, aiokafka, kafka-python)."""
    cached = _PARTITION_CACHE.get((key, partitions))
    if cached is None:
        from aiokafka.partitioner import murmur2

        cached = (murmur2(key) & 0x7FFFFFFF) % partitions
        if len(_PARTITION_CACHE) < 200_000:
            _PARTITION_CACHE[(key, partitions)] = cached
    return cached


def village_epoch(cluster_id: str | None, village_id: str) -> str:
    """The epoch (life) a village's state starts when it starts from nothing.

    On the embedded broker, one per cluster: its memory log lives exactly as long as its
    cluster id, and nothing truncates it, so a state rebuilt there (its changelog read back
    short or empty, a Tansu quirk) re-reads every record of the life it lost: it is that
    life, re-applying them and reproducing its ledger rows, and what the ledger holds of
    it is no prior. A random epoch there counted every record re-read as a re-send of the
    earlier life's, and the restarted worker's tallies lost them (an outside audit: 15 of
    24 villages). A new embedded broker is a new cluster, so a new life.

    Anywhere else, a new life each time (random): an Apache Kafka cluster keeps its id when
    it comes back empty (a lost volume under a fixed CLUSTER_ID) or when retention has
    deleted old records, so the same id does not mean the records are there to re-read,
    and taking a new life for the old one counted re-sends again and overwrote its ledger
    rows (a review); its changelogs are not read back short."""
    if cluster_id is None or not cluster_id.startswith(EMBEDDED_CLUSTER_PREFIX):
        return uuid.uuid4().hex[:16]
    return hashlib.blake2b(f"{cluster_id}\0{village_id}".encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class ProcessingConfig:
    """The worker's limits; the defaults are :class:`~streams.acceptance.AcceptanceLimits`'."""

    dedupe_horizon_us: int = _LIMITS.dedupe_horizon_us
    future_tolerance_us: int = _LIMITS.future_tolerance_us
    partitions: int = 1
    source_topic: str = "hub-events"
    #: what the ledger holds of a village's earlier lives, asked when its state starts from
    #: nothing and the batch did not fetch it ahead (`PartitionProcessor.priors`):
    #: (village_id, from segment day, the epoch it starts) -> `streams.ledger.Prior`, None
    #: when not known
    prior: Callable[[str, int, str], Prior | None] | None = field(default=None, compare=False)
    #: the Kafka cluster the state belongs to (`streams.cluster_watch`), None when not known:
    #: a village's epoch comes from it (`village_epoch`)
    cluster_id: str | None = None


@dataclass(slots=True)
class Outbox:
    """What one batch must publish before its table writes."""

    #: (village_id, pickup event JSON)
    pickups: list[tuple[str, bytes]] = field(default_factory=list)
    #: (village_id or None, dead-letter JSON)
    dead_letters: list[tuple[str | None, bytes]] = field(default_factory=list)
    #: (partition, key, original value)
    reroutes: list[tuple[int, bytes | None, bytes]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.pickups or self.dead_letters or self.reroutes)

    def clear(self) -> None:
        self.pickups.clear()
        self.dead_letters.clear()
        self.reroutes.clear()


def emission_to_json(em: Emission) -> bytes:
    cls = PickupRequested if em.kind == "pickup_requested" else PickupOverdue
    event = cls(
        event_id=pickup_event_id(em.pickup_id, em.kind),
        occurred_at=from_us(em.occurred_at),
        hub_id=em.hub_id,
        village_id=em.village_id,
        pickup_id=em.pickup_id,
        # material names as the state keeps them: the model validates them into Material
        outstanding_grams=cast("dict[Material, int]", em.outstanding_grams),
        reasons=em.reasons,
    )
    return event_to_json(event)


class PartitionProcessor:
    def __init__(
        self,
        partition: int,
        network: Any,
        config: ProcessingConfig,
        villages: dict[str, VillageState] | None = None,
        marker: PartitionMarker | None = None,
    ) -> None:
        self.partition = partition
        self.network = network
        self.config = config
        self.tz = network.timezone
        self.container_types = {
            str(k.value): (str(v.material.value), int(v.unit_grams))
            for k, v in network.container_types.items()
        }
        self.villages: dict[str, VillageState] = villages if villages is not None else {}
        self.marker = marker or PartitionMarker(partition)
        self.stream_time: int | None = self.marker.stream_time
        self.outbox = Outbox()
        self.dirty: dict[str, VillageState] = {}
        self.last_offset = self.marker.offset
        self.missing_segments: dict[str, list[int]] = {}
        #: the ledger's Priors of villages new to this batch, fetched ahead off the event
        #: loop (`streams.agents.village`); consumed when the village's state is made
        self.priors: dict[str, Prior] = {}
        self._limits: dict[str, Limits] = {}
        self._due: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        for state in self.villages.values():
            self._schedule(state)

    @classmethod
    def from_table(
        cls,
        partition: int,
        network: Any,
        config: ProcessingConfig,
        items: Iterable[tuple[str, Any]],
    ) -> PartitionProcessor:
        """The processor of ``partition`` rebuilt from its table entries (after a
        rebalance or a crash), sealed dedupe segments attached to their villages and the
        timers already due fired. ``missing_segments`` names any sealed segment a village
        value relies on that was not among the entries (never, while the changelog is a
        prefix of the writes)."""
        villages: dict[str, VillageState] = {}
        segments: list[SealedIds] = []
        marker: PartitionMarker | None = None
        for key, value in items:
            if isinstance(value, VillageState):
                villages[key] = value
            elif isinstance(value, SealedIds):
                segments.append(value)
            elif isinstance(value, PartitionMarker) and value.partition == partition:
                marker = value
        for seg in segments:
            state = villages.get(seg.village_id)
            if state is not None:
                state.seen.attach(seg.day, seg.blob)
        proc = cls(partition, network, config, villages, marker)
        proc.missing_segments = {
            vid: gap for vid, state in villages.items() if (gap := state.seen.missing())
        }
        proc.resume()
        return proc

    # ---- helpers ----

    def limits(self, village_id: str) -> Limits:
        lim = self._limits.get(village_id)
        if lim is None:
            lim = self._limits[village_id] = Limits.for_village(self.network, village_id)
        return lim

    def _schedule(self, state: VillageState) -> None:
        due = next_due(state, self.limits(state.village_id))
        vid = state.village_id
        if due is None:
            self._due.pop(vid, None)
        elif self._due.get(vid) != due:
            self._due[vid] = due
            heapq.heappush(self._heap, (due, vid))

    def _fire_timers(self, trigger_at: int) -> None:
        now = self.stream_time
        if now is None:
            return
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, vid = heapq.heappop(heap)
            if self._due.get(vid) != due:
                continue
            del self._due[vid]
            state = self.villages[vid]
            undo = Journal(state)
            try:
                ems = evaluate(state, now, trigger_at, self.limits(vid), undo)
                bodies = [(em.village_id, emission_to_json(em)) for em in ems]
            except Exception:
                # no record to dead-letter: leave the village as it was, unscheduled (its
                # next event or a recovery schedules it again), and keep the stream going
                undo.restore()
                log.exception("partition %d: the pickup timer of village %s failed; its "
                              "state is left as it was", self.partition, vid)
                continue
            if bodies:
                self.outbox.pickups.extend(bodies)
                self.dirty[vid] = state
            self._schedule(state)

    def _dead_letter(
        self,
        state: VillageState | None,
        offset: int,
        reason: str,
        message: str,
        raw: bytes,
        field: str | None = None,
        event: Any = None,
        village_id: str | None = None,
    ) -> None:
        extra: dict[str, Any] = {
            "message": message,
            "topic": self.config.source_topic,
            "partition": self.partition,
            "offset": offset,
        }
        if event is not None:
            extra["event_id"] = event.event_id
            extra["event_type"] = event.type
            village_id = event.village_id
        if village_id is not None:
            extra["village_id"] = village_id
        self.outbox.dead_letters.append(
            (village_id, dead_letter_record("worker", reason, raw, field=field, **extra))
        )
        if state is not None:
            state.dead_lettered += 1
            state.dead_reasons[reason] = state.dead_reasons.get(reason, 0) + 1
            state.offset = offset
            self.dirty[state.village_id] = state
        else:
            self.marker.dead_lettered += 1
            self.marker.dead_reasons[reason] = self.marker.dead_reasons.get(reason, 0) + 1

    def since_day(self, at: int) -> int:
        """The first dedupe segment day a village's first event at ``at`` (µs) may need."""
        return (max(at, self.stream_time or at) - self.config.dedupe_horizon_us) // DAY_US - 1

    def _new_village(self, vid: str, hub_id: str, at: int) -> VillageState:
        """A village whose state starts from nothing (its first event, or a fresh broker):
        a new epoch, knowing the ids its earlier lives applied within the dedupe horizon and
        numbering its pickups after theirs (`streams.ledger.Prior`)."""
        state = VillageState(vid, hub_id, epoch=village_epoch(self.config.cluster_id, vid))
        prior = self.priors.pop(vid, None)
        ask = self.config.prior
        if prior is None and ask is not None:
            try:
                prior = ask(vid, self.since_day(at), state.epoch)
            except Exception as exc:  # noqa: BLE001 - a lookup that raises is "not known"
                log.warning("village %s: what its earlier lives applied is not known (%s: "
                            "%s)", vid, type(exc).__name__, exc)
        if prior is not None:
            for h, day in sorted(prior.ids, key=lambda item: item[1]):
                state.seen.add(h, day * DAY_US)
            state.pickup_base = prior.pickups_requested
        self.villages[vid] = state
        return state

    # ---- the record path ----

    def process(self, offset: int, key: bytes | None, value: bytes | None, wall_now: int) -> None:
        """Process one source record (offsets must be increasing)."""
        self.last_offset = max(self.last_offset, offset)
        fresh = offset > self.marker.offset  # not covered by a completed batch
        raw = value or b""
        try:
            event, content = decode_hub_event(raw)
        except EventError as exc:
            if fresh:
                vid = key.decode("utf-8", "replace") if key else None
                self._dead_letter(None, offset, exc.code, str(exc), raw, exc.field, village_id=vid)
            return
        vid = event.village_id
        vkey = vid.encode("utf-8")
        right = murmur2_partition(vkey, self.config.partitions)
        if right != self.partition:
            if fresh:
                self.outbox.reroutes.append((right, vkey, raw))
                self.marker.rerouted += 1
            return
        village = self.network.villages.get(vid)
        if village is None:
            if fresh:
                self._dead_letter(
                    None,
                    offset,
                    "unknown_village",
                    f"unknown village {vid!r}",
                    raw,
                    "village_id",
                    event,
                )
            return
        at = to_us(event.occurred_at)
        state = self.villages.get(vid)
        if state is None:
            state = self._new_village(vid, village.hub_id, at)
        h = id_hash(event.event_id)
        digest = event_digest(h, content)
        if offset <= state.offset:
            # Redelivered after a crash or a rebalance: its effect is already in state,
            # its counters included (counted again, a kill -9 mid-batch showed 906
            # re-sends that never happened), but the stream time it reached must fire the
            # timers it fired then (their effect on other villages may not have landed).
            if state.seen.verdict(h, digest) == "duplicate":
                if self.stream_time is None or at > self.stream_time:
                    self.stream_time = at
                    self._fire_timers(at)
            return
        err = self.network.check_event(event)
        if err is not None:
            self._dead_letter(state, offset, err.code, str(err), raw, err.field, event)
            return
        if at > wall_now + self.config.future_tolerance_us:
            self._dead_letter(
                state,
                offset,
                "future_timestamp",
                f"occurred_at: {event.occurred_at.isoformat()} is more than "
                f"{self.config.future_tolerance_us / HOUR_US:g} h ahead of the clock",
                raw,
                "occurred_at",
                event,
            )
            return
        st = self.stream_time
        if st is not None and at < st - self.config.dedupe_horizon_us:
            self._dead_letter(
                state,
                offset,
                "outside_dedupe_horizon",
                f"occurred_at: {event.occurred_at.isoformat()} is older than the dedupe "
                "horizon behind stream time; a re-send could not be recognised",
                raw,
                "occurred_at",
                event,
            )
            return
        verdict = state.seen.verdict(h, digest)
        if verdict == "duplicate":
            state.duplicates += 1
            state.offset = offset
            self.dirty[vid] = state
            return
        if verdict == "conflict":
            self._dead_letter(
                state, offset, EVENT_ID_CONFLICT,
                f"event_id: {event.event_id!r} was already applied to village {vid} with "
                "other content; a re-send must repeat its event unchanged, and a new event "
                "needs a new event_id", raw, "event_id", event)
            return
        if st is None or at > st:
            st = at
        undo = Journal(state)
        try:
            check(state, event, self.container_types, at, self.tz)
            apply(state, event, at, self.tz, self.container_types, undo)
            ems = evaluate(state, st, st, self.limits(vid), undo)
            bodies = [(em.village_id, emission_to_json(em)) for em in ems]
        except Rejected as rej:
            undo.restore()
            self._dead_letter(state, offset, rej.reason, rej.message, raw, rej.field, event)
            return
        except Exception as exc:  # noqa: BLE001 - any failure: this record, not the worker
            undo.restore()
            log.exception("partition %d offset %d: applying event %r to village %s failed; "
                          "dead-lettered (%s)", self.partition, offset, event.event_id, vid,
                          APPLY_FAILED)
            self._dead_letter(
                state, offset, APPLY_FAILED,
                f"the worker could not apply this event ({type(exc).__name__}: {exc}); "
                "nothing of it was counted", raw, None, event)
            return
        self.stream_time = st
        state.seen.add(digest, st)
        state.applied += 1
        state.offset = offset
        if state.last_at is None or at > state.last_at:
            state.last_at = at
        self.outbox.pickups.extend(bodies)
        self.dirty[vid] = state
        self._schedule(state)
        self._fire_timers(st)

    def resume(self) -> None:
        """Fire timers already due at the recovered stream time (after a crash)."""
        if self.stream_time is not None:
            self._fire_timers(self.stream_time)

    def checkpoint(self) -> list[TableWrite]:
        """End of batch: the table writes, villages first and the marker last.

        Each village's newly sealed dedupe segments come just before its value (which
        names them), the tombstones of its forgotten ones just after (it no longer does).
        """
        villages = list(self.dirty.items())
        self.dirty.clear()
        now = self.stream_time
        writes: list[TableWrite] = []
        for vid, state in villages:
            if now is None:
                writes.append((vid, state))
                continue
            gone = prune(state, now, self.tz, self.config.dedupe_horizon_us)
            for day, blob in state.seen.seal(now // DAY_US):
                writes.append((segment_key(vid, day), SealedIds(vid, day, blob)))
            writes.append((vid, state))
            writes.extend((segment_key(vid, day), None) for day in gone)
        m = self.marker
        if self.last_offset > m.offset or writes or self.stream_time != m.stream_time:
            m.offset = self.last_offset
            m.stream_time = self.stream_time
            writes.append((marker_key(self.partition), m))
        return writes
