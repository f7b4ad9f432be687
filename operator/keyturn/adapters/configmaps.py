"""The JWKS ConfigMap: public keys only, written after the Secret."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from keyturn.adapters.kube import Conflict, get_or_none, is_status
from keyturn.adapters.kube import write as owned_write
from keyturn.adapters.secrets import owner_refs
from keyturn.domain.annotations import JWKS_ANNOTATIONS, KEYSET_LABEL, MANAGED_BY
from keyturn.domain.inputs import ConfigMapSnapshot

__all__ = ["ConfigMapSnapshot", "ConfigMaps"]


class ConfigMaps:
    def __init__(self, api: Any) -> None:
        self._core = client.CoreV1Api(api)

    async def read(self, namespace: str, name: str) -> ConfigMapSnapshot | None:
        cm = await get_or_none(self._core.read_namespaced_config_map, name, namespace)
        if cm is None:
            return None
        meta = cm.metadata
        assert meta is not None  # the API always returns metadata
        return ConfigMapSnapshot(
            data=dict(cm.data or {}),
            labels=dict(meta.labels or {}),
            owner_uids=tuple(o.uid for o in meta.owner_references or ()),
            resource_version=str(meta.resource_version),
            annotations=dict(meta.annotations or {}),
        )

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
                await owned_write(
                    "ConfigMap", namespace, name, self._core.create_namespaced_config_map, namespace, body
                )
            else:
                await owned_write(
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
