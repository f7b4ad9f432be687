"""Which resource a request names, or why it is refused: a pure function of method, path and Host.

Only exact shapes are served: the health and metrics paths, /{namespace}/{keyset}/.well-known/
jwks.json, and the two documents under an issuer's path. Anything that could be read two ways
(percent-encoding, dot segments, empty segments, backslashes) is a malformed request (400), never
normalised: there are no files behind these paths, and no second reading to get wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from typing import Final

MAX_PATH: Final = 1024
MAX_HOST: Final = 262  # a DNS name (253) and a port
JWKS_SUFFIX: Final = "/.well-known/jwks.json"
DISCOVERY_SUFFIX: Final = "/.well-known/openid-configuration"
METHODS: Final = frozenset({"GET", "HEAD"})

_PATH_CHARS = re.compile(r"/[A-Za-z0-9._~/-]*")
_KEYSET_PATH = re.compile(r"/([a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)/([a-z0-9](?:[-a-z0-9.]{0,251}[a-z0-9])?)")
# A name, or an IPv6 literal in brackets (what a kubelet's probe sends to a Pod on an IPv6 network).
_HOST = re.compile(r"([A-Za-z0-9](?:[-A-Za-z0-9.]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::([0-9]{1,5}))?")


class Kind(Enum):
    HEALTH = "healthz"
    READY = "readyz"
    METRICS = "metrics"
    JWKS = "jwks"  # a keyset's document: by path, or by issuer
    DISCOVERY = "discovery"  # an issuer's discovery document
    REFUSED = "refused"


@dataclass(frozen=True)
class Route:
    kind: Kind
    status: int = 200  # for REFUSED: 400, 404, 405 or 414
    reason: str = ""
    keyset: tuple[str, str] | None = None  # (namespace, keyset) named by the path
    host: str = ""  # lowercase, for issuer lookups
    port: int | None = None
    prefix: str = ""  # the path before /.well-known/…, for issuer lookups


HEALTH = Route(Kind.HEALTH)
READY = Route(Kind.READY)
METRICS = Route(Kind.METRICS)
_FIXED = {"/healthz": HEALTH, "/readyz": READY, "/metrics": METRICS}


def refused(status: int, reason: str) -> Route:
    return Route(Kind.REFUSED, status, reason)


def parse_host(header: str | None) -> tuple[str, int | None] | None:
    """(lowercase host, port or None) of a Host header, None when absent or malformed."""
    if not header or len(header) > MAX_HOST:
        return None
    match = _HOST.fullmatch(header)
    if match is None:
        return None
    port = int(match[2]) if match[2] else None
    return match[1].lower(), port


def route(method: str, path: str, host_header: str | None) -> Route:
    if method not in METHODS:
        return refused(405, "only GET and HEAD")
    if len(path) > MAX_PATH:
        return refused(414, "path too long")
    host = parse_host(host_header)
    if host is None:
        return refused(400, "a Host header is required")
    fixed = _FIXED.get(path)
    if fixed is not None:
        return fixed
    if _PATH_CHARS.fullmatch(path) is None:
        return refused(400, "malformed path")
    if "//" in path or "/./" in path or "/../" in path or path.endswith(("/.", "/..")):
        return refused(400, "malformed path")
    if path.endswith(JWKS_SUFFIX):
        prefix = path[: -len(JWKS_SUFFIX)]
        match = _KEYSET_PATH.fullmatch(prefix)
        keyset = (match[1], match[2]) if match else None
        return Route(Kind.JWKS, keyset=keyset, host=host[0], port=host[1], prefix=prefix)
    if path.endswith(DISCOVERY_SUFFIX):
        return Route(Kind.DISCOVERY, host=host[0], port=host[1], prefix=path[: -len(DISCOVERY_SUFFIX)])
    return refused(404, "not found")
