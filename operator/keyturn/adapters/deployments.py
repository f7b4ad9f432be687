"""Target Deployments: discovery by annotation, their rollout state, and the restart stamp."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from kubernetes import client

from keyturn.adapters.kube import call
from keyturn.domain.record import parse_timestamp, timestamp
from keyturn.domain.targets import Role, Target, revision_annotation, stamped_annotation, verified_annotation

KEYSET_ANNOTATION = "keyturn.dev/keyset"
ROLE_ANNOTATION = "keyturn.dev/role"
HEALTH_ANNOTATION = "keyturn.dev/health-url"
ORDER_ANNOTATION = "keyturn.dev/order"


class BadTarget(ValueError):
    """A target's annotations cannot be read; the message names the Deployment and the fix."""


def keysets_of(annotations: Mapping[str, str]) -> list[str]:
    return [k.strip() for k in annotations.get(KEYSET_ANNOTATION, "").split(",") if k.strip()]


def _condition(deployment: Any, kind: str) -> Any:
    return next((c for c in (deployment.status.conditions or ()) if c.type == kind), None)


def to_target(deployment: Any, keyset: str) -> Target:
    meta = deployment.metadata
    annotations = meta.annotations or {}
    role_text = annotations.get(ROLE_ANNOTATION, "both").strip() or "both"
    try:
        role = Role(role_text)
    except ValueError as exc:
        raise BadTarget(
            f"deployment {meta.name}: {ROLE_ANNOTATION} {role_text!r} is not verifier, signer or both"
        ) from exc
    order_text = annotations.get(ORDER_ANNOTATION, "0").strip() or "0"
    try:
        order = int(order_text)
    except ValueError as exc:
        raise BadTarget(f"deployment {meta.name}: {ORDER_ANNOTATION} {order_text!r} is not a number") from exc
    template_annotations = (
        (deployment.spec.template.metadata.annotations or {}) if deployment.spec.template.metadata else {}
    )
    stamped = annotations.get(stamped_annotation(keyset))
    verified, _, verified_at = annotations.get(verified_annotation(keyset), "").partition(" ")
    status = deployment.status
    wanted = deployment.spec.replicas if deployment.spec.replicas is not None else 1
    updated, total = status.updated_replicas or 0, status.replicas or 0
    available = status.available_replicas or 0
    caught_up = (status.observed_generation or 0) >= (meta.generation or 0)
    complete = caught_up and updated >= wanted and total <= updated and available >= updated
    progressing = _condition(deployment, "Progressing")
    exceeded = bool(progressing and progressing.reason == "ProgressDeadlineExceeded")
    completed_at = None
    if complete and progressing is not None and progressing.reason == "NewReplicaSetAvailable":
        completed_at = progressing.last_update_time
    return Target(
        name=meta.name,
        role=role,
        order=order,
        revision=template_annotations.get(revision_annotation(keyset)),
        stamped_at=parse_timestamp(stamped) if stamped else None,
        complete=complete,
        deadline_exceeded=exceeded,
        completed_at=completed_at,
        progress=f"{updated}/{wanted} updated, {available} available",
        health_url=annotations.get(HEALTH_ANNOTATION) or None,
        verified=verified or None,
        verified_at=parse_timestamp(verified_at) if verified_at else None,
    )


class Deployments:
    def __init__(self, api: Any) -> None:
        self._apps = client.AppsV1Api(api)

    async def targets(self, namespace: str, keyset: str) -> list[Any]:
        """Deployments annotated for this keyset (annotations cannot be selected server-side)."""
        listing = await call(self._apps.list_namespaced_deployment, namespace)
        return [d for d in listing.items if d.metadata and keyset in keysets_of(d.metadata.annotations or {})]

    async def stamp(self, namespace: str, name: str, keyset: str, revision: str, now: datetime) -> None:
        """One patch: the pod-template revision (which restarts the pods) and when it was set."""
        body = {
            "metadata": {"annotations": {stamped_annotation(keyset): timestamp(now)}},
            "spec": {"template": {"metadata": {"annotations": {revision_annotation(keyset): revision}}}},
        }
        await call(self._apps.patch_namespaced_deployment, name, namespace, body)

    async def mark_verified(
        self, namespace: str, name: str, keyset: str, revision: str, now: datetime
    ) -> None:
        """Metadata only (no restart): this revision passed the gate, so it is never re-probed."""
        body = {"metadata": {"annotations": {verified_annotation(keyset): f"{revision} {timestamp(now)}"}}}
        await call(self._apps.patch_namespaced_deployment, name, namespace, body)
