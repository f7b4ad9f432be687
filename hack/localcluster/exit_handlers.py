"""Process-wide clean-up: every live cluster is stopped at exit and on SIGTERM/SIGHUP.

Together with the parent-death signal (process.py) and the temp-dir reaper (workdir.py) this is
how no etcd, apiserver or work dir outlives the process that started it.
"""

from __future__ import annotations

import atexit
import signal
import threading
from types import FrameType
from typing import Protocol


class Stoppable(Protocol):
    def stop(self) -> None: ...


_LIVE: set[Stoppable] = set()
_LIVE_LOCK = threading.Lock()
_installed = False


def register(cluster: Stoppable) -> None:
    with _LIVE_LOCK:
        _LIVE.add(cluster)


def unregister(cluster: Stoppable) -> None:
    with _LIVE_LOCK:
        _LIVE.discard(cluster)


def _stop_all_live() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for cluster in live:
        cluster.stop()


def install_exit_handlers() -> None:
    """Makes SIGTERM/SIGHUP unwind like Ctrl-C does, so `with` blocks and atexit clean up.

    KeyboardInterrupt rather than SystemExit because that is what pytest treats as "stop the
    session" (running fixture teardown); a SystemExit would just fail the current test. Only
    where nobody installed a handler already: overriding someone else's would break theirs.
    """
    global _installed  # noqa: PLW0603 - one-time process-wide registration
    if _installed:
        return
    _installed = True
    atexit.register(_stop_all_live)
    if threading.current_thread() is not threading.main_thread():
        return

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")

    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) == signal.SIG_DFL:
            signal.signal(sig, interrupt)
