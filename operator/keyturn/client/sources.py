"""Where keys come from and when they are looked at again: fixed values, mounted files, HTTP.

Every verifier and signer holds one source and asks it for the current, immutable snapshot on
each use. A snapshot is replaced as a whole (one reference assignment), so a request always
sees one consistent key set and never waits for a reload another thread is doing.

Files are checked on use, at most every `check_interval` seconds, by a fingerprint (a few
`stat` calls, see mounts.py); the content is read and parsed only when the fingerprint moved.
A background thread (`start_watching`) does the same for idle processes, so that
`jwt_keys_loaded` follows a swap even when no request arrives. A reload that fails keeps the
previous keys: a half-written or broken file must never leave a service with no keys.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Hashable
from typing import Final, Generic, Protocol, TypeVar

from keyturn.client.errors import KeySourceError
from keyturn.client.metrics import ClientMetrics

__all__ = ["FileSource", "HttpSource", "KeySource", "StaticSource"]

log = logging.getLogger("keyturn.client")

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

_LOG_REPEAT_S: Final = 60.0
MAX_HTTP_BYTES: Final = 1 << 20


class KeySource(Protocol[T_co]):
    """What verifiers and signers need from a source of key snapshots."""

    def get(self) -> T_co:
        """The current snapshot, after a cheap check when one is due (never blocks on a reload)."""
        ...

    def refresh_now(self) -> T_co:
        """Look again right away, because a token named a kid we do not hold (may be rate-limited)."""
        ...

    def reload(self) -> T_co:
        """Load now and raise KeySourceError if that fails."""
        ...

    def start_watching(self, interval: float) -> None: ...

    def close(self) -> None: ...


class StaticSource(Generic[T]):
    """Keys that never change (environment variables, a document given in code)."""

    def __init__(self, value: T) -> None:
        self._value = value

    def get(self) -> T:
        return self._value

    def refresh_now(self) -> T:
        return self._value

    def reload(self) -> T:
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


class FileSource(Generic[T]):
    """A snapshot parsed from mounted files, re-read when their fingerprint changes.

    `load` returns the fingerprint its content was read at together with the parsed value, so a
    swap that lands between the check and the read is seen again at the next check.
    """

    def __init__(
        self,
        *,
        source: str,
        what: str,
        probe: Callable[[], Hashable],
        load: Callable[[], tuple[Hashable, T]],
        describe: Callable[[T], str],
        on_change: Callable[[T], None],
        check_interval: float,
        metrics: ClientMetrics,
    ) -> None:
        if check_interval < 0:
            raise ValueError("check_interval must not be negative")
        self._probe = probe
        self._load = load
        self._describe = describe
        self._on_change = on_change
        self._interval = check_interval
        self._report = _Reporter(source, what, metrics)
        self._lock = threading.Lock()
        self._watcher = _Watcher()
        self._name = source
        try:
            self._fingerprint, self._value = load()
        except KeySourceError as exc:
            self._report.failed(exc, initial=True)
            raise
        self._failed_fingerprint: Hashable | None = None
        self._due = time.monotonic() + check_interval
        on_change(self._value)
        self._report.ok(describe(self._value), initial=True)

    def get(self) -> T:
        if time.monotonic() >= self._due:
            self._check(wait=False)
        return self._value

    def refresh_now(self) -> T:
        # A stat or two: cheap enough to do for every unknown kid, and it makes a just-swapped
        # file visible to the very request that needs it.
        self._check(wait=True)
        return self._value

    def reload(self) -> T:
        with self._lock:
            self._due = time.monotonic() + self._interval
            try:
                fingerprint, value = self._load()
            except KeySourceError as exc:
                self._report.failed(exc)
                raise
            self._install(fingerprint, value)
            return value

    def start_watching(self, interval: float) -> None:
        self._watcher.start(self._name, interval, lambda: self._check(wait=True))

    def close(self) -> None:
        self._watcher.stop()

    def _check(self, *, wait: bool) -> bool:
        if not self._lock.acquire(blocking=wait):
            return False  # another thread is looking right now; use what we have
        try:
            self._due = time.monotonic() + self._interval
            try:
                probe = self._probe()
            except OSError:
                probe = object()  # unknown state: look at the content
            if probe in (self._fingerprint, self._failed_fingerprint):
                return False
            try:
                fingerprint, value = self._load()
            except Exception as exc:
                self._failed_fingerprint = probe
                self._report.failed(exc)
                return False
            if fingerprint == self._fingerprint:
                return False
            self._install(fingerprint, value)
            return True
        finally:
            self._lock.release()

    def _install(self, fingerprint: Hashable, value: T) -> None:
        self._fingerprint, self._value = fingerprint, value
        self._failed_fingerprint = None
        self._on_change(value)
        self._report.ok(self._describe(value), initial=False)


class HttpSource(Generic[T]):
    """A snapshot parsed from an HTTP resource (e.g. /.well-known/jwks.json), cached for `ttl`.

    After the TTL the first caller refetches while the others keep using the cached keys. An
    unknown kid triggers an early refetch, at most once per `min_refetch_interval`, so a flood
    of forged kids cannot turn into a flood of requests to the issuer. A failed fetch keeps the
    cached keys and is retried after `min_refetch_interval`.
    """

    def __init__(
        self,
        url: str,
        *,
        what: str,
        parse: Callable[[bytes], T],
        describe: Callable[[T], str],
        on_change: Callable[[T], None],
        ttl: float,
        min_refetch_interval: float,
        timeout: float,
        metrics: ClientMetrics,
        headers: dict[str, str] | None = None,
    ) -> None:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"JWKS URL must be http or https, not {scheme or 'relative'}")
        if ttl <= 0 or min_refetch_interval < 0 or timeout <= 0:
            raise ValueError("ttl and timeout must be positive and min_refetch_interval not negative")
        self.url = url
        self._parse = parse
        self._describe = describe
        self._on_change = on_change
        self._ttl = ttl
        self._min_refetch = min_refetch_interval
        self._timeout = timeout
        self._headers = {"Accept": "application/json", **(headers or {})}
        self._report = _Reporter("jwks_url", what, metrics)
        self._lock = threading.Lock()
        self._watcher = _Watcher()
        self._etag: str | None = None
        self._fetched_at = 0.0
        self._attempted_at = 0.0
        value = self._fetch_locked(initial=True)
        if value is None:  # pragma: no cover - the initial fetch raises instead
            raise KeySourceError(f"{what}: no keys")
        self._value: T = value

    def get(self) -> T:
        now = time.monotonic()
        if now - self._fetched_at >= self._ttl and now - self._attempted_at >= self._min_refetch:
            self._refresh(wait=False, unknown_kid=False)
        return self._value

    def refresh_now(self) -> T:
        if time.monotonic() - self._attempted_at >= self._min_refetch:
            self._refresh(wait=True, unknown_kid=True)
        return self._value

    def reload(self) -> T:
        with self._lock:
            value = self._fetch_locked(initial=True)
        if value is not None:
            self._value = value
        return self._value

    def start_watching(self, interval: float) -> None:
        self._watcher.start("jwks_url", interval, self.get)

    def close(self) -> None:
        self._watcher.stop()

    def _refresh(self, *, wait: bool, unknown_kid: bool) -> None:
        started = time.monotonic()
        if not self._lock.acquire(blocking=wait):
            return
        try:
            # Whoever held the lock may just have fetched: then that answer is ours too.
            if self._attempted_at >= started:
                return
            if unknown_kid and started - self._attempted_at < self._min_refetch:
                return
            try:
                value = self._fetch_locked(initial=False)
            except KeySourceError:
                return
            if value is not None:
                self._value = value
                self._on_change(value)
                self._report.ok(self._describe(value), initial=False)
        finally:
            self._lock.release()

    def _fetch_locked(self, *, initial: bool) -> T | None:
        """Fetch and parse; None means 304 Not Modified. Raises KeySourceError on failure."""
        self._attempted_at = time.monotonic()
        headers = dict(self._headers)
        if self._etag is not None and not initial:
            headers["If-None-Match"] = self._etag
        request = urllib.request.Request(self.url, headers=headers)  # noqa: S310 - scheme checked above
        try:
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                    body: bytes = response.read(MAX_HTTP_BYTES + 1)
                    etag = response.headers.get("ETag")
            except urllib.error.HTTPError as exc:
                if exc.code == 304:
                    self._fetched_at = time.monotonic()
                    return None
                raise KeySourceError(f"{self.url} answered HTTP {exc.code}") from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                raise KeySourceError(f"{self.url} could not be fetched: {reason}") from None
            if len(body) > MAX_HTTP_BYTES:
                raise KeySourceError(f"{self.url} sent more than {MAX_HTTP_BYTES} bytes")
            value = self._parse(body)
        except Exception as exc:
            self._report.failed(exc, initial=initial)
            if isinstance(exc, KeySourceError):
                raise
            raise KeySourceError(f"{self.url}: {type(exc).__name__}") from None
        self._etag = etag
        self._fetched_at = time.monotonic()
        if initial:
            self._on_change(value)
            self._report.ok(self._describe(value), initial=True)
        return value
