"""The HTTP semantics of a served document, as pure functions: cache lifetime, validators, coding.

max-age is recomputed on every request: it is the smallest of the server's cap, the keyset's
verifier cache TTL and the seconds until the document is next due to change, minus a random spread
of up to SPREAD of it so that caches filled at the same moment do not all expire together. It never
exceeds any of the three: the spread only shortens it.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
from collections.abc import Collection, Iterable
from typing import Final

SPREAD: Final = 0.1
DEFAULT_CAP: Final = 3600
# If-None-Match beyond these is not a cache revalidating: the request is refused (400).
MAX_IF_NONE_MATCH_LENGTH: Final = 2048
MAX_IF_NONE_MATCH_TAGS: Final = 32


class BadValidator(ValueError):
    """An If-None-Match header too long or with too many entity tags."""


def max_age(now: float, next_change: float | None, cache_ttl: int | None, cap: int, jitter: float) -> int:
    """Seconds a cache may keep the document; `jitter` in [0, 1) picks the spread (0: none)."""
    limit = float(cap)
    if cache_ttl is not None:
        limit = min(limit, float(cache_ttl))
    if next_change is not None:
        limit = min(limit, next_change - now)
    if limit <= 0:
        return 0
    return math.floor(limit * (1.0 - SPREAD * min(max(jitter, 0.0), 1.0)))


def cache_control(seconds: int) -> str:
    return f"public, max-age={seconds}, must-revalidate"


def strong_etag(body: bytes) -> str:
    """A strong validator: the content's SHA-256 (truncated; collisions would need an attacker
    who can already write the ConfigMap)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def gzip_etag(etag: str) -> str:
    """The gzip representation is other bytes, so it has its own strong validator (RFC 9110 8.8.3)."""
    return etag[:-1] + '-gz"'


def compress(body: bytes) -> bytes:
    """Deterministic gzip (no timestamp): every replica serves the same bytes for one document."""
    return gzip.compress(body, compresslevel=9, mtime=0)


def etag_matches(header: str | None, etags: Collection[str]) -> bool:
    """If-None-Match against the document's validators, weak comparison (RFC 9110 13.1.2).

    Raises BadValidator for a header that is no cache's revalidation (too long, too many tags).
    """
    if header is None:
        return False
    if header in etags:  # what a cache sends back: its one validator, as it got it
        return True
    if len(header) > MAX_IF_NONE_MATCH_LENGTH:
        raise BadValidator("If-None-Match too long")
    text = header.strip()
    if text == "*":
        return True
    tags = [t.strip() for t in text.split(",")]
    if len(tags) > MAX_IF_NONE_MATCH_TAGS:
        raise BadValidator("too many entity tags in If-None-Match")
    wanted = set(etags)
    return any((t[2:] if t.startswith("W/") else t) in wanted for t in tags)


def accepts_gzip(header: str | None) -> bool:
    """Whether Accept-Encoding allows gzip (and does not refuse it with q=0)."""
    if not header or "gzip" not in header.lower():
        return False
    for item in header.lower().split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip() not in ("gzip", "x-gzip"):
            continue
        q = params.strip()
        if not q.startswith("q="):
            return True
        try:
            return float(q[2:]) > 0
        except ValueError:
            return False
    return False


def discovery_document(issuer: str, jwks_uri: str, algorithms: Iterable[str]) -> bytes:
    """The OpenID Provider Metadata subset kube-apiserver serves for its service-account issuer."""
    document = {
        "issuer": issuer,
        "jwks_uri": jwks_uri,
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": sorted(set(algorithms)),
    }
    return (json.dumps(document, indent=2) + "\n").encode()
