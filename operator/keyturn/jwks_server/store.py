"""The served documents, by keyset and by issuer, as one immutable snapshot swapped on every change.

The watch threads write (under a lock); request handlers only read `store.snapshot`, one attribute
read, so a request sees one consistent state and never waits for a writer. Each ConfigMap is parsed
(and its gzip and ETags computed) once per resourceVersion; a change rebuilds only the two indexes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from keyturn.jwks_server.documents import Published, Skipped, parse_configmap

log = logging.getLogger("keyturn.jwks")

IssuerKey = tuple[str, str]  # (host, path)


@dataclass(frozen=True)
class Snapshot:
    by_keyset: Mapping[tuple[str, str], Published] = field(default_factory=dict)
    by_issuer: Mapping[IssuerKey, Published] = field(default_factory=dict)
    # Issuers claimed by more than one ConfigMap: (issuer URL, served ref, refused ref).
    conflicts: tuple[tuple[str, str, str], ...] = ()

    def issuer(self, host: str, port: int | None, prefix: str) -> Published | None:
        found = self.by_issuer.get((host, prefix.rstrip("/")))
        if found is None or found.issuer is None:
            return None
        if found.issuer.port is not None and port != found.issuer.port:
            return None
        return found


class Store:
    def __init__(self, scopes: Iterable[str]) -> None:
        self.snapshot = Snapshot()
        self._lock = threading.Lock()
        self._scopes = set(scopes)
        self._docs: dict[str, dict[str, Published]] = {s: {} for s in self._scopes}
        self._listed: set[str] = set()
        self._synced_at: dict[str, float] = {}
        self._seen: dict[str, str] = {}  # uid -> resourceVersion last parsed (also for skipped ones)
        self.skipped: Counter[str] = Counter()

    # ------------------------------------------------------------------------ state for probes
    @property
    def ready(self) -> bool:
        """Every scope has been listed once."""
        return self._listed >= self._scopes

    def data_age(self, now: float | None = None) -> float | None:
        """Seconds since the least recently confirmed scope was known to be in sync."""
        if not self.ready:
            return None
        now = time.time() if now is None else now
        return max(now - t for t in self._synced_at.values())

    def synced(self, scope: str) -> None:
        self._synced_at[scope] = time.time()

    def failed(self, scope: str) -> None:
        """A list or watch failed: what is loaded stays served, and its age shows in data_age."""

    # ------------------------------------------------------------------------ writes (watch threads)
    def replace(self, scope: str, objects: Iterable[object]) -> None:
        """A full list of the scope: what is not in it is gone."""
        with self._lock:
            old = self._docs.get(scope, {})
            docs: dict[str, Published] = {}
            for obj in objects:
                key, published = self._parse(obj, old)
                if key and published is not None:
                    docs[key] = published
            self._docs[scope] = docs
            self._listed.add(scope)
            self._rebuild()
        self.synced(scope)

    def apply(self, scope: str, kind: str, obj: object) -> None:
        """One watch event: ADDED, MODIFIED or DELETED."""
        with self._lock:
            docs = self._docs.setdefault(scope, {})
            key = _uid(obj)
            if not key:
                self._skip("malformed", "a watch event without a uid")
                return
            if kind == "DELETED":
                docs.pop(key, None)
                self._seen.pop(key, None)
            else:
                _, published = self._parse(obj, docs)
                if published is None:
                    docs.pop(key, None)  # fail closed: an unusable update is not served, nor the old one
                else:
                    docs[key] = published
            self._rebuild()
        self.synced(scope)

    def _parse(self, obj: object, known: Mapping[str, Published]) -> tuple[str, Published | None]:
        key = _uid(obj)
        version = _resource_version(obj)
        previous = known.get(key)
        if previous is not None and previous.resource_version == version:
            return key, previous
        first_sight = self._seen.get(key) != version
        self._seen[key] = version
        try:
            published = parse_configmap(obj)
        except Skipped as exc:
            if first_sight:
                self._skip(exc.reason, str(exc))
            return key, None
        if first_sight:
            for reason, message in published.problems:
                self._skip(reason, message)
        return key, published

    def _skip(self, reason: str, message: str) -> None:
        self.skipped[reason] += 1
        log.warning("JWKS ConfigMap skipped: %s", message, extra={"reason": f"Skipped:{reason}"})

    def _rebuild(self) -> None:
        documents = sorted(
            (p for docs in self._docs.values() for p in docs.values()),
            key=lambda p: (p.created, p.namespace, p.configmap),
        )
        by_keyset: dict[tuple[str, str], Published] = {}
        by_issuer: dict[IssuerKey, Published] = {}
        conflicts: list[tuple[str, str, str]] = []
        for published in documents:  # oldest first: the first claim of a keyset or an issuer wins
            by_keyset.setdefault(published.ref, published)
            if published.issuer is None:
                continue
            key = (published.issuer.host, published.issuer.path)
            holder = by_issuer.setdefault(key, published)
            if holder is not published:
                conflicts.append((published.issuer.url, _name(holder), _name(published)))
        if set(conflicts) - set(self.snapshot.conflicts):
            for issuer, served, refused in conflicts:
                log.warning(
                    "issuer %s is claimed by %s and %s; serving the older, %s",
                    issuer,
                    served,
                    refused,
                    served,
                    extra={"reason": "IssuerConflict"},
                )
        self.snapshot = Snapshot(by_keyset, by_issuer, tuple(conflicts))


def _name(published: Published) -> str:
    return f"{published.namespace}/{published.configmap}"


def _uid(obj: object) -> str:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    if not isinstance(meta, Mapping):
        return ""
    uid = meta.get("uid") or (f"{meta.get('namespace')}/{meta.get('name')}" if meta.get("name") else "")
    return str(uid)


def _resource_version(obj: object) -> str:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    return str(meta.get("resourceVersion") or "") if isinstance(meta, Mapping) else ""
