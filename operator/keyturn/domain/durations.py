"""Durations in the CRD's notation (90d, 36h, 1d12h, 15m, 30s), bounded to 100 years."""

from __future__ import annotations

import re
from datetime import timedelta

# ASCII digits only (`\d` would take other scripts' digits, which int() reads), at most 6 per unit
# as in the CRD's pattern, so a bad value never costs more than a few comparisons.
_DURATION = re.compile(
    r"(?:(?P<d>[0-9]{1,6})d)?(?:(?P<h>[0-9]{1,6})h)?(?:(?P<m>[0-9]{1,6})m)?(?:(?P<s>[0-9]{1,6})s)?"
)
# Every span in a spec is at most this, so any time Keyturn handles (see record.LATEST) plus any
# span, or the sum of a few, stays far from datetime.max.
MAX_DURATION = timedelta(days=36525)  # 100 years of 365.25 days
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> timedelta:
    """Parse a duration of at most MAX_DURATION; anything else is a ValueError that says why."""
    stripped = text.strip()
    match = _DURATION.fullmatch(stripped)
    if not stripped or match is None:
        shown = stripped if len(stripped) <= 40 else f"{stripped[:40]}…"
        raise ValueError(f"{shown!r} is not a duration like 90d, 36h, 1d12h, 15m or 30s")
    seconds = sum(int(v) * _UNITS[k] for k, v in match.groupdict(default="0").items())
    if seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"{stripped} is longer than 100 years ({format_duration(MAX_DURATION)})")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Render in the same notation, so messages quote values the way users wrote them."""
    total = int(value.total_seconds())
    if total <= 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)
