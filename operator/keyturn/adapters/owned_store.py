"""The Secrets or ConfigMaps Keyturn manages, as their watch last saw them: a pass reads from here.

On a restart every keyset gets a pass, and each would GET its Secret and its ConfigMap: two
requests per keyset, most of a restart's cost. The list-watch threads (adapters/list_watch.py)
already hold them all. A read takes the object from here when its scope has been listed, and
falls back to a GET when it is not here: the watch selects Keyturn's label, so a Secret someone
else made under the same name (a conflict the pass must see) is never here.

A stale object is safe: every write is guarded by the resourceVersion read, so acting on an old
one ends in a 409 Conflict and a new pass. Each write's answer is put here at once, so the next
pass never acts on the version before its own write.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from keyturn.adapters.kube import newer


class OwnedStore:
    def __init__(self) -> None:
        self._objects: dict[tuple[str, str], dict[str, Any]] = {}
        self._listed: set[str] = set()  # scopes listed at least once ("" for every namespace)
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------ the watch thread
    def replace(self, scope: str, objects: list[dict[str, Any]]) -> None:
        """A full list of the scope: what is not in it is gone."""
        with self._lock:
            known = {k: v for k, v in self._objects.items() if not scope or k[0] == scope}
            for key in known:
                del self._objects[key]
            for obj in objects:
                at = _key(obj)
                if at is not None:  # a write's answer may be newer than the list
                    mine = known.get(at)
                    self._objects[at] = mine if mine is not None and newer(mine, obj) else obj
            self._listed.add(scope)

    def apply(self, kind: str, obj: dict[str, Any]) -> None:
        """One watch event: ADDED, MODIFIED or DELETED."""
        key = _key(obj)
        if key is None:
            return
        with self._lock:
            if kind == "DELETED":
                self._objects.pop(key, None)
            else:
                self._put(key, obj)

    # ------------------------------------------------------------------------ the passes
    def remember(self, obj: Mapping[str, Any]) -> None:
        """A write's answer (as JSON): newer than anything the watch has brought so far."""
        key = _key(obj)
        if key is not None:
            with self._lock:
                self._put(key, dict(obj))

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The object, if its scope is listed and it is here; None: ask the API server."""
        with self._lock:
            if namespace not in self._listed and "" not in self._listed:
                return None
            return self._objects.get((namespace, name))

    def _put(self, key: tuple[str, str], obj: dict[str, Any]) -> None:
        known = self._objects.get(key)
        if known is None or newer(obj, known):
            self._objects[key] = obj


def _key(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return None
    namespace, name = meta.get("namespace"), meta.get("name")
    if isinstance(namespace, str) and isinstance(name, str) and namespace and name:
        return namespace, name
    return None
