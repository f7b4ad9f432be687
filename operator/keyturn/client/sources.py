"""Where keys come from and when they are looked at again: what every source has in common.

Every verifier and signer holds one source and asks it for the current, immutable snapshot on
each use. A snapshot is replaced as a whole (one reference assignment), so a request always
sees one consistent key set and never waits for a reload another thread is doing. A background
thread (`start_watching`) looks for changes in idle processes too, so that `jwt_keys_loaded`
follows a swap even when no request arrives. A reload that fails keeps the previous keys: a
half-written or broken file must never leave a service with no keys.

One failure is different: a document that publishes private key material (LeakedKeyError). It is
refused like any other broken document, but the keys it leaked are also withdrawn from the keys
loaded before (anyone can sign with them now) and filtered out of every later version, for the
life of the source.

The sources that do reload live in file_source.py (mounted volumes) and http_source.py (a URL).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final, Generic, Protocol, TypeVar

from keyturn.client.errors import KeySourceError, LeakedKeyError
from keyturn.client.metrics import ClientMetrics

__all__ = ["KeySource", "ReloadingSource", "Snapshot", "StaticSource", "Withdraw"]

log = logging.getLogger("keyturn.client")

_LOG_REPEAT_S: Final = 60.0


class Snapshot(Protocol):
    """What a source hands out: one immutable version of the keys, able to say what it holds
    (kids, problems) without ever showing key material."""

    @property
    def kids(self) -> tuple[str, ...]: ...

    def describe(self) -> str: ...


S = TypeVar("S", bound=Snapshot)
S_co = TypeVar("S_co", bound=Snapshot, covariant=True)

# A snapshot without the keys named by kid or thumbprint: how a source stops trusting leaked keys.
Withdraw = Callable[[S, frozenset[str]], S]


class KeySource(Protocol[S_co]):
    """What verifiers and signers need from a source of key snapshots."""

    def start(self, on_change: Callable[[S_co], None], metrics: ClientMetrics) -> None:
        """Load for the first time (raising KeySourceError) and report every later change."""
        ...

    def get(self) -> S_co:
        """The current snapshot, after a cheap check when one is due (never blocks on a reload)."""
        ...

    def refresh_now(self) -> S_co:
        """Look again right away, because a token named a kid we do not hold (may be rate-limited)."""
        ...

    def reload(self) -> S_co:
        """Load now and raise KeySourceError if that fails."""
        ...

    def start_watching(self, interval: float) -> None: ...

    def close(self) -> None: ...


class StaticSource(Generic[S]):
    """Keys that never change (environment variables, a document given in code)."""

    def __init__(self, value: S) -> None:
        self._value = value

    def start(self, on_change: Callable[[S], None], metrics: ClientMetrics) -> None:
        on_change(self._value)

    def get(self) -> S:
        return self._value

    def refresh_now(self) -> S:
        return self._value

    def reload(self) -> S:
        return self._value

    def start_watching(self, interval: float) -> None:
        """Nothing to watch: environment variables change only with a new process."""

    def close(self) -> None:
        pass


class _Reporter:
    """Counts reloads and logs failures without repeating the same complaint every second."""

    def __init__(self, source: str, what: str, metrics: ClientMetrics) -> None:
        self.source = source
        self.what = what
        self.metrics = metrics
        self._last: tuple[str, float] | None = None
        self._description: str | None = None

    def ok(self, description: str, initial: bool) -> None:
        self.metrics.record_reload(self.source, True)
        # An HTTP refetch every TTL usually brings the same keys: only a change is news.
        level = logging.INFO if initial or description != self._description else logging.DEBUG
        log.log(level, "%s %s: %s", "loaded" if initial else "reloaded", self.what, description)
        self._description = description
        self._last = None

    def failed(self, exc: Exception, *, initial: bool = False) -> None:
        self.metrics.record_reload(self.source, False)
        if initial:
            return  # raised to the caller, who decides whether that is worth a log line
        # Only our own messages are shown: they are written to never contain key material.
        message = str(exc) if isinstance(exc, KeySourceError) else type(exc).__name__
        now = time.monotonic()
        if self._last is None or self._last[0] != message or now - self._last[1] >= _LOG_REPEAT_S:
            log.warning("could not reload %s, keeping the keys loaded before: %s", self.what, message)
            self._last = (message, now)


class _Watcher:
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self, name: str, interval: float, tick: Callable[[], object]) -> None:
        if interval <= 0:
            raise ValueError("the watch interval must be positive")
        with self._lock:
            if self._thread is not None:
                return
            self._stop.clear()

            def run() -> None:
                while not self._stop.wait(interval):
                    try:
                        tick()
                    except Exception:  # a watcher must outlive any single bad reload
                        log.exception("key watcher %s failed; it keeps running", name)

            self._thread = threading.Thread(target=run, name=f"keyturn-watch-{name}", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()


class ReloadingSource(Generic[S]):
    """What FileSource and HttpSource share: one lock around loads, the watcher thread, and how
    a new snapshot is put in place and announced (the owner's gauges, the reload counter, the log).
    """

    _on_change: Callable[[S], None]
    _report: _Reporter
    _value: S

    def __init__(self, source: str, what: str, withdraw: Withdraw[S] | None = None) -> None:
        self._label = source  # the `source` label of jwt_key_reloads_total
        self._what = what
        self._lock = threading.Lock()
        self._watcher = _Watcher()
        self._withdraw = withdraw
        self._withdrawn: frozenset[str] = frozenset()
        self._loaded = False

    def start(self, on_change: Callable[[S], None], metrics: ClientMetrics) -> None:
        self._on_change = on_change
        self._report = _Reporter(self._label, self._what, metrics)
        self._install(self._load_first(), initial=True)

    def start_watching(self, interval: float) -> None:
        self._watcher.start(self._label, interval, self._tick)

    def close(self) -> None:
        self._watcher.stop()

    def _install(self, value: S, *, initial: bool) -> None:
        self._publish(value)
        self._report.ok(self._value.describe(), initial=initial)

    def _publish(self, value: S) -> None:
        if self._withdraw is not None and self._withdrawn:
            value = self._withdraw(value, self._withdrawn)
        self._value = value
        self._loaded = True
        self._on_change(value)

    def _refused(self, exc: Exception, *, initial: bool = False) -> None:
        """A load failed (the caller holds the lock): count and log it; when the document leaked
        private keys, stop trusting them at once, in the keys already loaded too."""
        self._report.failed(exc, initial=initial)
        if isinstance(exc, LeakedKeyError) and self._withdraw is not None:
            self._withdrawn |= exc.ids
            if self._loaded:
                self._publish(self._value)

    def _load_first(self) -> S:
        """The snapshot `start` installs; raises KeySourceError (reported as a failed load)."""
        raise NotImplementedError

    def _tick(self) -> object:
        """One look by the watcher thread."""
        raise NotImplementedError
