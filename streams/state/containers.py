"""A village's share of a reusable-container pool.

Returns are matched to issues first in, first out, so "overdue" (issued more than
``container_overdue_days`` ago and not matched by a return) needs no container ids:
hubs report counts, not which crate came back.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field


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
        fifo = self.fifo
        if fifo and fifo[-1][0] == at:
            fifo[-1][1] += count
        elif fifo and fifo[-1][0] > at:
            # a late shipment: keep the queue ordered by issue time
            i = bisect_left([e[0] for e in fifo], at)
            if i < len(fifo) and fifo[i][0] == at:
                fifo[i][1] += count
            else:
                fifo.insert(i, [at, count])
        else:
            fifo.append([at, count])

    def take(self, count: int) -> None:
        fifo = self.fifo
        while count and fifo:
            head = fifo[0]
            if head[1] <= count:
                count -= head[1]
                fifo.pop(0)
            else:
                head[1] -= count
                count = 0

    def overdue(self, now: int, overdue_us: int) -> int:
        limit = now - overdue_us
        total = 0
        for at, count in self.fifo:
            if at < limit:
                total += count
            else:
                break
        return total
