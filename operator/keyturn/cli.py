"""`keyturn` and `kubectl keyturn`: run the operator, and operate keysets from a terminal."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from keyturn import __version__


def _run(args: argparse.Namespace) -> int:
    from keyturn import operator_main  # noqa: PLC0415 - kopf is only imported to run the operator

    return operator_main.run(
        namespaces=args.namespace,
        standalone=args.standalone,
        peering=args.peering,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        log_format=args.log_format,
        verbose=args.verbose,
    )


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="keyturn",
        description="Keyturn rotates JWT signing keys declared as JwtKeySet resources.",
    )
    top.add_argument("--version", action="version", version=f"keyturn {__version__}")
    sub = top.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run the operator (uses in-cluster credentials or KUBECONFIG)")
    run.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable; default: all namespaces)",
    )
    run.add_argument("--standalone", action="store_true", help="no peering with other replicas")
    run.add_argument("--peering", default=None, help="kopf peering object name (for several replicas)")
    run.add_argument("--metrics-port", type=int, default=8080, help="port of /metrics (0: off)")
    run.add_argument("--health-port", type=int, default=8081, help="port of /healthz (0: off)")
    run.add_argument("--log-format", choices=("text", "json"), default="text")
    run.add_argument("-v", "--verbose", action="store_true")
    run.set_defaults(func=_run)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not getattr(args, "func", None):
        parser().print_help(sys.stderr)
        return 2
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
