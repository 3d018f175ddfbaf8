"""The simulator's calendar: peaks at the official figures, the Spring Festival by the
lunar calendar, and a county whose villages add up to its census."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pytest

from optimizer import load_factors
from services.simulation.seasons import SPRING_FESTIVAL, Seasons, festival_window

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seasons() -> Seasons:
    return Seasons.from_factors(load_factors())


def _days(first: date, last: date):
    d = first
    while d <= last:
        yield d
        d += timedelta(days=1)


def test_double11_season_averages_the_official_figure(seasons):
    """1-11 November averages about 1.4x an ordinary day (State Post Bureau, 2023); no day
    reaches the old 2.6x."""
    days = list(_days(date(2026, 11, 1), date(2026, 11, 11)))
    mean = sum(seasons.down(d) for d in days) / len(days)
    assert mean == pytest.approx(1.4, abs=0.02)
    year = list(_days(date(2026, 1, 1), date(2026, 12, 31)))
    assert max(seasons.down(d) for d in year) <= 1.5


def test_the_festival_dip_follows_the_lunar_calendar(seasons):
    """2026's new year is 17 Feb: 1-15 Feb (the old fixed dip) is mostly pre-festival
    shopping, and 2027's dip (6 Feb) starts three weeks earlier in the solar year."""
    assert seasons.down(date(2026, 2, 17)) == seasons.festival_dip
    assert seasons.down(date(2026, 2, 1)) == seasons.pre_festival
    assert seasons.down(date(2027, 1, 31)) == seasons.festival_dip
    assert seasons.down(date(2027, 2, 20)) == 1.0
    first, last = festival_window(2026) or (None, None)
    assert (first, last) == (date(2026, 2, 10), date(2026, 2, 24))
    # the table is the lunar calendar: every new year falls between 21 Jan and 20 Feb
    assert all(date(y, 1, 21) <= d <= date(y, 2, 20) for y, d in SPRING_FESTIVAL.items())


def test_a_late_december_day_sees_next_years_festival(seasons):
    """A new year in late January casts its pre-festival shopping back into December of the
    year before (2028's is 26 Jan: shopping from 5 Jan; 2031's is 23 Jan: from 2 Jan)."""
    assert seasons.down(date(2028, 1, 5)) == seasons.pre_festival
    assert seasons.down(date(2030, 12, 31)) == 1.0


def test_sample_county_adds_up_to_the_census():
    """Suichang had 194,385 residents at the 2020 census; the sample's villages add up to it."""
    county = json.loads((ROOT / "streams" / "data" / "sample_county.json").read_text("utf-8"))
    assert sum(v["population"] for v in county["villages"]) == 194_385
