"""domain/schedule.py: the schedule's arithmetic at the ends of the calendar: always a time, never an
OverflowError."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile import ZONES
from keyturn.domain.cron import CRON_HORIZON, next_tick
from keyturn.domain.durations import MAX_DURATION
from keyturn.domain.schedule import END_OF_TIME, align_to_window, due_after, in_window, later
from keyturn.domain.spec import Rotation
from keyturn.domain.spec_parser import parse_spec

NEAR_THE_END = datetime.max.replace(tzinfo=UTC) - timedelta(hours=1)
NEAR_THE_START = datetime.min.replace(tzinfo=UTC) + timedelta(hours=1)
moments = st.sampled_from([NEAR_THE_START, NEAR_THE_END, END_OF_TIME]) | st.datetimes(timezones=st.just(UTC))


def rotation(**fields: Any) -> Rotation:
    return parse_spec("keys", "ns", {"rotation": fields}).rotation


rotations = st.builds(
    lambda zone, window, how: rotation(timeZone=zone, **window, **how),
    st.sampled_from(["UTC", "Pacific/Kiritimati", "Etc/GMT+12", "America/New_York", "Australia/Lord_Howe"])
    | st.sampled_from(ZONES),
    st.sampled_from(
        [{}, {"window": {"start": "02:00", "end": "04:00"}}, {"window": {"start": "23:00", "end": "01:00"}}]
    ),
    st.sampled_from(
        [
            {"interval": "1s"},
            {"interval": "36525d"},
            {"schedule": "0 2 1 */3 *"},
            {"schedule": "59 23 31 12 *"},
            {"schedule": "30 2 * * *"},  # a time some days skip (DST)
            {"schedule": "0 0 29 2 MON"},
        ]
    ),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rotations, moments)
def test_due_after_and_align_to_window_are_total(the_rotation: Rotation, moment: datetime) -> None:
    due = due_after(the_rotation, moment)
    assert due.tzinfo is not None
    assert due > moment or due == END_OF_TIME
    aligned = align_to_window(the_rotation, due)
    assert aligned >= due or aligned == END_OF_TIME
    inside = NEAR_THE_START + timedelta(days=2) < moment < NEAR_THE_END - timedelta(days=2)
    if aligned != END_OF_TIME and inside:
        assert in_window(the_rotation.window, aligned.astimezone(the_rotation.time_zone))


@pytest.mark.parametrize(
    ("moment", "span", "expected"),
    [
        (datetime(2026, 1, 1, tzinfo=UTC), MAX_DURATION, datetime(2126, 1, 2, tzinfo=UTC)),
        (NEAR_THE_END, timedelta(hours=2), END_OF_TIME),
        (END_OF_TIME, MAX_DURATION, END_OF_TIME),
    ],
    ids=["plain", "past-the-end", "from-the-end"],
)
def test_later_clamps_at_the_end_of_time(moment: datetime, span: timedelta, expected: datetime) -> None:
    assert later(moment, span) == expected


def test_a_schedule_without_a_tick_in_sight_is_due_at_the_horizon() -> None:
    """parse_spec refuses such schedules; a Rotation built by hand still gets an answer."""
    never = Rotation(
        interval=None,
        schedule="0 0 30 2 *",
        time_zone=rotation().time_zone,
        window=None,
        publish_ahead=timedelta(0),
        grace_period=timedelta(0),
        retention=timedelta(0),
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert next_tick("0 0 30 2 *", start) is None
    assert due_after(never, start) == start + CRON_HORIZON
