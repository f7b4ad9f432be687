"""The workloads that name a keyset, kept from the watch: a pass reads its targets from here.

Listing every Deployment of a namespace on every pass costs a request per pass and grows with
the namespace; the watch already sees every change. The index keeps a trimmed copy of each
annotated workload (only what `workloads.to_target` reads), keyed by keyset. A periodic LIST
sweeps away what a watch reconnection may have missed (deletions are not replayed on a relist).

A LIST takes time, and watch events keep arriving meanwhile: they are newer than what the LIST
answers. So the caller reads `clock()` before it lists, and `sweep(..., since=that)` leaves every
workload an event touched since then as the event left it: a LIST never brings back a deleted or
un-annotated workload, never drops one created or annotated meanwhile, and never overwrites a
newer body with its older one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any

from keyturn.adapters.workloads import kind_of, targeted_keysets

ObjectKey = tuple[str, str, str]  # kind, namespace, name
KeysetKey = tuple[str, str]  # namespace, keyset
_KEPT_PREFIX = "keyturn.dev/"


def _trim(body: Mapping[str, Any]) -> dict[str, Any]:
    """What a Target needs, and nothing else: a cluster of big Deployments stays small in memory."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    template_meta = ((spec.get("template") or {}).get("metadata") or {}) if isinstance(spec, Mapping) else {}

    def ours(annotations: object) -> dict[str, Any]:
        if not isinstance(annotations, Mapping):
            return {}
        return {k: v for k, v in annotations.items() if isinstance(k, str) and k.startswith(_KEPT_PREFIX)}

    return {
        "kind": body.get("kind"),
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "generation": meta.get("generation"),
            "annotations": ours(meta.get("annotations")),
        },
        "spec": {
            "replicas": spec.get("replicas"),
            "updateStrategy": spec.get("updateStrategy"),
            "template": {"metadata": {"annotations": ours(template_meta.get("annotations"))}},
        }
        if isinstance(spec, Mapping)
        else {},
        "status": body.get("status"),
    }


class WorkloadIndex:
    """Annotated workloads by (namespace, keyset). Thread-safe; every change says which keysets
    it concerns (before and after), so the caller wakes exactly those."""

    def __init__(self) -> None:
        self._bodies: dict[ObjectKey, dict[str, Any]] = {}
        self._keysets: dict[ObjectKey, tuple[KeysetKey, ...]] = {}
        self._by_keyset: dict[KeysetKey, set[ObjectKey]] = {}
        self._lock = threading.Lock()
        self._clock = 0  # counts watch events
        self._touched: dict[ObjectKey, int] = {}  # the clock at each object's latest event
        self.listed = False  # a first full LIST went in: an empty answer now means "no targets"

    def clock(self) -> int:
        """Read before a LIST; `sweep(since=...)` then trusts the events that came after it."""
        with self._lock:
            return self._clock

    def update(self, body: Mapping[str, Any]) -> set[KeysetKey]:
        """A workload was added or changed; a workload that no longer names a keyset is dropped."""
        key = _key(body)
        if key is None:
            return set()
        with self._lock:
            self._touch(key)
            return self._put(key, body)

    def remove(self, body: Mapping[str, Any]) -> set[KeysetKey]:
        key = _key(body)
        if key is None:
            return set()
        with self._lock:
            self._touch(key)
            return set(self._drop(key))

    def sweep(
        self, listed: Iterable[Mapping[str, Any]], namespaces: set[str] | None, since: int | None = None
    ) -> set[KeysetKey]:
        """Make the index equal to a full LIST (of these namespaces, or all): what it lacks is
        added, what it holds that the LIST does not is removed, except the workloads a watch event
        touched after `clock()` read `since` (the LIST's answer is older than the event)."""
        affected: set[KeysetKey] = set()
        seen: set[ObjectKey] = set()
        with self._lock:

            def newer(key: ObjectKey) -> bool:
                return since is not None and self._touched.get(key, -1) > since

            for body in listed:
                key = _key(body)
                if key is not None:
                    seen.add(key)
                    if not newer(key):
                        affected |= self._put(key, body)
            stale = [
                k
                for k in self._bodies
                if k not in seen and (namespaces is None or k[1] in namespaces) and not newer(k)
            ]
            for key in stale:
                affected |= set(self._drop(key))
            # Every event so far is older than the next LIST will be: none needs remembering.
            self._touched.clear()
            self.listed = True
        return affected

    def targets(self, namespace: str, keyset: str) -> list[dict[str, Any]]:
        with self._lock:
            keys = sorted(self._by_keyset.get((namespace, keyset), ()))
            return [self._bodies[k] for k in keys]

    def __len__(self) -> int:
        return len(self._bodies)

    def _touch(self, key: ObjectKey) -> None:
        self._clock += 1
        self._touched[key] = self._clock

    def _put(self, key: ObjectKey, body: Mapping[str, Any]) -> set[KeysetKey]:
        keysets = tuple((key[1], k) for k in targeted_keysets(body))
        before = self._drop(key)
        if keysets:
            self._bodies[key] = _trim(body)
            self._keysets[key] = keysets
            for keyset in keysets:
                self._by_keyset.setdefault(keyset, set()).add(key)
        return set(before) | set(keysets)

    def _drop(self, key: ObjectKey) -> tuple[KeysetKey, ...]:
        self._bodies.pop(key, None)
        keysets = self._keysets.pop(key, ())
        for keyset in keysets:
            members = self._by_keyset.get(keyset)
            if members is not None:
                members.discard(key)
                if not members:
                    del self._by_keyset[keyset]
        return keysets


def _key(body: Mapping[str, Any]) -> ObjectKey | None:
    kind = kind_of(body)
    meta = body.get("metadata")
    if kind is None or not isinstance(meta, Mapping):
        return None
    namespace, name = meta.get("namespace"), meta.get("name")
    if not (isinstance(namespace, str) and namespace and isinstance(name, str) and name):
        return None
    return str(kind), namespace, name
