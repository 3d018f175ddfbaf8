"""A village's share of a reusable-container pool.

Returns are matched to issues first in, first out, so "overdue" (issued more than
``container_overdue_days`` ago and not matched by a return) needs no container ids:
hubs report counts, not which crate came back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.state.lots import add_lot, older_than, take_oldest


@dataclass(slots=True)
class ContainerPool:
    """One village's share of one container type's pool."""

    issued: int = 0
    returned: int = 0
    damaged: int = 0
    lost: int = 0
    #: not yet matched by a return: [[issued_at_us, count], ...] oldest first (FIFO)
    fifo: list[list[int]] = field(default_factory=list)

    @property
    def in_circulation(self) -> int:
        return self.issued - self.returned - self.lost

    def issue(self, at: int, count: int) -> None:
        self.issued += count
        add_lot(self.fifo, at, count)

    def take(self, count: int) -> None:
        take_oldest(self.fifo, count)

    def overdue(self, now: int, overdue_us: int) -> int:
        return older_than(self.fifo, now - overdue_us)
