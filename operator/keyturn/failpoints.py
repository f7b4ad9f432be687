"""Crash points for the crash-safety tests: KEYTURN_FAILPOINTS=after-secret-write,... kills the process.

Off unless the variable is set; the tests use it to SIGKILL the operator between two writes, which
no timing-based kill could hit reliably.
"""

from __future__ import annotations

import os
import signal

_ARMED = frozenset(p.strip() for p in os.environ.get("KEYTURN_FAILPOINTS", "").split(",") if p.strip())


def hit(name: str) -> None:
    if name in _ARMED:
        os.kill(os.getpid(), signal.SIGKILL)
