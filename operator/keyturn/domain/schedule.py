"""When a key is due to activate: interval or cron, publishAhead, and the maintenance window."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from croniter import croniter

from keyturn.domain.spec import Rotation, Window


def cron_is_valid(expression: str) -> bool:
    return bool(croniter.is_valid(expression)) and len(expression.split()) == 5


def due_after(rotation: Rotation, activated_at: datetime) -> datetime:
    """The time the current key has signed long enough: activation + interval, or the next cron tick."""
    if rotation.schedule is None:
        assert rotation.interval is not None  # parse_spec guarantees one of the two
        return activated_at + rotation.interval
    local = activated_at.astimezone(rotation.time_zone)
    tick: datetime = croniter(rotation.schedule, local).get_next(datetime)
    return tick.astimezone(UTC)


def in_window(window: Window | None, zone_time: datetime) -> bool:
    if window is None:
        return True
    now = zone_time.time().replace(second=0, microsecond=0, tzinfo=None)
    start, end = time(*window.start), time(*window.end)
    if start < end:
        return start <= now < end
    return now >= start or now < end  # the window crosses midnight


def align_to_window(rotation: Rotation, moment: datetime) -> datetime:
    """The first instant at or after `moment` inside the window (the moment itself without one)."""
    window = rotation.window
    local = moment.astimezone(rotation.time_zone)
    if window is None or in_window(window, local):
        return moment
    start = datetime.combine(local.date(), time(*window.start), tzinfo=rotation.time_zone)
    if start <= local:
        start = datetime.combine(
            local.date() + timedelta(days=1), time(*window.start), tzinfo=rotation.time_zone
        )
    return start.astimezone(UTC)


def earliest(*moments: datetime | None) -> datetime | None:
    """The soonest of several wake-up times, ignoring the ones that are not set."""
    return min((m for m in moments if m is not None), default=None)
