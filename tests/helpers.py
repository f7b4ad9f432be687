"""Waiting helpers shared by the test suite.

The cluster is eventually consistent (controllers, caches, KWOK), so tests must wait for the
state they expect; a fixed sleep is either too short on a slow machine (flaky) or too long on a
fast one (slow). Polling a condition against a deadline is neither.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | None],
    timeout: float,
    interval: float = 0.2,
    message: str = "",
) -> T:
    """Calls ``predicate`` until it returns something truthy and returns that value.

    Returning the value lets a test wait for an object and use it in one step. On timeout the
    last value seen is part of the error, since "timed out" alone rarely explains a failure.
    Exceptions from ``predicate`` propagate: a predicate tolerating "not there yet" (e.g. a
    404) should catch that itself, so that real errors still fail fast.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            last = repr(value)
            if len(last) > 2000:
                last = last[:2000] + "..."
            raise AssertionError(
                f"timed out after {timeout:g}s waiting for {message or 'condition'}; last value: {last}"
            )
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
