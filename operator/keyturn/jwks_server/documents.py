"""A JWKS ConfigMap, hostile until parsed, turned into everything served for it, computed once.

The document is served as the ConfigMap holds it (its exact bytes), but only after it has been read
as a JWK Set of public keys: a ConfigMap that is not one (not JSON, no `keys`, a private member, too
big) is skipped, never served. Keyturn's annotations are read the same way: a wrong issuer is not
served under, a wrong next-change or cache TTL makes the document uncacheable (max-age 0) rather
than cached too long.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from keyturn.domain.annotations import (
    CACHE_TTL_ANNOTATION,
    ISSUER_ANNOTATION,
    KEYSET_LABEL,
    NEXT_CHANGE_ANNOTATION,
)
from keyturn.domain.issuer import Issuer, IssuerError, parse_issuer
from keyturn.domain.jwks import PRIVATE_MEMBERS
from keyturn.domain.spec import DEFAULT_JWKS_KEY
from keyturn.jwks_server.responses import compress, discovery_document, gzip_etag, strong_etag

MAX_DOCUMENT: Final = 1 << 20  # what a ConfigMap can hold
MAX_KEYS: Final = 100
MAX_TTL: Final = 10 * 365 * 24 * 3600
JWKS_TYPE: Final = "application/jwk-set+json"
JSON_TYPE: Final = "application/json"


class Skipped(ValueError):
    """Why a ConfigMap (or one of its annotations) is not used; `reason` is the metric label."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Representation:
    """One document's bytes and validators, identity and gzip."""

    body: bytes
    gzipped: bytes
    etag: str
    gzip_etag: str
    content_type: str

    @classmethod
    def of(cls, body: bytes, content_type: str) -> Representation:
        etag = strong_etag(body)
        return cls(body, compress(body), etag, gzip_etag(etag), content_type)

    @property
    def etags(self) -> tuple[str, str]:
        return (self.etag, self.gzip_etag)


@dataclass(frozen=True)
class Published:
    """One keyset's JWKS as served: by path always, by issuer when it has a valid one."""

    namespace: str
    keyset: str
    configmap: str
    created: str  # the ConfigMap's creationTimestamp: the older of two claims of an issuer wins
    uid: str
    resource_version: str
    jwks: Representation
    next_change: float | None  # unix time; None: nothing scheduled
    cache_ttl: int | None
    issuer: Issuer | None = None
    discovery: Representation | None = None
    # Annotations that were not usable (reason, message): logged and counted by the store.
    problems: tuple[tuple[str, str], ...] = field(default=())

    @property
    def ref(self) -> tuple[str, str]:
        return (self.namespace, self.keyset)


def parse_configmap(obj: object) -> Published:
    """The served form of a ConfigMap as the API returns it (a JSON object), or Skipped."""
    if not isinstance(obj, Mapping):
        raise Skipped("malformed", "not an object")
    meta = _mapping(obj.get("metadata"))
    namespace, name = meta.get("namespace"), meta.get("name")
    if not isinstance(namespace, str) or not isinstance(name, str):
        raise Skipped("malformed", "no namespace or name")
    keyset = _mapping(meta.get("labels")).get(KEYSET_LABEL)
    if not isinstance(keyset, str) or not keyset:
        raise Skipped("no-keyset", f"{namespace}/{name}: no {KEYSET_LABEL} label")
    text = _document_text(_mapping(obj.get("data")), f"{namespace}/{name}")
    algorithms = _check_document(text, f"{namespace}/{name}")
    annotations = _mapping(meta.get("annotations"))
    problems: list[tuple[str, str]] = []
    next_change, ttl = _cache_annotations(annotations, problems, f"{namespace}/{name}")
    issuer = None
    raw_issuer = annotations.get(ISSUER_ANNOTATION)
    if raw_issuer is not None:
        try:
            issuer = parse_issuer(raw_issuer)
        except IssuerError as exc:
            problems.append(
                ("bad-issuer", f"{namespace}/{name}: {ISSUER_ANNOTATION} {exc}; not served under it")
            )
    body = text.encode()
    discovery = None
    if issuer is not None:
        discovery = Representation.of(discovery_document(issuer.url, issuer.jwks_uri, algorithms), JSON_TYPE)
    return Published(
        namespace=namespace,
        keyset=keyset,
        configmap=name,
        created=str(meta.get("creationTimestamp") or ""),
        uid=str(meta.get("uid") or ""),
        resource_version=str(meta.get("resourceVersion") or ""),
        jwks=Representation.of(body, JWKS_TYPE),
        next_change=next_change,
        cache_ttl=ttl,
        issuer=issuer,
        discovery=discovery,
        problems=tuple(problems),
    )


def _document_text(data: Mapping[str, Any], ref: str) -> str:
    """The document: the ConfigMap's only item (Keyturn writes exactly one), else jwks.json."""
    if len(data) == 1:
        (text,) = data.values()
    else:
        text = data.get(DEFAULT_JWKS_KEY)
    if not isinstance(text, str):
        raise Skipped("no-document", f"{ref}: no JWKS item")
    if len(text) > MAX_DOCUMENT:
        raise Skipped("too-large", f"{ref}: the document is larger than {MAX_DOCUMENT} bytes")
    return text


def _check_document(text: str, ref: str) -> list[str]:
    """The algorithms of a JWK Set of public keys; Skipped for anything else."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise Skipped("not-json", f"{ref}: the document is not JSON") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or len(keys) > MAX_KEYS:
        raise Skipped("not-jwks", f"{ref}: the document is not a JWK Set (a `keys` list)")
    algorithms: list[str] = []
    for key in keys:
        if not isinstance(key, dict) or not isinstance(key.get("kty"), str):
            raise Skipped("not-jwks", f"{ref}: a key of the document is not a JWK")
        if PRIVATE_MEMBERS & key.keys():
            raise Skipped("private-key", f"{ref}: the document holds private key members; never served")
        alg = key.get("alg")
        if isinstance(alg, str) and alg:
            algorithms.append(alg)
    return algorithms


def _cache_annotations(
    annotations: Mapping[str, Any], problems: list[tuple[str, str]], ref: str
) -> tuple[float | None, int | None]:
    """(next change, TTL); an unusable value makes the document uncacheable (next change: now)."""
    next_change: float | None = None
    raw = annotations.get(NEXT_CHANGE_ANNOTATION)
    if raw is not None:
        next_change = _instant(raw)
        if next_change is None:
            problems.append(("bad-next-change", f"{ref}: {NEXT_CHANGE_ANNOTATION} is not an RFC 3339 time"))
            next_change = 0.0
    ttl: int | None = None
    raw = annotations.get(CACHE_TTL_ANNOTATION)
    if raw is not None:
        # The length first: int() of thousands of digits raises, and a ConfigMap must never do that.
        if isinstance(raw, str) and len(raw) <= len(str(MAX_TTL)) and raw.isascii() and raw.isdigit() \
                and int(raw) <= MAX_TTL:  # fmt: skip
            ttl = int(raw)
        else:
            problems.append(("bad-cache-ttl", f"{ref}: {CACHE_TTL_ANNOTATION} is not a number of seconds"))
            ttl = 0
    return next_change, ttl


def _instant(text: object) -> float | None:
    if not isinstance(text, str) or len(text) > 40:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.timestamp() if moment.tzinfo is not None else None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
