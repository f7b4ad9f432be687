"""Cron expressions for rotation.schedule: which ones Keyturn accepts, and when they fire next.

A schedule must fire at least every CRON_HORIZON, from any start: "0 0 30 2 *" never fires, and
"0 0 29 2 *" skips 8 years around 2100. Such a schedule would leave a key signing for longer
than any interval Keyturn accepts, so parse_spec refuses it with the reason given here.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta

from croniter import CroniterBadDateError, croniter

CRON_HORIZON = timedelta(days=1827)  # 5 years
# croniter stops searching after this many calendar years, a little more than the horizon.
_SEARCH_YEARS = 6
# The Gregorian calendar, weekdays included, repeats every 400 years: the gaps between ticks found
# over one cycle are all there are. Starts are 30 s past a minute, so never a tick themselves.
_CYCLE_START = datetime(2000, 1, 1, 0, 0, 30)
_CYCLE_YEARS = 400
_STEP_YEARS = 4  # less than the horizon


@functools.lru_cache(maxsize=256)
def cron_problem(expression: str) -> str | None:
    """Why Keyturn cannot use this schedule (a phrase to follow the expression), or None.

    Any gap longer than _STEP_YEARS contains one of the starts, and the ticks before and after
    that start are its ends: every gap longer than the horizon is found.
    """
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        return "is not a cron expression of 5 fields (minute hour day-of-month month day-of-week)"
    try:
        it = croniter(expression, _CYCLE_START, max_years_between_matches=_SEARCH_YEARS)
        for year in range(0, _CYCLE_YEARS, _STEP_YEARS):
            start = _CYCLE_START.replace(year=_CYCLE_START.year + year)
            after: datetime = it.get_next(datetime, start_time=start)
            before: datetime = it.get_prev(datetime, start_time=start)
            if after - before > CRON_HORIZON:
                return _never(after - before)
    except CroniterBadDateError:
        return _never(None)
    except Exception:  # hostile text in a third-party parser: whatever it raises, the answer is no
        return "is not a cron expression Keyturn can evaluate"
    return None


def _never(gap: timedelta | None) -> str:
    longest = "" if gap is None else f" (it goes up to {gap.days // 365} years without one)"
    return (
        f"does not fire at least once every 5 years{longest}: 30 February never comes, 29 February skips 2100"
    )


def next_tick(expression: str, after: datetime) -> datetime | None:
    """The first tick strictly after `after` (in its time zone), or None within about 6 years."""
    try:
        it = croniter(expression, after, max_years_between_matches=_SEARCH_YEARS)
        tick: datetime = it.get_next(datetime)
    except (ValueError, OverflowError, KeyError, TypeError):  # croniter's errors are ValueErrors
        return None
    return tick
