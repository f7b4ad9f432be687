"""Target workloads (Deployments, StatefulSets, DaemonSets): reading them, restarting them.

Workloads reach Keyturn as plain JSON bodies (the watch's, or a LIST's): `to_target` reads one
totally into a Target, judging "rolled" by the kind's own status; `Workloads` writes the restart
stamp the way each controller rolls it (a pod-template annotation) and records its own writes, so
the watch events they cause wake nothing.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from kubernetes import client

from keyturn.adapters.kube import call
from keyturn.adapters.kube import write as owned_write
from keyturn.domain.annotations import (
    HEALTH_ANNOTATION,
    ORDER_ANNOTATION,
    RELOAD_ANNOTATION,
    ROLE_ANNOTATION,
    keysets_of,
    revision_annotation,
    stamped_annotation,
    verified_annotation,
)
from keyturn.domain.egress import shorten
from keyturn.domain.record import RecordError, parse_timestamp, timestamp
from keyturn.domain.targets import Reload, Role, Target, WorkloadKind

ORDER_LIMIT = 999_999_999
REQUEST_TIMEOUT = 30.0  # seconds, for each list or patch
_ORDER = re.compile(r"^[+-]?[0-9]{1,9}$")


@dataclass(frozen=True)
class KindApi:
    """How one kind is listed and patched through apps/v1."""

    kind: WorkloadKind
    plural: str
    list_all: str
    list_namespaced: str
    patch: str


KINDS: Final[Mapping[WorkloadKind, KindApi]] = {
    WorkloadKind.DEPLOYMENT: KindApi(
        WorkloadKind.DEPLOYMENT,
        "deployments",
        "list_deployment_for_all_namespaces",
        "list_namespaced_deployment",
        "patch_namespaced_deployment",
    ),
    WorkloadKind.STATEFULSET: KindApi(
        WorkloadKind.STATEFULSET,
        "statefulsets",
        "list_stateful_set_for_all_namespaces",
        "list_namespaced_stateful_set",
        "patch_namespaced_stateful_set",
    ),
    WorkloadKind.DAEMONSET: KindApi(
        WorkloadKind.DAEMONSET,
        "daemonsets",
        "list_daemon_set_for_all_namespaces",
        "list_namespaced_daemon_set",
        "patch_namespaced_daemon_set",
    ),
}


class BadTarget(ValueError):
    """A target's annotations or strategy cannot be worked with; the message names it and the fix."""


# ---------------------------------------------------------------------------------- reading JSON
def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _count(value: object) -> int:
    """A replica count from status or spec: anything that is not a sane int reads as 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 31 else 0


def _text(mapping: Mapping[str, Any], key: str) -> str:
    value = mapping.get(key)
    return value if isinstance(value, str) else ""


def _time(text: str) -> datetime | None:
    """An RFC 3339 time as Keyturn writes it, within the record's bounds; None for anything else."""
    try:
        return parse_timestamp(text.strip())
    except RecordError:
        return None


def kind_of(body: Mapping[str, Any]) -> WorkloadKind | None:
    try:
        return WorkloadKind(_text(body, "kind"))
    except ValueError:
        return None


