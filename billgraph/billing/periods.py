"""Billing periods: renewals counted from the subscription's anchor, so they keep its day.

A monthly plan anchored on Jan 31 renews Feb 29 (in a leap year), Mar 31, Apr 30, May 31...:
each boundary is the anchor plus n periods, the day clamped to the month's length, never the
previous boundary plus one (which would drift to the 28th for good). A yearly plan anchored on
Feb 29 renews Feb 28 in common years and Feb 29 in leap years. The time of day is kept.
"""

import calendar
from datetime import datetime, timedelta
from enum import StrEnum


class PlanInterval(StrEnum):
    MONTH = "MONTH"
    YEAR = "YEAR"


def add_months(moment: datetime, months: int) -> datetime:
    """`moment` moved by `months` calendar months, the day clamped to the target month."""
    index = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def months_per_period(interval: PlanInterval | str, interval_count: int) -> int:
    return interval_count * (12 if PlanInterval(interval) is PlanInterval.YEAR else 1)


def boundary(
    anchor: datetime, interval: PlanInterval | str, interval_count: int, n: int
) -> datetime:
    """The end of the anchor's n-th period (n = 0 is the anchor itself)."""
    return add_months(anchor, n * months_per_period(interval, interval_count))


def next_boundary(
    anchor: datetime, interval: PlanInterval | str, interval_count: int, after: datetime
) -> datetime:
    """The first period boundary of the anchor strictly after `after`."""
    step = months_per_period(interval, interval_count)
    elapsed = (after.year - anchor.year) * 12 + after.month - anchor.month
    n = max(1, elapsed // step - 1)
    while (end := add_months(anchor, n * step)) <= after:
        n += 1
    return end


def trial_end(start: datetime, trial_days: int) -> datetime:
    return start + timedelta(days=trial_days)
