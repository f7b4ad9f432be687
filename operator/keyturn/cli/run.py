"""`keyturn run`: the operator itself (operator_main starts kopf; imported only for this command)."""

from __future__ import annotations

import argparse


def cmd_run(args: argparse.Namespace) -> int:
    from keyturn import operator_main  # noqa: PLC0415 - kopf is only imported to run the operator

    lease = None if args.standalone else (args.lease or args.peering)
    return operator_main.run(
        namespaces=args.namespace,
        lease=lease,
        lease_namespace=args.lease_namespace,
        lease_duration=args.lease_duration,
        workers=args.workers,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        log_format=args.log_format,
        verbose=args.verbose,
        egress_allow=[p for group in args.egress_allow or () for p in group],
    )