# ---------------------------------------------------------------------------------- the target
def to_target(body: Mapping[str, Any], keyset: str) -> Target:
    """Total over any workload body: a Target, or BadTarget when it cannot be worked with.

    Keyturn's own bookkeeping (`stamped-`, `ready-`) that a person damaged is ignored rather than
    refused, and listed in `Target.damaged`: the target still holds the keys and must still be
    restarted (an emergency cannot skip a signer), and Keyturn rewrites both annotations itself.
    """
    kind = kind_of(body) or WorkloadKind.DEPLOYMENT
    meta = _map(body.get("metadata"))
    name = _text(meta, "name")
    if not name:
        raise BadTarget(f"a {kind} without a name cannot be a target")
    label = f"{kind.lower()} {name}"
    annotations = _map(meta.get("annotations"))
    role = _choice(Role, _text(annotations, ROLE_ANNOTATION).strip() or "both", label, ROLE_ANNOTATION)
    reload = _choice(
        Reload, _text(annotations, RELOAD_ANNOTATION).strip() or "restart", label, RELOAD_ANNOTATION
    )
    order_text = _text(annotations, ORDER_ANNOTATION).strip() or "0"
    if not _ORDER.match(order_text):
        raise BadTarget(
            f"{label}: {ORDER_ANNOTATION} {shorten(order_text, 40)!r} is not a whole number between "
            f"-{ORDER_LIMIT} and {ORDER_LIMIT}; fix the annotation (it is left out of the rollout until then)"
        )
    spec, status = _map(body.get("spec")), _map(body.get("status"))
    strategy = _map(spec.get("updateStrategy"))
    if (
        reload is Reload.RESTART
        and kind is not WorkloadKind.DEPLOYMENT
        and strategy.get("type") == "OnDelete"
    ):
        raise BadTarget(
            f"{label}: updateStrategy OnDelete never restarts its Pods when Keyturn changes the pod "
            f"template; use RollingUpdate, or {RELOAD_ANNOTATION}: none if it re-reads its files"
        )
    damaged: list[str] = []
    stamped_key = stamped_annotation(keyset)
    stamped_text = _text(annotations, stamped_key)
    stamped_at = _time(stamped_text) if stamped_text else None
    if stamped_text and stamped_at is None:
        damaged.append(
            f"{label}: {stamped_key} {shorten(stamped_text, 40)!r} is not an RFC 3339 time; ignored "
            "(Keyturn stamps the target again; removing the annotation clears this)"
        )
    verified_key = verified_annotation(keyset)
    verified_text = _text(annotations, verified_key)
    verified, _, verified_time = verified_text.strip().partition(" ")
    verified_at = _time(verified_time) if verified_time else None
    if verified_text and (not verified or len(verified) > 64 or verified_at is None):
        damaged.append(
            f"{label}: {verified_key} {shorten(verified_text, 60)!r} is not '<revision> <time>'; ignored "
            "(Keyturn checks the target again; removing the annotation clears this)"
        )
        verified, verified_at = "", None
    template_annotations = _map(_map(_map(spec.get("template")).get("metadata")).get("annotations"))
    revision = template_annotations.get(revision_annotation(keyset))
    caught_up = _count(status.get("observedGeneration")) >= _count(meta.get("generation"))
    complete, progress, deadline_exceeded = _rolled(kind, spec, status, caught_up)
    health = _text(annotations, HEALTH_ANNOTATION).strip()
    return Target(
        name=name,
        role=role,
        order=int(order_text),
        revision=revision if isinstance(revision, str) else None,
        stamped_at=stamped_at,
        complete=bool(status) and caught_up and complete,
        deadline_exceeded=deadline_exceeded,
        progress=progress,
        health_url=health or None,
        verified=verified or None,
        verified_at=verified_at,
        damaged=tuple(damaged),
        kind=kind,
        reload=reload,
    )


