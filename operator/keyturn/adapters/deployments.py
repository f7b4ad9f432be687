"""Target Deployments: discovery by annotation, their rollout state, and the restart stamp."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kubernetes import client

from keyturn.adapters.kube import call
from keyturn.domain.annotations import (
    HEALTH_ANNOTATION,
    ORDER_ANNOTATION,
    ROLE_ANNOTATION,
    keysets_of,
    revision_annotation,
    stamped_annotation,
    verified_annotation,
)
from keyturn.domain.egress import shorten
from keyturn.domain.record import RecordError, parse_timestamp, timestamp
from keyturn.domain.targets import Role, Target

ORDER_LIMIT = 999_999_999
REQUEST_TIMEOUT = 30.0  # seconds, for each list or patch
_ORDER = re.compile(r"^[+-]?[0-9]{1,9}$")


class BadTarget(ValueError):
    """A target's annotations cannot be read; the message names the Deployment and the fix."""


def _count(value: Any) -> int:
    """A replica count from status or spec: anything that is not a sane int reads as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 31 else 0


def _time(text: str) -> datetime | None:
    """An RFC 3339 time as Keyturn writes it, within the record's bounds; None for anything else
    (garbage, no zone, a year that only a damaged annotation holds)."""
    try:
        return parse_timestamp(text.strip())
    except RecordError:
        return None


def _condition(status: Any, kind: str) -> Any:
    conditions = getattr(status, "conditions", None)
    return next((c for c in (conditions or ()) if getattr(c, "type", None) == kind), None)


def to_target(deployment: Any, keyset: str) -> Target:
    """Total over any Deployment: a Target, or BadTarget when role or order cannot be read.

    Keyturn's own bookkeeping (`stamped-`, `ready-`) that a person damaged is ignored rather than
    refused, and listed in `Target.damaged`: the target still holds the keys and must still be
    restarted (an emergency cannot skip a signer), and Keyturn rewrites both annotations itself.
    """
    meta = getattr(deployment, "metadata", None)
    name = getattr(meta, "name", None)
    if not isinstance(name, str) or not name:
        raise BadTarget("a Deployment without a name cannot be a target")
    raw_annotations = getattr(meta, "annotations", None)
    annotations: Mapping[str, Any] = raw_annotations if isinstance(raw_annotations, Mapping) else {}

    def text(key: str) -> str:
        value = annotations.get(key)
        return value if isinstance(value, str) else ""

    role_text = text(ROLE_ANNOTATION).strip() or "both"
    try:
        role = Role(role_text)
    except ValueError as exc:
        raise BadTarget(
            f"deployment {name}: {ROLE_ANNOTATION} {shorten(role_text, 40)!r} is not verifier, signer or "
            "both; fix the annotation (the Deployment is left out of the rollout until then)"
        ) from exc
    order_text = text(ORDER_ANNOTATION).strip() or "0"
    if not _ORDER.match(order_text):
        raise BadTarget(
            f"deployment {name}: {ORDER_ANNOTATION} {shorten(order_text, 40)!r} is not a whole number "
            f"between -{ORDER_LIMIT} and {ORDER_LIMIT}; fix the annotation (the Deployment is left out "
            "of the rollout until then)"
        )
    damaged: list[str] = []
    stamped_key = stamped_annotation(keyset)
    stamped_text = text(stamped_key)
    stamped_at = _time(stamped_text) if stamped_text else None
    if stamped_text and stamped_at is None:
        damaged.append(
            f"deployment {name}: {stamped_key} {shorten(stamped_text, 40)!r} is not an RFC 3339 time; "
            "ignored (Keyturn stamps the target again; removing the annotation clears this)"
        )
    verified_key = verified_annotation(keyset)
    verified_text = text(verified_key)
    verified, _, verified_time = verified_text.strip().partition(" ")
    verified_at = _time(verified_time) if verified_time else None
    if verified_text and (not verified or len(verified) > 64 or verified_at is None):
        damaged.append(
            f"deployment {name}: {verified_key} {shorten(verified_text, 60)!r} is not '<revision> "
            "<time>'; ignored (Keyturn checks the target again; removing the annotation clears this)"
        )
        verified, verified_at = "", None
    spec = getattr(deployment, "spec", None)
    template_meta = getattr(getattr(spec, "template", None), "metadata", None)
    template_annotations = getattr(template_meta, "annotations", None)
    revision = (
        template_annotations.get(revision_annotation(keyset))
        if isinstance(template_annotations, Mapping)
        else None
    )
    status = getattr(deployment, "status", None)
    replicas = getattr(spec, "replicas", None)
    wanted = _count(replicas) if replicas is not None else 1
    updated, total = _count(getattr(status, "updated_replicas", 0)), _count(getattr(status, "replicas", 0))
    available = _count(getattr(status, "available_replicas", 0))
    caught_up = _count(getattr(status, "observed_generation", 0)) >= _count(getattr(meta, "generation", 0))
    complete = (
        status is not None and caught_up and updated >= wanted and total <= updated and available >= updated
    )
    progressing = _condition(status, "Progressing")
    reason = getattr(progressing, "reason", None)
    completed_at = None
    if complete and reason == "NewReplicaSetAvailable":
        last = getattr(progressing, "last_update_time", None)
        completed_at = last if isinstance(last, datetime) else None
    health = text(HEALTH_ANNOTATION).strip()
    return Target(
        name=name,
        role=role,
        order=int(order_text),
        revision=revision if isinstance(revision, str) else None,
        stamped_at=stamped_at,
        complete=complete,
        deadline_exceeded=reason == "ProgressDeadlineExceeded",
        completed_at=completed_at,
        progress=f"{updated}/{wanted} updated, {available} available",
        health_url=health or None,
        verified=verified or None,
        verified_at=verified_at,
        damaged=tuple(damaged),
    )


class Deployments:
    """Every call has a deadline: a hung API server must not hold a keyset's pass (and its emergency)."""

    def __init__(self, api: Any, request_timeout: float = REQUEST_TIMEOUT) -> None:
        self._apps = client.AppsV1Api(api)
        self.request_timeout = request_timeout

    async def targets(self, namespace: str, keyset: str) -> list[Any]:
        """Deployments annotated for this keyset (annotations cannot be selected server-side)."""
        listing = await call(
            self._apps.list_namespaced_deployment, namespace, _request_timeout=self.request_timeout
        )
        return [
            d
            for d in listing.items or ()
            if d.metadata and keyset in keysets_of(d.metadata.annotations or {})
        ]

    async def stamp(self, namespace: str, name: str, keyset: str, revision: str, now: datetime) -> None:
        """One patch: the pod-template revision (which restarts the pods) and when it was set."""
        body = {
            "metadata": {"annotations": {stamped_annotation(keyset): timestamp(now)}},
            "spec": {"template": {"metadata": {"annotations": {revision_annotation(keyset): revision}}}},
        }
        await call(
            self._apps.patch_namespaced_deployment,
            name,
            namespace,
            body,
            _request_timeout=self.request_timeout,
        )

    async def mark_verified(
        self, namespace: str, name: str, keyset: str, revision: str, now: datetime
    ) -> None:
        """Metadata only (no restart): this revision passed the gate, so it is never re-probed."""
        body = {"metadata": {"annotations": {verified_annotation(keyset): f"{revision} {timestamp(now)}"}}}
        await call(
            self._apps.patch_namespaced_deployment,
            name,
            namespace,
            body,
            _request_timeout=self.request_timeout,
        )
