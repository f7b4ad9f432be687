"""domain/cron.py: the next tick of a schedule, in the keyset's zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from keyturn.domain.cron import next_tick
from keyturn.domain.spec import Rotation
from keyturn.domain.spec_parser import parse_spec


def rotation(**fields: Any) -> Rotation:
    return parse_spec("keys", "ns", {"rotation": fields}).rotation


def test_next_tick_keeps_the_zone() -> None:
    paris = rotation(timeZone="Europe/Paris").time_zone
    tick = next_tick("0 2 * * *", datetime(2026, 3, 1, 12, tzinfo=paris))
    assert tick == datetime(2026, 3, 2, 2, tzinfo=paris)
