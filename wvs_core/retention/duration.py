"""``keep_within`` durations in restic's ``--keep-within`` format: ``30d``, ``1y2m``, ``13d23h``.

Units are ``y`` (years), ``m`` (months, not minutes), ``d`` (days) and ``h`` (hours), as restic's
``ParseDuration`` reads them (https://github.com/restic/restic ``internal/data/duration.go`` at a80be147,
formerly ``internal/restic/duration.go``).
Stricter than restic: no negative numbers, each unit at most once, and not zero altogether (leave
``keep_within`` out instead); restic would take ``-1d`` or ``1d2d`` silently.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import attrs

_PART = re.compile(r"([0-9]{1,9})([ymdh])")
_WHOLE = re.compile(r"(?:[0-9]{1,9}[ymdh])+")


@attrs.frozen
class KeepWithin:
    """A calendar duration: years and months move the calendar, days and hours are added after them."""

    years: int = 0
    months: int = 0
    days: int = 0
    hours: int = 0

    @classmethod
    def parse(cls, text: str) -> KeepWithin:
        """Read ``6y5m234d37h`` (any subset of the units, in any order); ``ValueError`` saying why not."""
        compact = text.strip()
        if not _WHOLE.fullmatch(compact):
            raise ValueError(f"{text!r} is not a duration: numbers with units y, m (months), d, h, e.g. '30d', '1y2m'")
        parts: dict[str, int] = {}
        for number, unit in _PART.findall(compact):
            if unit in parts:
                raise ValueError(f"{text!r} gives the unit {unit!r} twice")
            parts[unit] = int(number)
        within = cls(parts.get("y", 0), parts.get("m", 0), parts.get("d", 0), parts.get("h", 0))
        if not (within.years or within.months or within.days or within.hours):
            raise ValueError(f"{text!r} is zero; leave keep_within out to keep nothing by age")
        return within

    def __str__(self) -> str:
        # restic's Duration.String(): the units in a fixed order, zeros left out ("1y1d1m" reads "1y1m1d").
        units = zip((self.years, self.months, self.days, self.hours), "ymdh", strict=True)
        return "".join(f"{number}{unit}" for number, unit in units if number)

    def start(self, newest: datetime) -> datetime | None:
        """``newest`` minus this duration, exactly as restic computes it:
        ``latest.AddDate(-years, -months, -days).Add(-hours)``. Go's ``AddDate`` normalizes an overflowing
        day instead of clamping it, so one month before March 31 is March 3 (February 31 → March 3), not
        February 28. None when the result would precede year 1: then every snapshot is within."""
        month_index = newest.year * 12 + newest.month - 1 - self.years * 12 - self.months
        year, month0 = divmod(month_index, 12)
        try:
            first_of_month = newest.replace(year=year, month=month0 + 1, day=1)
            return first_of_month + timedelta(days=newest.day - 1 - self.days) - timedelta(hours=self.hours)
        except (ValueError, OverflowError):
            return None
