"""Play the kubelet for a local process: keep a keyset's Secret and JWKS ConfigMap in directories.

Inside a cluster the kubelet projects the Secret and the `<keyset>-jwks` ConfigMap into the pod
and swaps them atomically when Keyturn rewrites them. A process started on a laptop or by a test
gets the same behaviour from this script, which polls `kubectl get` and lays every change out
with keyturn.client.project (timestamped directory, `..data` symlink renamed over):

    python examples/app/sync.py --namespace default --keyset quickstart \\
        --secret-dir /tmp/kt/secret --jwks-dir /tmp/kt/jwks &
    python examples/app/app.py --secret-dir /tmp/kt/secret --jwks-file /tmp/kt/jwks/jwks.json

Like a volume without `items:`, every key of the Secret is projected (private key material of
every key the Secret holds included), so point --secret-dir at a private directory. The first
sync happens before the script reports `synced` on stdout; it then polls every --interval
seconds until SIGINT/SIGTERM (or exits after one pass with --once).
"""

from __future__ import annotations

import argparse
import base64
import json
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from keyturn.client import project


def kubectl_json(kubectl: Sequence[str], kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    result = subprocess.run(
        [*kubectl, "get", kind, name, "--namespace", namespace, "--output", "json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    if result.returncode != 0:
        if "NotFound" in result.stderr or "not found" in result.stderr:
            return None
        raise RuntimeError(f"kubectl get {kind} {name} failed: {result.stderr.strip()[:500]}")
    value: dict[str, Any] = json.loads(result.stdout)
    return value


def secret_files(obj: dict[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}


def configmap_files(obj: dict[str, Any]) -> dict[str, bytes]:
    files = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    files |= {k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()}
    return files


class Mirror:
    """One object mirrored into one directory; writes only when the content changed."""

    def __init__(self, kind: str, name: str, directory: Path) -> None:
        self.kind, self.name, self.directory = kind, name, directory
        self.last: dict[str, bytes] | None = None

    def sync(self, kubectl: Sequence[str], namespace: str) -> bool:
        obj = kubectl_json(kubectl, self.kind, self.name, namespace)
        if obj is None:
            return False  # like a pod whose volume source is missing: keep what is there
        files = secret_files(obj) if self.kind == "secret" else configmap_files(obj)
        if files != self.last:
            project(self.directory, files)
            self.last = files
            print(f"synced {self.kind}/{self.name} -> {self.directory} ({len(files)} items)", flush=True)
        return True


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="sync.py", description="Mirror a keyset's Secret and JWKS into directories."
    )
    p.add_argument("--keyset", required=True, help="the JwtKeySet's name")
    p.add_argument("--namespace", default="default")
    p.add_argument("--secret", help="Secret name (default: the keyset's name)")
    p.add_argument("--configmap", help="JWKS ConfigMap name (default: <keyset>-jwks)")
    p.add_argument("--secret-dir", type=Path, help="where to project the Secret")
    p.add_argument("--jwks-dir", type=Path, help="where to project the JWKS ConfigMap")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    p.add_argument("--kubectl", default="kubectl", help="kubectl binary")
    p.add_argument("--kubeconfig", help="passed to kubectl")
    p.add_argument("--once", action="store_true", help="sync once and exit")
    args = p.parse_args(argv)
    if args.secret_dir is None and args.jwks_dir is None:
        p.error("give --secret-dir and/or --jwks-dir")
    kubectl = [args.kubectl, *(["--kubeconfig", args.kubeconfig] if args.kubeconfig else [])]
    mirrors = []
    if args.secret_dir is not None:
        mirrors.append(Mirror("secret", args.secret or args.keyset, args.secret_dir))
    if args.jwks_dir is not None:
        mirrors.append(Mirror("configmap", args.configmap or f"{args.keyset}-jwks", args.jwks_dir))

    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    while True:
        try:
            present = [m.sync(kubectl, args.namespace) for m in mirrors]
        except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as exc:
            print(f"sync failed, retrying: {exc}", file=sys.stderr, flush=True)
            present = [False]
        if args.once:
            return 0 if all(present) else 1
        if stop.wait(args.interval):
            return 0


if __name__ == "__main__":
    sys.exit(main())
