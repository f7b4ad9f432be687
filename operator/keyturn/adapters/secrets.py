"""The keyset's Secret (material + record) and the passphrase Secret."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from keyturn.adapters.kube import Conflict, get_or_none, is_status
from keyturn.adapters.kube import write as owned_write
from keyturn.adapters.owned_store import OwnedStore
from keyturn.domain.annotations import KEYSET_LABEL, MANAGED_BY, STATE_ANNOTATION
from keyturn.domain.inputs import SecretSnapshot

__all__ = ["SecretSnapshot", "SecretWrite", "Secrets"]


@dataclass(frozen=True)
class SecretWrite:
    name: str
    data: Mapping[str, str] = field(repr=False)
    record: str = field(repr=False)
    keyset: str
    owner: Mapping[str, Any] | None = None
    # Items carried over as they are (base64), e.g. binary items Keyturn cannot read.
    raw: Mapping[str, str] = field(default_factory=dict, repr=False)


def _decode(data: Mapping[str, bytes | str] | None) -> tuple[dict[str, str], dict[str, str]]:
    """Text items, and the items that are not UTF-8 text (kept as the API's base64)."""
    text: dict[str, str] = {}
    binary: dict[str, str] = {}
    for key, value in (data or {}).items():
        try:
            text[key] = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
            binary[key] = value if isinstance(value, str) else ""
    return text, binary


def owner_refs(owner: Mapping[str, Any] | None) -> list[client.V1OwnerReference] | None:
    if owner is None:
        return None
    return [
        client.V1OwnerReference(
            api_version=owner["apiVersion"],
            kind=owner["kind"],
            name=owner["name"],
            uid=owner["uid"],
            controller=owner.get("controller"),
            block_owner_deletion=owner.get("blockOwnerDeletion"),
        )
    ]


def str_map(value: object) -> dict[str, str]:
    """A JSON object of strings (labels, annotations, items), its other entries dropped."""
    if not isinstance(value, Mapping):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def owner_uids(meta: Mapping[str, Any]) -> tuple[str, ...]:
    refs = meta.get("ownerReferences")
    return (
        tuple(
            str(ref["uid"])
            for ref in refs or ()
            if isinstance(ref, Mapping) and isinstance(ref.get("uid"), str)
        )
        if isinstance(refs, list)
        else ()
    )


def secret_snapshot(name: str, obj: Mapping[str, Any]) -> SecretSnapshot:
    """A Secret as JSON (the watch's, or a read's answer serialised), read totally."""
    meta = obj.get("metadata")
    meta = meta if isinstance(meta, Mapping) else {}
    data = obj.get("data")
    text, binary = _decode(data if isinstance(data, Mapping) else None)
    return SecretSnapshot(
        name=name,
        data=text,
        binary=binary,
        annotations=str_map(meta.get("annotations")),
        labels=str_map(meta.get("labels")),
        owner_uids=owner_uids(meta),
        resource_version=str(meta.get("resourceVersion") or ""),
    )


class Secrets:
    def __init__(self, api: Any, store: OwnedStore | None = None) -> None:
        self._core = client.CoreV1Api(api)
        self._store = store  # the watch's copies of Keyturn's Secrets (adapters/owned_store.py)

    async def read(self, namespace: str, name: str) -> SecretSnapshot | None:
        cached = self._store.get(namespace, name) if self._store is not None else None
        if cached is not None:
            return secret_snapshot(name, cached)
        secret = await get_or_none(self._core.read_namespaced_secret, name, namespace)
        if secret is None:
            return None
        return secret_snapshot(name, self._core.api_client.sanitize_for_serialization(secret))

    async def write(self, namespace: str, write: SecretWrite, previous: SecretSnapshot | None) -> None:
        """Create or replace the whole Secret, guarded by resourceVersion: no lost updates."""
        annotations = {
            **(previous.annotations if previous else {}),
            STATE_ANNOTATION: write.record,
        }
        labels = {**(previous.labels if previous else {}), **MANAGED_BY, KEYSET_LABEL: write.keyset}
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=write.name,
                namespace=namespace,
                labels=labels,
                annotations=annotations,
                owner_references=owner_refs(write.owner),
                resource_version=previous.resource_version if previous else None,
            ),
            type="Opaque",
            data={
                **dict(write.raw),
                **{k: base64.b64encode(v.encode()).decode() for k, v in sorted(write.data.items())},
            },
        )
        try:
            if previous is None:
                written = await owned_write(
                    "Secret", namespace, write.name, self._core.create_namespaced_secret, namespace, body
                )
            else:
                written = await owned_write(
                    "Secret",
                    namespace,
                    write.name,
                    self._core.replace_namespaced_secret,
                    write.name,
                    namespace,
                    body,
                )
        except ApiException as exc:
            if is_status(exc, 409):
                raise Conflict(f"Secret {namespace}/{write.name} changed underneath; retrying") from exc
            raise
        if self._store is not None:
            self._store.remember(self._core.api_client.sanitize_for_serialization(written))

    async def passphrase(self, namespace: str, name: str, key: str) -> bytes | None:
        secret = await get_or_none(self._core.read_namespaced_secret, name, namespace)
        if secret is None:
            return None
        value = (secret.data or {}).get(key)
        return base64.b64decode(value) if value else None
