"""The only kopf code: one daemon per JwtKeySet that reconciles, then sleeps until something is due.

Watch events (the keyset, its Secret and ConfigMap, annotated Deployments) only wake the daemon;
every decision is taken by the executor from a fresh read, so a lost or duplicated event is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from datetime import UTC, datetime
from typing import Any

import kopf

from keyturn import GROUP, PLURAL, VERSION, metrics
from keyturn.adapters.kube import Conflict, api_client
from keyturn.domain.annotations import FINALIZER, KEYSET_ANNOTATION, KEYSET_LABEL, MANAGED_BY, keysets_of
from keyturn.domain.reasons import Reason
from keyturn.executor import Executor
from keyturn.executor.issuers import IssuerIndex, issuer_of

log = logging.getLogger("keyturn")

_WAKERS: dict[tuple[str, str], asyncio.Event] = {}
# spec.jwks.issuer of every keyset seen, so that a second claim of one issuer is Stalled.
ISSUERS = IssuerIndex()
MAX_BACKOFF = 300.0

# True when `keyturn run` serves only namespaces named exactly by --namespace; operator_main.run sets
# it before kopf starts, and configure() then turns kopf's cluster scanning off.
fixed_namespaces: bool = False


def _waker(namespace: str, name: str) -> asyncio.Event:
    return _WAKERS.setdefault((namespace, name), asyncio.Event())


def wake(namespace: str | None, name: str | None) -> None:
    if namespace and name:
        _waker(namespace, name).set()


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    # Keyturn posts its own Events with its own Reasons; kopf's log-to-event echo would leak noise.
    settings.posting.enabled = False
    selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    settings.watching.label_selectors["v1", "secrets"] = selector
    settings.watching.label_selectors["v1", "configmaps"] = selector
    settings.networking.request_timeout = 60
    settings.watching.server_timeout = 300
    # kopf scans the cluster with cluster-scoped list/watch calls: Namespaces (to match namespace
    # globs) and CRDs (to start serving a resource whose CRD appears at runtime). Given exact
    # namespaces it needs neither: it serves those, with the resources that API discovery (open to
    # every authenticated client) shows at startup, so a namespaced operator needs no cluster-scoped
    # permission. The price: a JwtKeySet CRD installed after the start is served after a restart.
    settings.scanning.disabled = fixed_namespaces
    # Every daemon gets this memo (kopf copies it shallowly).
    memo.executor = Executor.from_api(api_client(), issuers=ISSUERS)


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=30.0)
async def keyset_daemon(
    stopped: kopf.DaemonStopped, namespace: str | None, name: str, memo: kopf.Memo, **_: Any
) -> None:
    assert namespace is not None  # JwtKeySet is namespaced
    executor: Executor = memo.executor
    waker = _waker(namespace, name)
    backoff = 1.0

    async def stop_signal() -> None:
        await stopped.wait()

    stopping = asyncio.ensure_future(stop_signal())
    try:
        while not stopped:
            waker.clear()
            try:
                outcome = await executor.reconcile(namespace, name)
                backoff = 1.0
                delay = _seconds_until(outcome.wake_at)
            except Conflict as exc:
                log.info(
                    "%s",
                    exc,
                    extra={"namespace": namespace, "keyset": name, "reason": str(Reason.WRITE_CONFLICT)},
                )
                delay = 0.05
            except Exception as exc:  # any failure: say so in status, back off, never crash the daemon
                delay = backoff * (1 + random.random() / 4)  # noqa: S311 - jitter, not crypto
                backoff = min(backoff * 2, MAX_BACKOFF)
                try:
                    await executor.report_failure(namespace, name, exc)
                except Exception as report_exc:  # the API may be what failed: the log still tells
                    log.warning(
                        "could not report the failure in status: %s",
                        type(report_exc).__name__,
                        extra={"namespace": namespace, "keyset": name, "reason": str(Reason.RECONCILE_ERROR)},
                    )
            woken = asyncio.ensure_future(waker.wait())
            await asyncio.wait({woken, stopping}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
            woken.cancel()
    finally:
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await stopping
        _WAKERS.pop((namespace, name), None)
        # Paused by a peer, deleted, or shutting down: stop exporting this keyset's series, or a
        # standby replica would keep reporting key ages that the active one has moved past.
        metrics.forget(namespace, name)


def _seconds_until(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


@kopf.on.event(GROUP, VERSION, PLURAL)
async def keyset_event(
    namespace: str | None, name: str, type: str | None, spec: kopf.Spec, meta: kopf.Meta, **_: Any
) -> None:
    if namespace:
        if type == "DELETED":
            rivals = ISSUERS.forget(namespace, name)
        else:
            created = str(meta.get("creationTimestamp") or "")
            rivals = ISSUERS.update(namespace, name, issuer_of(spec), created)
        for other_namespace, other in rivals:  # a claim changed: they may hold, or lose, the issuer
            wake(other_namespace, other)
    wake(namespace, name)


@kopf.on.event("v1", "secrets", labels=MANAGED_BY)
async def secret_event(namespace: str | None, labels: kopf.Labels, **_: Any) -> None:
    wake(namespace, labels.get(KEYSET_LABEL))


@kopf.on.event("v1", "configmaps", labels=MANAGED_BY)
async def configmap_event(namespace: str | None, labels: kopf.Labels, **_: Any) -> None:
    wake(namespace, labels.get(KEYSET_LABEL))


@kopf.on.event("apps", "v1", "deployments", annotations={KEYSET_ANNOTATION: kopf.PRESENT})
async def deployment_event(namespace: str | None, annotations: kopf.Annotations, **_: Any) -> None:
    for keyset in keysets_of(annotations):
        wake(namespace, keyset)
