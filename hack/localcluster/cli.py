"""The command line: ``up`` runs a cluster until Ctrl-C, ``env`` prints the bin dir."""

from __future__ import annotations

import argparse
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from localcluster.binaries import ensure_binaries
from localcluster.components import by_name
from localcluster.errors import ClusterError
from localcluster.local_cluster import LocalCluster
from localcluster.log import stderr_log

USAGE = """\
A real, throwaway Kubernetes control plane on 127.0.0.1 (etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, KWOK) for Keyturn's tests and demo.

    python hack/localcluster up [--dir .keyturn/cluster] [--crds crds/] [--nodes 3]
    python hack/localcluster up --extra-arg kube-apiserver=--v=4
    python hack/localcluster env
"""


def _extra_args(pairs: Sequence[str]) -> dict[str, list[str]]:
    """``COMPONENT=FLAG`` pairs, grouped by component (a name from the components table)."""
    known = by_name()
    out: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, flag = pair.partition("=")
        if not sep or name not in known:
            raise ClusterError(
                f"--extra-arg {pair!r}: expected COMPONENT=FLAG, COMPONENT one of {', '.join(known)}"
            )
        out.setdefault(name, []).append(flag)
    return out


def _serve(cluster: LocalCluster, args: argparse.Namespace, began: float) -> int:
    """Prints how to use the running cluster, then waits for a signal or a dead component."""
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    if args.crds:
        names = cluster.apply_crds(args.crds)
        stderr_log(f"CRDs established: {', '.join(names) or '(none found)'}")
    print(f"\nkubeconfig: {cluster.kubeconfig}")
    print(f"logs:       {cluster.workdir / 'logs'}")
    print(f"started in  {time.monotonic() - began:.1f}s")
    print(f"\n  export KUBECONFIG={cluster.kubeconfig}\n")
    print("Press Ctrl-C to stop the cluster.", flush=True)
    while not stop.wait(1.0):
        dead = cluster.dead_components()
        if dead:
            for name in dead:
                stderr_log(f"{name} died; end of its log:\n{cluster.tail(name)}")
            return 1
    return 0


def _cmd_up(args: argparse.Namespace) -> int:
    cluster = LocalCluster(
        args.dir,
        keep=args.keep,
        timeout=args.timeout,
        nodes=args.nodes,
        extra_args=_extra_args(args.extra_arg),
    )
    began = time.monotonic()
    try:
        cluster.start()  # an interrupt here unwinds through start(), which cleans up
    except KeyboardInterrupt:
        stderr_log("interrupted")
        return 130
    try:
        return _serve(cluster, args, began)
    finally:
        stderr_log("stopping the cluster...")
        cluster.stop()


def _cmd_env(_args: argparse.Namespace) -> int:
    print(ensure_binaries(stderr_log))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="localcluster", description=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the control plane and keep it running until Ctrl-C")
    up.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="work dir (kubeconfig, certificates, logs, etcd data); default: a fresh temp dir",
    )
    up.add_argument(
        "--crds",
        type=Path,
        action="append",
        default=[],
        help="CRD file or directory to apply once up (repeatable)",
    )
    up.add_argument("--keep", action="store_true", help="leave the work dir behind when stopping")
    up.add_argument("--timeout", type=float, default=120.0, help="start-up deadline in seconds")
    up.add_argument("--nodes", type=int, default=1, help="how many KWOK Nodes to register (default 1)")
    up.add_argument(
        "--extra-arg",
        action="append",
        default=[],
        metavar="COMPONENT=FLAG",
        help="one more flag for a component, e.g. kube-apiserver=--v=4 (repeatable)",
    )
    up.set_defaults(func=_cmd_up)
    env = sub.add_parser("env", help="print the bin dir of the control-plane binaries (built if missing)")
    env.set_defaults(func=_cmd_env)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        rc: int = args.func(args)
    except ClusterError as e:
        stderr_log(f"error: {e}")
        return 1
    return rc
