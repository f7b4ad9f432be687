"""`make demo`: a local control plane, the CRD, the operator and examples/quickstart.yaml, until Ctrl-C.

Everything runs on 127.0.0.1 and is torn down on exit; the kubeconfig path is printed so a second
terminal can watch the rotation with kubectl.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import localcluster

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "quickstart.yaml"


def say(line: str) -> None:
    print(f"[demo] {line}", flush=True)


def wait_ready(
    cluster: localcluster.Cluster, name: str, operator: subprocess.Popen[bytes], timeout: float
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if operator.poll() is not None:
            raise SystemExit(f"the operator exited with code {operator.returncode}")
        result = cluster.kubectl("get", "jwtkeyset", name, "-o", "json", check=False)
        if result.returncode == 0:
            conditions = json.loads(result.stdout).get("status", {}).get("conditions", [])
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return
        time.sleep(0.5)
    raise SystemExit(f"JwtKeySet {name} did not become Ready within {timeout:.0f}s")


def main() -> int:
    workdir = Path(os.environ.get("KEYTURN_DEMO_DIR", ROOT / ".keyturn" / "demo"))
    with localcluster.LocalCluster(workdir=workdir, log=say, progress=say) as cluster:
        cluster.apply_crds([ROOT / "crds"])
        env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
        say("starting the operator: python -m keyturn run (metrics on :8080, health on :8081)")
        operator = subprocess.Popen(
            [sys.executable, "-m", "keyturn", "run", "--standalone"], env=env, cwd=ROOT
        )
        try:
            print(cluster.kubectl("apply", "-f", str(EXAMPLE)).stdout, end="", flush=True)
            wait_ready(cluster, "quickstart", operator, timeout=60)
            print(cluster.kubectl("get", "jwtkeysets", "-A").stdout, flush=True)
            jwks = cluster.kubectl(
                "get", "configmap", "quickstart-jwks", "-o", "jsonpath={.data.jwks\\.json}"
            )
            say("published JWKS (ConfigMap quickstart-jwks):")
            print(jwks.stdout, flush=True)
            say("the key rotates every 5 minutes. In another terminal:")
            say(f"  export KUBECONFIG={cluster.kubeconfig}")
            say(f"  export PATH={cluster.bin_dir}:$PATH")
            say("  kubectl get jwtkeysets -w            # watch Current KID change")
            say("  kubectl describe jwtkeyset quickstart # Events: the audit trail")
            say("Ctrl-C stops the operator and the control plane.")
            operator.wait()
            return operator.returncode
        except KeyboardInterrupt:
            return 0
        finally:
            if operator.poll() is None:
                operator.send_signal(signal.SIGTERM)
                try:
                    operator.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    operator.kill()


if __name__ == "__main__":
    sys.exit(main())
