"""The shared wait helper: returns the first truthy value, reports what it waited for."""

from __future__ import annotations

import itertools

import pytest

from tests.helpers import WaitTimeout, wait_until


def test_wait_until_returns_the_first_truthy_value() -> None:
    """Falsy values and exceptions count as 'not yet'."""
    answers = iter([0, None, ValueError("starting"), 7])

    def probe() -> int | None:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(probe, timeout=5, what="a value", interval=0.001) == 7


def test_wait_until_names_what_it_waited_for_and_the_last_value() -> None:
    """A timeout says what was awaited and what the predicate last gave."""
    counter = itertools.count()
    with pytest.raises(WaitTimeout, match=r"the answer .*last: ValueError\('no'\)"):

        def probe() -> bool:
            next(counter)
            raise ValueError("no")

        wait_until(probe, timeout=0.05, what="the answer", interval=0.01)
    assert next(counter) >= 2  # it retried before giving up
