"""Starts the engine, kopf with Keyturn's handlers, the metrics endpoint and the health probe."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path

import kopf
from prometheus_client import start_http_server

from keyturn import handlers, logs, rollout
from keyturn.adapters.kube import api_client
from keyturn.domain.egress import EgressPolicy
from keyturn.domain.reasons import Reason
from keyturn.runtime.engine import Election, Engine, identity
from keyturn.runtime.leader import LeaseTiming

log = logging.getLogger("keyturn")
EGRESS_ENV = "KEYTURN_EGRESS_ALLOW"  # the same patterns as --egress-allow, comma-separated
SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def run(
    *,
    namespaces: list[str],
    lease: str | None,
    lease_namespace: str | None,
    lease_duration: float,
    workers: int,
    metrics_port: int,
    health_port: int,
    log_format: str,
    verbose: bool,
    egress_allow: list[str] | None = None,
) -> int:
    logs.setup(log_format, verbose)
    patterns = egress_allow or [os.environ.get(EGRESS_ENV, "")]
    try:
        egress = EgressPolicy.from_patterns(patterns)
    except ValueError as exc:
        log.error(f"{EGRESS_ENV}: {exc}", extra={"reason": "InvalidArguments"})
        return 2
    rollout.configure_egress(egress)
    if metrics_port:
        start_http_server(metrics_port)
    # Exact names only: a kopf namespace glob ("team-*", "!kube-system") needs kopf's scanning.
    exact = bool(namespaces) and not any(set(ns) & set("*?!,") for ns in namespaces)
    handlers.fixed_namespaces = exact
    election = None
    if lease:
        where = lease_namespace or _own_namespace() or (namespaces[0] if exact else "default")
        election = Election(where, lease, identity(), LeaseTiming.for_duration(lease_duration))
    handlers.engine = Engine(
        api_client(),
        namespaces=namespaces if exact else [],
        workers=workers,
        election=election,
        egress=egress,
        early_look=exact or not namespaces,
        look_now=True,  # its first list of the keysets runs while the rest starts up
    )
    mode = f"leader election on Lease {election.namespace}/{election.name}" if election else "standalone"
    log.info(
        f"keyturn starting ({mode}, {workers} workers); egress allowed to {egress.describe()}",
        extra={"reason": str(Reason.STARTING)},
    )
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=True,  # who acts is the Lease's business (runtime/leader.py), not kopf's peering
            liveness_endpoint=f"http://0.0.0.0:{health_port}/healthz" if health_port else None,
        )
    )
    return 0


def _own_namespace() -> str | None:
    """The Pod's namespace: POD_NAMESPACE, else the service account's namespace file."""
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return SA_NAMESPACE.read_text().strip() or None
    except OSError:
        return None
