"""domain/durations.py: the parser's bound on durations and the CRD's pattern meet."""

from __future__ import annotations

import re

import pytest

from hostile import DURATION_PATTERN
from keyturn.domain.durations import MAX_DURATION, format_duration, parse_duration


def test_the_crd_pattern_and_the_parser_bound_meet() -> None:
    """Everything the parser accepts passes the CRD; what the CRD lets through beyond it is a SpecError."""
    longest = format_duration(MAX_DURATION)
    assert re.fullmatch(DURATION_PATTERN.strip("^$"), longest)
    assert parse_duration(longest) == MAX_DURATION
    widest = "999999d999999h999999m999999s"
    assert re.fullmatch(DURATION_PATTERN.strip("^$"), widest)
    with pytest.raises(ValueError, match="longer than 100 years"):
        parse_duration(widest)
    assert not re.fullmatch(DURATION_PATTERN.strip("^$"), "1000000s")
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("1000000s")
