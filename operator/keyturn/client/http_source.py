"""HttpSource: keys parsed from a document served over HTTP(S), such as an issuer's JWKS URL."""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Final

from keyturn.client.errors import KeySourceError
from keyturn.client.sources import ReloadingSource, S

__all__ = ["HttpSource"]

MAX_HTTP_BYTES: Final = 1 << 20


class HttpSource(ReloadingSource[S]):
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
        parse: Callable[[bytes], S],
        ttl: float,
        min_refetch_interval: float,
        timeout: float,
        headers: dict[str, str] | None = None,
    ) -> None:
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise ValueError(f"JWKS URL must be http or https, not {scheme or 'relative'}")
        if ttl <= 0 or min_refetch_interval < 0 or timeout <= 0:
            raise ValueError("ttl and timeout must be positive and min_refetch_interval not negative")
        super().__init__("jwks_url", what)
        self.url = url
        self._parse = parse
        self._ttl = ttl
        self._min_refetch = min_refetch_interval
        self._timeout = timeout
        self._headers = {"Accept": "application/json", **(headers or {})}
        self._etag: str | None = None
        self._fetched_at = 0.0
        self._attempted_at = 0.0

    def get(self) -> S:
        now = time.monotonic()
        if now - self._fetched_at >= self._ttl and now - self._attempted_at >= self._min_refetch:
            self._refresh(wait=False, unknown_kid=False)
        return self._value

    def refresh_now(self) -> S:
        if time.monotonic() - self._attempted_at >= self._min_refetch:
            self._refresh(wait=True, unknown_kid=True)
        return self._value

    def reload(self) -> S:
        with self._lock:
            value = self._fetch_locked(initial=True)
            if value is not None:
                self._install(value, initial=True)
        return self._value

    def _load_first(self) -> S:
        value = self._fetch_locked(initial=True)
        if value is None:  # pragma: no cover - the initial fetch raises instead
            raise KeySourceError(f"{self._what}: no keys")
        return value

    def _tick(self) -> object:
        return self.get()

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
                self._install(value, initial=False)
        finally:
            self._lock.release()

    def _fetch_locked(self, *, initial: bool) -> S | None:
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
        return value
