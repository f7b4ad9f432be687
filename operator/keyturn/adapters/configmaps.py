"""The JWKS ConfigMap: public keys only, written after the Secret."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from keyturn.adapters.kube import Conflict, get_or_none, is_status
from keyturn.adapters.kube import write as owned_write
from keyturn.adapters.owned_store import OwnedStore
from keyturn.adapters.secrets import owner_refs, owner_uids, str_map
from keyturn.domain.annotations import JWKS_ANNOTATIONS, KEYSET_LABEL, MANAGED_BY
from keyturn.domain.inputs import ConfigMapSnapshot

__all__ = ["ConfigMapSnapshot", "ConfigMaps"]


def config_map_snapshot(obj: Mapping[str, Any]) -> ConfigMapSnapshot:
    """A ConfigMap as JSON (the watch's, or a read's answer serialised), read totally."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    return ConfigMapSnapshot(
        data=str_map(obj.get("data")),
        labels=str_map(meta.get("labels")),
        owner_uids=owner_uids(meta),
        resource_version=str(meta.get("resourceVersion") or ""),
        annotations=str_map(meta.get("annotations")),
    )


class ConfigMaps:
    def __init__(self, api: Any, store: OwnedStore | None = None) -> None:
        self._core = client.CoreV1Api(api)
        self._store = store  # the watch's copies of Keyturn's ConfigMaps (adapters/owned_store.py)

    async def read(self, namespace: str, name: str) -> ConfigMapSnapshot | None:
        cached = self._store.get(namespace, name) if self._store is not None else None
        if cached is not None:
            return config_map_snapshot(cached)
        cm = await get_or_none(self._core.read_namespaced_config_map, name, namespace)
        if cm is None:
            return None
        return config_map_snapshot(self._core.api_client.sanitize_for_serialization(cm))

    async def write(
        self,
        namespace: str,
        name: str,
        data: Mapping[str, str],
        keyset: str,
        owner: Mapping[str, Any] | None,
        previous: ConfigMapSnapshot | None,
        *,
        annotations: Mapping[str, str],
    ) -> None:
        """Replace the ConfigMap whole: the document, Keyturn's labels and its annotations for the JWKS
        server (others' annotations are kept; Keyturn's absent ones are removed)."""
        kept = {
            k: v for k, v in (previous.annotations if previous else {}).items() if k not in JWKS_ANNOTATIONS
        }
        body = client.V1ConfigMap(
            metadata=client.V1ObjectMeta(
                name=name,
                namespace=namespace,
                labels={**(previous.labels if previous else {}), **MANAGED_BY, KEYSET_LABEL: keyset},
                annotations={**kept, **annotations} or None,
                owner_references=owner_refs(owner),
                resource_version=previous.resource_version if previous else None,
            ),
            data=dict(data),
        )
        try:
            if previous is None:
                written = await owned_write(
                    "ConfigMap", namespace, name, self._core.create_namespaced_config_map, namespace, body
                )
            else:
                written = await owned_write(
                    "ConfigMap",
                    namespace,
                    name,
                    self._core.replace_namespaced_config_map,
                    name,
                    namespace,
                    body,
                )
        except ApiException as exc:
            if is_status(exc, 409):
                raise Conflict(f"ConfigMap {namespace}/{name} changed underneath; retrying") from exc
            raise
        if self._store is not None:
            self._store.remember(self._core.api_client.sanitize_for_serialization(written))
