"""JwtKeySet objects: a fresh read per pass, and merge patches of the status subresource."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from kubernetes import client

from keyturn import GROUP, PLURAL, VERSION
from keyturn.adapters.kube import call, get_or_none


class Keysets:
    def __init__(self, api: Any) -> None:
        self._custom = client.CustomObjectsApi(api)

    async def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        obj = await get_or_none(
            self._custom.get_namespaced_custom_object, GROUP, VERSION, namespace, PLURAL, name
        )
        if obj is None:
            return None
        return cast(dict[str, Any], obj)

    async def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """JSON merge patch of only the fields that changed; a person's status.emergency survives."""
        await call(
            self._custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": dict(status)},
        )


def owner_reference(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": obj.get("kind", "JwtKeySet"),
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": False,
    }
