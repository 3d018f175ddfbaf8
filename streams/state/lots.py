"""Dated lots, first in first out: ``[[at_us, amount], ...]`` ordered by time.

Two things in a village are counted without identities but must know their age:
containers out (hubs report how many came back, not which) and uncollected waste
(collectors weigh what they take, not which day's parcels it came from). Both take the
oldest first, so a queue of dated amounts answers "how old is what is still out".
"""

from __future__ import annotations

from bisect import bisect_left

Lots = list[list[int]]


def add_lot(lots: Lots, at: int, amount: int) -> None:
    """Add ``amount`` dated ``at``, merging with a lot of the same time; a late one is
    inserted in time order."""
    if lots and lots[-1][0] == at:
        lots[-1][1] += amount
    elif lots and lots[-1][0] > at:
        i = bisect_left([e[0] for e in lots], at)
        if i < len(lots) and lots[i][0] == at:
            lots[i][1] += amount
        else:
            lots.insert(i, [at, amount])
    else:
        lots.append([at, amount])


def take_oldest(lots: Lots, amount: int) -> None:
    """Remove ``amount``, oldest first (what is left is the most recent)."""
    while amount and lots:
        head = lots[0]
        if head[1] <= amount:
            amount -= head[1]
            lots.pop(0)
        else:
            head[1] -= amount
            amount = 0


def take_newest(lots: Lots, amount: int) -> None:
    """Remove ``amount``, newest first (a correction of what was recorded lately)."""
    while amount and lots:
        tail = lots[-1]
        if tail[1] <= amount:
            amount -= tail[1]
            lots.pop()
        else:
            tail[1] -= amount
            amount = 0


def older_than(lots: Lots, limit: int) -> int:
    """The amount dated before ``limit``."""
    total = 0
    for at, amount in lots:
        if at >= limit:
            break
        total += amount
    return total
