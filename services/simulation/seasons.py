"""How busy a day is against an ordinary one: the shopping festivals, the Spring Festival
(by the lunar calendar, so a table of dates) and the harvests. The factors themselves are
facts with sources (optimizer/data/factors.yaml, group `seasons`); this module only knows
which days they apply to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

#: the first day of the lunar new year (Chinese calendar as published by the Purple
#: Mountain Observatory); a year outside the table gets no festival dip
SPRING_FESTIVAL = {
    2023: date(2023, 1, 22), 2024: date(2024, 2, 10), 2025: date(2025, 1, 29),
    2026: date(2026, 2, 17), 2027: date(2027, 2, 6), 2028: date(2028, 1, 26),
    2029: date(2029, 2, 13), 2030: date(2030, 2, 3), 2031: date(2031, 1, 23),
    2032: date(2032, 2, 11), 2033: date(2033, 1, 31), 2034: date(2034, 2, 19),
    2035: date(2035, 2, 8),
}

#: days around the new year: shopping before it, couriers home over it
PRE_FESTIVAL_DAYS = range(-21, -7)
FESTIVAL_DIP_DAYS = range(-7, 8)


@dataclass(frozen=True)
class Seasons:
    double11: float
    double11_peak: float
    mid_year_618: float
    pre_festival: float
    festival_dip: float
    spring_harvest_up: float
    spring_harvest_cold: float
    autumn_harvest_up: float
    autumn_harvest_cold: float

    @classmethod
    def from_factors(cls, f: Any) -> Seasons:
        v = f.value
        return cls(v("seasons.double11"), v("seasons.double11_peak"), v("seasons.mid_year_618"),
                   v("seasons.pre_festival"), v("seasons.festival_dip"),
                   v("seasons.spring_harvest_up"), v("seasons.spring_harvest_cold"),
                   v("seasons.autumn_harvest_up"), v("seasons.autumn_harvest_cold"))

    def down(self, day: date) -> float:
        """Down-parcel volume against an ordinary day. Double-11's deliveries spread from
        the presale's first payments (about 21 October) to 11 November, with the first
        delivery waves the busiest."""
        for festival in (SPRING_FESTIVAL.get(day.year), SPRING_FESTIVAL.get(day.year + 1)):
            if festival is None:
                continue
            offset = (day - festival).days
            if offset in FESTIVAL_DIP_DAYS:
                return self.festival_dip
            if offset in PRE_FESTIVAL_DAYS:
                return self.pre_festival
        if day in (date(day.year, 10, 22), date(day.year, 11, 1)):
            return self.double11_peak
        if date(day.year, 10, 21) <= day <= date(day.year, 11, 11):
            return self.double11
        if date(day.year, 6, 1) <= day <= date(day.year, 6, 18):
            return self.mid_year_618
        return 1.0

    def up(self, day: date) -> tuple[float, float]:
        """(volume factor, cold-chain factor) of farm shipments: spring shoots and tea,
        autumn fruit."""
        if day.month in (4, 5):
            return self.spring_harvest_up, self.spring_harvest_cold
        if day.month in (9, 10) or (day.month == 11 and day.day <= 20):
            return self.autumn_harvest_up, self.autumn_harvest_cold
        return 1.0, 1.0


def festival_window(year: int) -> tuple[date, date] | None:
    """The festival dip of `year`'s new year, first and last day."""
    festival = SPRING_FESTIVAL.get(year)
    if festival is None:
        return None
    return (festival + timedelta(days=FESTIVAL_DIP_DAYS.start),
            festival + timedelta(days=FESTIVAL_DIP_DAYS.stop - 1))
