"""Kubernetes Events on the JwtKeySet, with the same Reason words as conditions and metrics."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from keyturn import GROUP, VERSION
from keyturn.adapters.kube import call

log = logging.getLogger(__name__)
COMPONENT = "keyturn"


class Events:
    def __init__(self, api: Any) -> None:
        self._core = client.CoreV1Api(api)

    async def post(self, obj: Mapping[str, Any], reason: str, message: str, *, warning: bool = False) -> None:
        """Best effort: an Event that cannot be posted must never block a key operation."""
        meta = obj["metadata"]
        now = datetime.now(UTC)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(
                name=f"{meta['name']}.{uuid.uuid4().hex[:16]}", namespace=meta["namespace"]
            ),
            involved_object=client.V1ObjectReference(
                api_version=f"{GROUP}/{VERSION}",
                kind=obj.get("kind", "JwtKeySet"),
                name=meta["name"],
                namespace=meta["namespace"],
                uid=meta["uid"],
                resource_version=meta.get("resourceVersion"),
            ),
            reason=reason,
            message=message[:1024],
            type="Warning" if warning else "Normal",
            first_timestamp=now,
            last_timestamp=now,
            count=1,
            source=client.V1EventSource(component=COMPONENT),
            reporting_component=COMPONENT,
            reporting_instance=COMPONENT,
        )
        try:
            await call(self._core.create_namespaced_event, meta["namespace"], event)
        except ApiException as exc:
            log.warning("could not post event %s: %s", reason, exc.reason)
