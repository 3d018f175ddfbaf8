"""What the stream worker hands to a durable ledger: each village's monthly figures.

The embedded broker keeps nothing across a restart and Prometheus keeps 15 days, but an
officer reports months and years. So the worker writes each village's month rows
(:func:`streams.months.month_row`) to a ledger once they are in the changelog. The writer
is injected (the stream app never imports ``services``); `services.ledger` is the SQL one.

A row is keyed by (worker group, village, month, epoch) and carries the village's
applied-event count as ``seq``: rows are cumulative within an epoch, so writing one again,
or an older one after a newer (a replay, two workers during a rebalance), changes nothing;
a village whose state starts from nothing (a fresh broker) gets a new epoch, whose rows add
to the old ones.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from streams.months import month_row
from streams.state import VillageState

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


class LedgerWriter(Protocol):
    def write(self, rows: Sequence[LedgerRow]) -> None:
        """Store `rows`, keeping per (village, month, epoch) the one with the highest seq."""


class LedgerFeed:
    """The rows a worker still has to hand over, and which of them changed since."""

    def __init__(self, stream: str) -> None:
        self.stream = stream
        self._written: dict[tuple[str, str, str], dict[str, Any]] = {}

    def rows(self, states: Iterable[VillageState]) -> list[LedgerRow]:
        """Rows of the months whose figures differ from what was last handed over."""
        out = []
        for state in states:
            for month in state.months:
                figures = month_row(state, month)
                key = (state.village_id, month, state.epoch)
                if self._written.get(key) == figures:
                    continue
                out.append(LedgerRow(self.stream, state.village_id, state.hub_id, month,
                                     state.epoch, state.applied, figures))
        return out

    def written(self, rows: Iterable[LedgerRow]) -> None:
        for r in rows:
            self._written[(r.village_id, r.month, r.epoch)] = r.figures
