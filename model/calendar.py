"""Simulation time is in days since the run's start date; this maps days to dates."""

from __future__ import annotations

import datetime as dt

from model.common import DAYS_PER_YEAR as DAYS_PER_YEAR  # kept importable here


class Calendar:
    """Day 0 is ``start`` at 00:00."""

    def __init__(self, start: dt.date) -> None:
        self.start = start
        self._ordinal0 = start.toordinal()

    def day(self, date: dt.date) -> float:
        """Days from the start to ``date`` (may be negative)."""
        return float(date.toordinal() - self._ordinal0)

    def date(self, t_days: float) -> dt.date:
        return dt.date.fromordinal(self._ordinal0 + int(t_days // 1))

    def year_bounds(self, year: int) -> tuple[float, float]:
        return self.day(dt.date(year, 1, 1)), self.day(dt.date(year + 1, 1, 1))
