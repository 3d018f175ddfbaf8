"""What the stream worker hands to a durable ledger: each village's monthly figures.

The embedded broker keeps nothing across a restart and Prometheus keeps 15 days, but an
officer reports months and years. So the worker writes each village's month rows
(:func:`streams.months.month_row`) to a ledger once they are in the changelog. The writer
is injected (the stream app never imports ``services``); `services.ledger` is the SQL one.

A row is keyed by (worker group, village, month, epoch) and carries the village's count
of changes (``VillageState.changes``: events applied, and pickups requested or made overdue,
which a timer does without an event) as ``seq``: rows are cumulative within an epoch, so
writing one again, or an older one after a newer (a replay, two workers during a
rebalance), changes nothing;
a village whose state starts from nothing (a fresh broker) gets a new epoch, whose rows add
to the old ones.

The ledger also keeps what a new epoch must not forget: the event ids the village's earlier
lives applied (the dedupe set's digests with their segment day, handed over with the rows)
and how many pickups they requested. A village whose state starts from nothing asks for
them (:class:`Prior`) before its first event: without them a hub re-sending yesterday's
file after an embedded broker restart had every event counted again in the ledger, and the
village's pickups numbered from 1 again, reusing ids (and event ids) of pickups already sent.
What the epoch starting had applied itself is not asked for: a state rebuilt on the
cluster it was lost on re-applies those records (`streams.processor.village_epoch`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from streams.months import month_row
from streams.state import SealedIds, VillageState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LedgerRow:
    #: the worker group's app id (topic prefix included): deployments sharing a database
    #: keep their figures apart
    stream: str
    village_id: str
    hub_id: str
    month: str
    epoch: str
    seq: int
    figures: dict[str, Any]
    #: (digest, segment day) of events the village applied that were not handed over yet
    #: (`streams.state.dedupe.event_digest`; the day as in the dedupe set)
    ids: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Prior:
    """What the ledger holds of a village's earlier lives: the ids they applied, with their
    segment day, and the pickups they requested (the next one is numbered after them)."""

    ids: tuple[tuple[int, int], ...] = ()
    pickups_requested: int = 0


class LedgerWriter(Protocol):
    def write(self, rows: Sequence[LedgerRow]) -> None:
        """Store `rows`, keeping per (village, month, epoch) the one with the highest seq,
        and their ids (a digest stored once)."""

    def prior(self, stream: str, village_id: str, since_day: int, epoch: str = "") -> Prior:
        """The village's ids of segment days from `since_day` on, and its pickups requested,
        over every epoch stored but `epoch` (the one starting: its records are re-read)."""


class PriorLookup:
    """The ledger's :class:`Prior` of villages whose state starts from nothing, asked off
    the event loop (`many`, from a thread, for a batch's new villages) or, for one the
    batch did not foresee, in line. After a failure it asks nothing for `pause_s`: an
    unreachable database must not hold every new village's first event (and the loop)
    for a connect timeout."""

    def __init__(self, ledger: LedgerWriter, stream: str, pause_s: float = 60.0) -> None:
        self.ledger = ledger
        self.stream = stream
        self.pause_s = pause_s
        self._down_until = 0.0

    def __call__(self, village_id: str, since_day: int, epoch: str = "") -> Prior | None:
        if time.monotonic() < self._down_until:
            return None
        for _try in range(2):  # twice: the first may meet a dropped pooled connection
            try:
                return self.ledger.prior(self.stream, village_id, since_day, epoch)
            except Exception as failure:  # noqa: BLE001 - the stream goes on
                exc = failure
        self._down_until = time.monotonic() + self.pause_s
        log.warning("the ledger did not say what villages' earlier lives applied (%s: %s); "
                    "not asked for %.0f s: a re-send of their events counts again in the "
                    "ledger", type(exc).__name__, exc, self.pause_s)
        return None

    def many(self, wanted: dict[str, tuple[int, str]]) -> dict[str, Prior]:
        """``{village_id: (from segment day, epoch starting)}`` -> the villages' Priors
        (those it could ask)."""
        out: dict[str, Prior] = {}
        for vid, (since_day, epoch) in wanted.items():
            prior = self(vid, since_day, epoch)
            if prior is None:
                break
            out[vid] = prior
        return out


class LedgerFeed:
    """The rows a worker still has to hand over, and which of them changed since."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self._written: dict[tuple[str, str, str], dict[str, Any]] = {}
        #: per (village, epoch): the ids of its open dedupe segment handed over (the sealed
        #: ones were handed over while open; after a restart the open part goes again)
        self._ids: dict[tuple[str, str], set[int]] = {}

    def rows(self, states: Iterable[VillageState],
             sealed: Iterable[SealedIds] = ()) -> list[LedgerRow]:
        """Rows of the months whose figures differ from what was last handed over; the
        village's ids not handed over yet ride on its first row (on its latest month's
        when no figure changed): those of its open dedupe segment, and those of the
        segments ``sealed`` in the same writes (a batch spanning days seals them before
        any handover saw them open)."""
        closed: dict[str, list[tuple[int, int]]] = {}
        for seg in sealed:
            closed.setdefault(seg.village_id, []).extend(seg.items())
        out = []
        for state in states:
            mine = []
            for month in state.months:
                figures = month_row(state, month)
                key = (state.village_id, month, state.epoch)
                if self._written.get(key) == figures:
                    continue
                mine.append(LedgerRow(self.stream, state.village_id, state.hub_id, month,
                                      state.epoch, state.changes, figures))
            open_ids = state.seen.by_id
            handed = self._ids.get((state.village_id, state.epoch))
            if handed is not None:
                handed.intersection_update(open_ids)  # sealed since: forget them here
            new = tuple((h, d) for h, d in open_ids.items() if handed is None or h not in handed)
            new += tuple(closed.get(state.village_id, ()))
            if handed is None:
                # the first handover of this process: the sealed segments go too (stored
                # once; a crash after a batch's changelog landed and before its rows did
                # lost the ids it sealed, which no later batch would carry)
                new += tuple(state.seen.sealed_items())
            # counted as handed over now, not when written: the rows go to the ledger or,
            # when a write fails, back to the pending ones with their ids (each batch had
            # carried every id of the open segment again while the ledger was down)
            self._ids.setdefault((state.village_id, state.epoch), set()).update(
                h for h, _day in new)
            if new:
                if not mine and state.months:
                    month = max(state.months)
                    mine.append(LedgerRow(self.stream, state.village_id, state.hub_id, month,
                                          state.epoch, state.changes,
                                          month_row(state, month)))
                if mine:
                    mine[0] = dataclasses.replace(mine[0], ids=new)
            out.extend(mine)
        return out

    def written(self, rows: Iterable[LedgerRow]) -> None:
        for r in rows:
            self._written[(r.village_id, r.month, r.epoch)] = r.figures
