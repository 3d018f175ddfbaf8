"""Helpers shared by every test package (never imported from a ``test_*.py`` module).

``wait_until`` is the one way a test waits: on a condition, never on a clock, with a
message that says what it was waiting for when it gives up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not hold in time; the message names it and its last value."""


def wait_until(
    predicate: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
    max_interval: float = 0.5,
) -> T:
    """Poll ``predicate`` until it returns something truthy and return that value.

    Exceptions raised by the predicate count as "not yet" (a service still starting
    refuses connections); the last one is reported if time runs out. The interval
    backs off from ``interval`` to ``max_interval`` so short waits stay short and long
    ones do not spin.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    delay = interval
    while True:
        try:
            value = predicate()
        except Exception as exc:  # reported below when time runs out
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what} (last: {last!r})")
        time.sleep(delay)
        delay = min(delay * 1.5, max_interval)
