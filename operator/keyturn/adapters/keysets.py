"""JwtKeySet objects: the latest body the watch delivered, and merge patches of the status.

The operator's watch already holds every keyset's latest body, so a pass reads it from there (no
GET per pass) and falls back to a GET only for a keyset the watch has not delivered. A status
patch returns the new body, which replaces the cached one at once and is recorded as Keyturn's own
write, so its watch event wakes nothing.
"""

from __future__ import annotations

import copy as copy_module
import logging
import threading
from collections.abc import Mapping
from typing import Any, cast

from kubernetes import client

from keyturn import GROUP, PLURAL, VERSION
from keyturn.adapters.kube import get_or_none, newer
from keyturn.adapters.kube import write as owned_write
from keyturn.adapters.list_watch import ListWatch, Peek, Sink
from keyturn.domain.annotations import FINALIZER

KIND = "JwtKeySet"

log = logging.getLogger("keyturn")


class Keysets:
    def __init__(self, api: Any, *, cached: bool = False) -> None:
        self._custom = client.CustomObjectsApi(api)
        self._cached = cached
        self._bodies: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    # -------------------------------------------------------------------------------- the cache
    def remember(self, body: Mapping[str, Any], *, copy: bool = True) -> bool:
        """The watch saw this body (or a write returned it). False when the cache already holds
        this version or a newer one: two sources (the watches, the writes' answers) may deliver a
        version after a newer one. copy=False: the caller hands over a body nobody else holds."""
        meta = body.get("metadata") or {}
        key = (str(meta.get("namespace", "")), str(meta.get("name", "")))
        with self._lock:
            known = self._bodies.get(key)
            if known is not None and not newer(body, known):
                return False
            self._bodies[key] = copy_module.deepcopy(dict(body)) if copy else dict(body)
        return True

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._bodies.pop((namespace, name), None)

    def cached(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._bodies.values())

    def cached_body(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._bodies.get((namespace, name))

    # -------------------------------------------------------------------------------- the API
    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        if self._cached:
            with self._lock:
                body = self._bodies.get((namespace, name))
            if body is not None:
                return copy_module.deepcopy(body)
        obj = await get_or_none(
            self._custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
        )
        if obj is None:
            return None
        return cast(dict[str, Any], obj)

    def list_watch(self, scope: str, sink: Sink, stop: threading.Event) -> ListWatch:
        """A list-watch thread of the keysets of one scope ("" for every namespace)."""
        return ListWatch(self._lister, scope, sink, stop, what="JwtKeySets", log=log)

    def peek(self, scope: str, sink: Sink, stop: threading.Event, seconds: int) -> Peek:
        """A thread following the keysets' events of the next `seconds`, while list_watch lists."""
        return Peek(self._lister, scope, sink, stop, what="JwtKeySets", log=log, seconds=seconds)

    def _lister(self, scope: str, **query: Any) -> Any:
        if scope:
            return self._custom.list_namespaced_custom_object(GROUP, VERSION, scope, PLURAL, **query)
        return self._custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, **query)

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """JSON merge patch of only the fields that changed; a person's status.emergency survives."""
        written = await owned_write(
            KIND,
            namespace,
            name,
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": dict(status)},
        )
        self._written(namespace, name, written)

    async def drop_finalizer(self, obj: Mapping[str, Any]) -> None:
        """Versions up to 0.1 had kopf put a finalizer on every keyset; nothing needs it any more."""
        meta = obj.get("metadata") or {}
        finalizers = [f for f in meta.get("finalizers") or () if f != FINALIZER]
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta.get("resourceVersion")}}
        written = await owned_write(
            KIND,
            str(meta.get("namespace")),
            str(meta.get("name")),
            self._custom.patch_namespaced_custom_object,
            GROUP,
            VERSION,
            str(meta.get("namespace")),
            PLURAL,
            str(meta.get("name")),
            patch,
        )
        self._written(str(meta.get("namespace")), str(meta.get("name")), written)

    def _written(self, namespace: str, name: str, written: object) -> None:
        if isinstance(written, Mapping) and self._cached:
            self.remember(written)


def owner_reference(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": obj.get("kind", KIND),
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": False,
    }