def _choice(kind: type[Role] | type[Reload], text: str, label: str, annotation: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        values = [str(v) for v in kind]
        allowed = f"{', '.join(values[:-1])} or {values[-1]}"
        raise BadTarget(
            f"{label}: {annotation} {shorten(text, 40)!r} is not {allowed}; fix the annotation "
            "(it is left out of the rollout until then)"
        ) from None


def _rolled(
    kind: WorkloadKind, spec: Mapping[str, Any], status: Mapping[str, Any], caught_up: bool
) -> tuple[bool, str, bool]:
    """Whether the controller finished rolling the current template, judged by the kind's own status:
    (complete, progress for messages, the controller gave up)."""
    replicas = spec.get("replicas")
    wanted = _count(replicas) if replicas is not None else 1
    if kind is WorkloadKind.STATEFULSET:
        # Only ordinals >= partition take the new template; the others stay on the old revision.
        partition = _count(_map(_map(spec.get("updateStrategy")).get("rollingUpdate")).get("partition"))
        need = max(0, wanted - partition)
        updated, ready = _count(status.get("updatedReplicas")), _count(status.get("readyReplicas"))
        same = partition > 0 or status.get("currentRevision") == status.get("updateRevision")
        done = updated >= need and ready >= wanted and _count(status.get("replicas")) <= wanted and same
        return done, f"{updated}/{need} updated, {ready} ready", False
    if kind is WorkloadKind.DAEMONSET:
        desired = _count(status.get("desiredNumberScheduled"))
        updated = _count(status.get("updatedNumberScheduled"))
        available = _count(status.get("numberAvailable"))
        done = updated >= desired and available >= desired and _count(status.get("numberUnavailable")) == 0
        return done, f"{updated}/{desired} nodes updated, {available} available", False
    updated, total = _count(status.get("updatedReplicas")), _count(status.get("replicas"))
    available = _count(status.get("availableReplicas"))
    progressing = next(
        (
            _map(c)
            for c in (status.get("conditions") or ())
            if isinstance(c, Mapping) and c.get("type") == "Progressing"
        ),
        {},
    )
    done = updated >= wanted and total <= updated and available >= updated
    exceeded = progressing.get("reason") == "ProgressDeadlineExceeded"
    return done, f"{updated}/{wanted} updated, {available} available", exceeded


def targeted_keysets(body: Mapping[str, Any]) -> list[str]:
    """The keysets a workload body names in its keyset annotation."""
    annotations = _map(_map(body.get("metadata")).get("annotations"))
    return keysets_of({k: v for k, v in annotations.items() if isinstance(v, str)})


# ---------------------------------------------------------------------------------- the API
class Workloads:
    """Every call has a deadline: a hung API server must not hold a keyset's pass (and its emergency)."""

    def __init__(self, api: Any, request_timeout: float = REQUEST_TIMEOUT) -> None:
        self._api = api
        self.request_timeout = request_timeout

    @functools.cached_property
    def _apps(self) -> Any:
        """Made at first use: the client's apps module takes about 0.3 s to import, and a restart's
        emergencies, which touch no workload, need not wait for it (Engine imports it in a thread)."""
        return client.AppsV1Api(self._api)

    def load(self) -> None:
        """Import the client's apps module now (blocking: call it in a thread)."""
        self._apps  # noqa: B018 - the cached property's first read is the point

    async def list(self, kind: WorkloadKind, namespace: str | None) -> list[dict[str, Any]]:
        """Every workload of a kind (in a namespace, or all), as JSON bodies with their kind set."""
        api = KINDS[kind]
        method = getattr(self._apps, api.list_all if namespace is None else api.list_namespaced)
        args = () if namespace is None else (namespace,)
        response = await call(method, *args, _preload_content=False, _request_timeout=self.request_timeout)
        items = json.loads(response.data).get("items") or []
        return [{**item, "kind": str(kind)} for item in items if isinstance(item, dict)]

    async def stamp(self, target: Target, namespace: str, keyset: str, revision: str, now: datetime) -> None:
        """One patch: the pod-template revision (the controller rolls the Pods) and when it was set."""
        body = {
            "metadata": {"annotations": {stamped_annotation(keyset): timestamp(now)}},
            "spec": {"template": {"metadata": {"annotations": {revision_annotation(keyset): revision}}}},
        }
        await self._patch(target, namespace, body)

    async def mark_verified(
        self, target: Target, namespace: str, keyset: str, revision: str, now: datetime
    ) -> None:
        """Metadata only (no restart): this revision passed the gate, so it is never re-probed."""
        body = {"metadata": {"annotations": {verified_annotation(keyset): f"{revision} {timestamp(now)}"}}}
        await self._patch(target, namespace, body)

    async def _patch(self, target: Target, namespace: str, body: Mapping[str, Any]) -> None:
        method = getattr(self._apps, KINDS[target.kind].patch)
        await owned_write(
            str(target.kind),
            namespace,
            target.name,
            method,
            target.name,
            namespace,
            body,
            _request_timeout=self.request_timeout,
        )
