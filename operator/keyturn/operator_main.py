"""Starts kopf with Keyturn's handlers, the metrics endpoint and the health probe."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets

import kopf
from prometheus_client import start_http_server

from keyturn import handlers, logs, rollout
from keyturn.domain.egress import EgressPolicy
from keyturn.domain.reasons import Reason

log = logging.getLogger("keyturn")
EGRESS_ENV = "KEYTURN_EGRESS_ALLOW"  # the same patterns as --egress-allow, comma-separated


def run(
    *,
    namespaces: list[str],
    standalone: bool,
    peering: str | None,
    priority: int | None,
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
    if peering is not None and priority is None:
        priority = secrets.randbelow(1_000_000_000) + 1
    # Exact names only: a kopf namespace glob ("team-*", "!kube-system") needs kopf's scanning.
    handlers.fixed_namespaces = bool(namespaces) and not any(set(ns) & set("*?!,") for ns in namespaces)
    log.info(
        f"keyturn starting; egress allowed to {egress.describe()}", extra={"reason": str(Reason.STARTING)}
    )
    assert handlers.keyset_daemon is not None
    asyncio.run(
        kopf.operator(
            clusterwide=not namespaces,
            namespaces=namespaces,
            standalone=standalone or peering is None,
            peering_name=peering,
            priority=priority,
            liveness_endpoint=f"http://0.0.0.0:{health_port}/healthz" if health_port else None,
        )
    )
    return 0
