"""The only kopf code: kopf watches, the engine decides what runs when.

kopf delivers every watch event of the JwtKeySets and of the workloads that may be targets; each
handler only hands the event to the engine (runtime/engine.py), which drops the echoes of Keyturn's
own writes and wakes the keysets a change concerns. No handler writes anything (but for removing
the finalizer older versions put on a keyset being deleted) and none is a daemon: the passes run
in the engine's bounded pool. Keyturn's Secrets and ConfigMaps are watched by the engine's own
threads (adapters/list_watch.py), not by kopf: see design-decisions.md.
"""

from __future__ import annotations

from typing import Any

import kopf

from keyturn import GROUP, PLURAL, VERSION
from keyturn.runtime.engine import Engine

# Set by operator_main.run before kopf starts: the engine every handler feeds, and whether
# `keyturn run` serves only namespaces named exactly (then kopf's cluster scanning is off).
engine: Engine | None = None
fixed_namespaces: bool = False


def _engine() -> Engine:
    assert engine is not None, "operator_main.run sets the engine before kopf starts"
    return engine


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Keyturn posts its own Events with its own Reasons; kopf's log-to-event echo would leak noise.
    settings.posting.enabled = False
    # No change handlers and no daemons: kopf keeps no state on the objects and adds no finalizer.
    settings.networking.request_timeout = 60
    settings.watching.server_timeout = 300
    # Events of one object arrive in a burst on a cold start; pass the latest one on at once.
    settings.batching.batch_window = 0.01
    # kopf scans the cluster with cluster-scoped list/watch calls: Namespaces (to match namespace
    # globs) and CRDs (to start serving a resource whose CRD appears at runtime). Given exact
    # namespaces it needs neither: it serves those, with the resources that API discovery (open to
    # every authenticated client) shows at startup, so a namespaced operator needs no cluster-scoped
    # permission. The price: a JwtKeySet CRD installed after the start is served after a restart.
    settings.scanning.disabled = fixed_namespaces
    await _engine().start()
    # kopf starts its watches once this handler returns: after a restart's emergencies.
    await _engine().settled()


@kopf.on.cleanup()
async def shutdown(**_: Any) -> None:
    await _engine().stop()


@kopf.on.event(GROUP, VERSION, PLURAL)
async def keyset_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    if body.get("metadata", {}).get("deletionTimestamp"):
        await _engine().release_finalizer(body)
    _engine().keyset_event(type, body)


# Every workload, annotated or not: a workload whose keyset annotation was just removed must leave
# the index, and a label filter would hide exactly that event.
@kopf.on.event("apps", "v1", "deployments")
async def deployment_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    _engine().workload_event(type, {**body, "kind": "Deployment"})


@kopf.on.event("apps", "v1", "statefulsets")
async def statefulset_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    _engine().workload_event(type, {**body, "kind": "StatefulSet"})


@kopf.on.event("apps", "v1", "daemonsets")
async def daemonset_event(type: str | None, body: kopf.Body, **_: Any) -> None:
    _engine().workload_event(type, {**body, "kind": "DaemonSet"})
