"""When a key is due to activate: interval or cron, publishAhead, and the maintenance window.

Every function here is total: whatever times it is given, it answers with a time, never an
OverflowError. Times that would fall beyond datetime.max are clamped to END_OF_TIME ("never").
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from keyturn.domain.cron import CRON_HORIZON, next_tick
from keyturn.domain.model import Key
from keyturn.domain.spec import Rotation, Window

END_OF_TIME = datetime.max.replace(tzinfo=UTC)


def later(moment: datetime, span: timedelta) -> datetime:
    """moment + span, or END_OF_TIME when that is past datetime.max."""
    try:
        return moment + span
    except OverflowError:
        return END_OF_TIME


def due_after(rotation: Rotation, activated_at: datetime) -> datetime:
    """The time the current key has signed long enough: activation + interval, or the next cron tick.

    A schedule without a tick in sight (parse_spec refuses those; a time near the end of the
    calendar can still meet one) is due CRON_HORIZON after the activation: the key still rotates.
    """
    if rotation.schedule is None:
        assert rotation.interval is not None  # parse_spec guarantees one of the two
        return later(activated_at, rotation.interval)
    try:
        local = activated_at.astimezone(rotation.time_zone)
    except (OverflowError, ValueError):
        return later(activated_at, CRON_HORIZON)
    tick = next_tick(rotation.schedule, local)
    if tick is None:
        return later(activated_at, CRON_HORIZON)
    try:
        return tick.astimezone(UTC)
    except (OverflowError, ValueError):
        return END_OF_TIME


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
    if window is None:
        return moment
    try:
        local = moment.astimezone(rotation.time_zone)
        if in_window(window, local):
            return moment
        start = datetime.combine(local.date(), time(*window.start), tzinfo=rotation.time_zone)
        if start <= local:
            start = datetime.combine(
                local.date() + timedelta(days=1), time(*window.start), tzinfo=rotation.time_zone
            )
        return start.astimezone(UTC)
    except (OverflowError, ValueError):  # the next opening is past the end of the calendar
        return END_OF_TIME


def activation_time(
    rotation: Rotation, current: Key, nxt: Key, now: datetime, *, manual: bool, held: bool
) -> tuple[datetime | None, bool]:
    """When `nxt` may activate, and whether now is inside the window that allows it.

    `manual`: a person asked (no schedule, no window, but publishAhead holds). `held`: scheduled
    rotations are held (suspended, analysing, paused): None.
    """
    if manual:
        return ready_at(rotation, nxt), True
    if held:
        return None, False
    scheduled = scheduled_activation(rotation, current, nxt)
    allowed_now = in_window(rotation.window, now.astimezone(rotation.time_zone))
    if scheduled <= now and not allowed_now:
        return align_to_window(rotation, now), False
    return scheduled, allowed_now


def ready_at(rotation: Rotation, nxt: Key) -> datetime:
    """The earliest `nxt` may sign: publishAhead after it was published."""
    return later(nxt.published_at or nxt.created_at, rotation.publish_ahead)


def scheduled_activation(rotation: Rotation, current: Key, nxt: Key) -> datetime:
    """When the schedule activates `nxt`: due after `current` took over, not before it is ready,
    moved into the window."""
    due = due_after(rotation, current.activated_at or current.created_at)
    return align_to_window(rotation, max(due, ready_at(rotation, nxt)))


def earliest(*moments: datetime | None) -> datetime | None:
    """The soonest of several wake-up times, ignoring the ones that are not set."""
    return min((m for m in moments if m is not None), default=None)
