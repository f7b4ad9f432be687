"""The RSGI application: one request is a route, a snapshot lookup and precomputed bytes.

Nothing on the request path parses JSON, hashes or compresses: the store did that once per
ConfigMap change. What is computed per request is max-age (it shrinks as the next change nears,
with a random spread) and the choice between 200, 304, gzip and identity.
"""

from __future__ import annotations

import gc
import logging
import random
import time
from typing import Any, Final

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from keyturn.jwks_server import responses
from keyturn.jwks_server.documents import Published, Representation
from keyturn.jwks_server.metrics import Stats, registry
from keyturn.jwks_server.routing import Kind, Route, route
from keyturn.jwks_server.store import Store

log = logging.getLogger("keyturn.jwks")

NO_STORE: Final = ("cache-control", "no-store")
TEXT: Final = ("content-type", "text/plain; charset=utf-8")
VARY: Final = ("vary", "accept-encoding")
NOBODY: Final = ("", "")
# Routes are pure in (method, path, Host): the few that verifiers send are decided once.
ROUTE_CACHE: Final = 4096


class JwksApp:
    """What granian calls for every request (`__rsgi__`), once per worker at start and at stop."""

    def __init__(self, store: Store, *, cap: int, healthy: Any = None) -> None:
        self.store = store
        self.cap = cap
        self.stats = Stats()
        self.metrics = registry(self.stats, store)
        self._healthy = healthy or (lambda: True)
        self._random = random.Random()  # noqa: S311 - a cache-expiry spread, not a secret
        self.on_start: list[Any] = []
        self.on_stop: list[Any] = []
        self._routes: dict[tuple[str, str, str | None], Route] = {}

    def __rsgi_init__(self, loop: Any) -> None:
        for hook in self.on_start:
            hook()
        # Everything made so far (imports, the Kubernetes client) lives as long as the process: out
        # of the collector's sight, a collection walks only what the requests allocate.
        gc.collect()
        gc.freeze()

    def __rsgi_del__(self, loop: Any) -> None:
        for hook in self.on_stop:
            hook()

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        headers = scope.headers
        head = scope.method == "HEAD"
        key = (scope.method, scope.path, headers.get("host"))
        where = self._routes.get(key)
        if where is None:
            if len(self._routes) >= ROUTE_CACHE:
                self._routes.clear()  # many distinct requests (a scan): start over, stay bounded
            where = self._routes[key] = route(*key)
        kind = where.kind
        if kind is Kind.JWKS or kind is Kind.DISCOVERY:
            self._document(where, headers, proto, head)
        elif kind is Kind.REFUSED:
            self._refuse(proto, where.status, where.reason, head)
        elif kind is Kind.HEALTH:
            ok = self._healthy()
            self._plain(proto, 200 if ok else 503, "ok\n" if ok else "the watch is not running\n", head)
        elif kind is Kind.READY:
            ok = self.store.ready
            self._plain(proto, 200 if ok else 503, "ready\n" if ok else "not loaded yet\n", head)
        else:
            body = generate_latest(self.metrics)
            proto.response_bytes(
                200, [("content-type", CONTENT_TYPE_LATEST), NO_STORE], b"" if head else body
            )

    # ---------------------------------------------------------------------------------- documents
    def _document(self, where: Route, headers: Any, proto: Any, head: bool) -> None:
        snapshot = self.store.snapshot
        published: Published | None = None
        if where.kind is Kind.JWKS and where.keyset is not None:
            # A path naming a served keyset is that keyset's JWKS, whatever issuer another keyset
            # (in any namespace) claims under the same path.
            published = snapshot.by_keyset.get(where.keyset)
        if published is None and where.host:
            published = snapshot.issuer(where.host, where.port, where.prefix)
        if where.kind is Kind.DISCOVERY:
            representation = published.discovery if published is not None else None
        else:
            representation = published.jwks if published is not None else None
        if published is None or representation is None:
            self._refuse(proto, 404, "no such keyset or issuer", head)
            return
        validator = headers.get("if-none-match")
        try:
            fresh = responses.etag_matches(validator, representation.etags)
        except responses.BadValidator as exc:
            self._refuse(proto, 400, str(exc), head, published.ref)
            return
        seconds = responses.max_age(
            time.time(), published.next_change, published.cache_ttl, self.cap, self._random.random()
        )
        cache = ("cache-control", responses.cache_control(seconds))
        gzip = responses.accepts_gzip(headers.get("accept-encoding"))
        if fresh:
            own = validator if validator in representation.etags else _matched(validator, representation)
            tag = own or (representation.gzip_etag if gzip else representation.etag)
            proto.response_empty(304, [("etag", tag), cache, VARY])
            self.stats.count(published.ref, 304, 0)
            return
        out = _headers(representation, cache, gzip)
        body = representation.gzipped if gzip else representation.body
        proto.response_bytes(200, out, body)  # hyper sends no body for HEAD, and keeps its length
        self.stats.count(published.ref, 200, 0 if head else len(body))

    # ---------------------------------------------------------------------------------- errors
    def _refuse(
        self, proto: Any, status: int, reason: str, head: bool, ref: tuple[str, str] = ("", "")
    ) -> None:
        headers = [TEXT, NO_STORE]
        if status == 405:
            headers.append(("allow", "GET, HEAD"))
        proto.response_bytes(status, headers, f"{reason}\n".encode())
        self.stats.count(ref, status, 0)

    def _plain(self, proto: Any, status: int, text: str, head: bool) -> None:
        proto.response_bytes(status, [TEXT, NO_STORE], text.encode())


def _headers(representation: Representation, cache: tuple[str, str], gzip: bool) -> list[tuple[str, str]]:
    if gzip:
        return [
            ("content-type", representation.content_type),
            ("content-encoding", "gzip"),
            ("etag", representation.gzip_etag),
            cache,
            VARY,
        ]
    return [("content-type", representation.content_type), ("etag", representation.etag), cache, VARY]


def _matched(tag: str | None, representation: Representation) -> str | None:
    """The validator a single-tag If-None-Match named, so the 304 confirms the cache's own one."""
    if tag is None or "," in tag:
        return None
    bare = tag.strip().removeprefix("W/")
    return bare if bare in representation.etags else None
