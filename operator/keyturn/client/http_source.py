"""HttpSource: keys parsed from a document served over HTTP(S), such as an issuer's JWKS URL.

The URL is configuration; the answer is hostile. So: `http`/`https` only, no redirect is ever
followed (a 3xx is a failed fetch: a redirect to another host or to `http` would let whoever
answers it choose our keys), the body is capped at MAX_HTTP_BYTES and the whole fetch at `timeout`
seconds for the body, not only per socket read, so a server trickling bytes cannot hold a reload
(and the lock other threads may wait on) for long; connecting and each header line are bounded by
`timeout` too.
Messages show the URL without user info, query or fragment, which may carry credentials.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Final

from keyturn.client.errors import KeySourceError
from keyturn.client.sources import ReloadingSource, S, Withdraw

__all__ = ["MAX_HTTP_BYTES", "HttpSource", "display_url"]

MAX_HTTP_BYTES: Final = 1 << 20
_CHUNK: Final = 64 * 1024
_MAX_ETAG_CHARS: Final = 256


def display_url(url: str) -> str:
    """The URL as messages may show it: scheme, host, port and path only."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _check_url(url: str) -> None:
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise ValueError("JWKS URL must not contain spaces or control characters")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"JWKS URL must be http or https, not {parts.scheme or 'relative'}")
    if not parts.hostname:
        raise ValueError("JWKS URL must name a host")
    try:
        parts.port  # noqa: B018 - parsing it is the check
    except ValueError:
        raise ValueError("JWKS URL has an invalid port") from None


def _opener() -> urllib.request.OpenerDirector:
    """urllib without the redirect, file, ftp and data handlers: only http(s), only the URL given.

    Without HTTPRedirectHandler every 3xx (304 included) reaches HTTPDefaultErrorHandler and is
    raised as HTTPError. Proxies from the environment are still honoured.
    """
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def _etag(value: str | None) -> str | None:
    """An ETag we may send back: a server-chosen header value is only echoed when it is plain."""
    if value is None or len(value) > _MAX_ETAG_CHARS or not value.isascii() or not value.isprintable():
        return None
    return value


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
        withdraw: Withdraw[S] | None = None,
    ) -> None:
        _check_url(url)
        if not ttl > 0 or not min_refetch_interval >= 0 or not timeout > 0:
            raise ValueError("ttl and timeout must be positive and min_refetch_interval not negative")
        super().__init__("jwks_url", what, withdraw)
        self.url = url
        self._shown = display_url(url)
        self._parse = parse
        self._ttl = ttl
        self._min_refetch = min_refetch_interval
        self._timeout = timeout
        self._headers = {"Accept": "application/json", **(headers or {})}
        self._opener = _opener()
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
        try:
            fetched = self._get(headers)
            if fetched is None:
                self._fetched_at = time.monotonic()
                return None
            body, etag = fetched
            value = self._parse(body)
        except Exception as exc:
            self._refused(exc, initial=initial)
            if isinstance(exc, KeySourceError):
                raise
            raise KeySourceError(f"{self._shown}: {type(exc).__name__}") from None
        self._etag = etag
        self._fetched_at = time.monotonic()
        return value

    def _get(self, headers: dict[str, str]) -> tuple[bytes, str | None] | None:
        """The body and ETag of a 200, None for a 304; KeySourceError for anything else."""
        deadline = time.monotonic() + self._timeout
        request = urllib.request.Request(self.url, headers=headers)  # noqa: S310 - scheme checked
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                etag = _etag(response.headers.get("ETag"))
                chunks: list[bytes] = []
                size = 0
                while size <= MAX_HTTP_BYTES:
                    if time.monotonic() > deadline:
                        raise KeySourceError(f"{self._shown} took longer than {self._timeout:g}s to answer")
                    # read1: at most one socket read, so the deadline is checked between reads.
                    chunk: bytes = response.read1(min(_CHUNK, MAX_HTTP_BYTES + 1 - size))
                    if not chunk:
                        break
                    chunks.append(chunk)
                    size += len(chunk)
        except urllib.error.HTTPError as exc:
            exc.close()
            if exc.code == 304:
                return None
            if 300 <= exc.code < 400:
                raise KeySourceError(
                    f"{self._shown} answered HTTP {exc.code}; redirects are never followed, "
                    "configure the URL the keys are served at"
                ) from None
            raise KeySourceError(f"{self._shown} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise KeySourceError(f"{self._shown} could not be fetched: {reason}") from None
        if size > MAX_HTTP_BYTES:
            raise KeySourceError(f"{self._shown} sent more than {MAX_HTTP_BYTES} bytes")
        return b"".join(chunks), etag
