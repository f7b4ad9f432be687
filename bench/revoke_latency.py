"""Time to revoke: from the status.emergency patch to the moment the JWKS ConfigMap no longer holds
the kid AND the Secret signs with a new key, with 100 other JwtKeySets present.

    .venv/bin/python bench/revoke_latency.py [--others 100] [--requests 20]
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import time
from typing import Any

from kubernetes import client

from common import environment, report, say, wait
from keyturn import GROUP, PLURAL, VERSION

NS = "bench"
SLOW = {"interval": "30d", "publishAhead": "1h", "gracePeriod": "7d", "retention": "14d"}


def keyset(name: str, algorithm: str, key_size: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"algorithm": algorithm, "rotation": SLOW}
    if key_size:
        spec["keySize"] = key_size
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "JwtKeySet", "metadata": {"name": name}, "spec": spec}


def ready(custom: client.CustomObjectsApi, name: str) -> dict[str, Any] | None:
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)
    assert isinstance(obj, dict)
    status: dict[str, Any] = obj.get("status") or {}
    ok = any(c["type"] == "Ready" and c["status"] == "True" for c in status.get("conditions") or ())
    return status if ok and status.get("nextKid") else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--others", type=int, default=100)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--algorithm", default="RS256", help="algorithm of the revoked keyset")
    parser.add_argument("--key-size", type=int, default=None, help="RSA key size of the revoked keyset")
    args = parser.parse_args()
    with environment(NS) as (_cluster, api):
        custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
        start = time.monotonic()
        for i in range(args.others):
            custom.create_namespaced_custom_object(
                GROUP, VERSION, NS, PLURAL, keyset(f"other-{i:03d}", "ES256")
            )
        custom.create_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, keyset("target", args.algorithm, args.key_size)
        )
        for i in range(args.others):
            wait(
                functools.partial(ready, custom, f"other-{i:03d}"), 300, f"other-{i:03d} Ready", interval=0.05
            )
        wait(lambda: ready(custom, "target"), 60, "target Ready", interval=0.05)
        say(f"{args.others + 1} keysets Ready in {time.monotonic() - start:.1f}s")

        def kid_gone(old: str) -> bool:
            cm = core.read_namespaced_config_map("target-jwks", NS)
            jwks = json.loads((cm.data or {})["jwks.json"])
            if any(k["kid"] == old for k in jwks["keys"]):
                return False
            secret = core.read_namespaced_secret("target", NS)
            signing = base64.b64decode((secret.data or {})["JWT_KID"]).decode()
            return signing != old

        samples: list[float] = []
        for n in range(args.requests):
            status = wait(lambda: ready(custom, "target"), 30, "target Ready", interval=0.01)
            old = status["currentKid"]
            patch = [
                {
                    "op": "add",
                    "path": "/status/emergency",
                    "value": {"requestId": f"bench-{n}-{time.time_ns()}", "reason": "key_compromise"},
                }
            ]
            t0 = time.perf_counter()
            custom.patch_namespaced_custom_object_status(  # a JSON patch replaces status.emergency as a whole
                GROUP, VERSION, NS, PLURAL, "target", patch, _content_type="application/json-patch+json"
            )
            wait(functools.partial(kid_gone, old), 10, "revocation")
            samples.append((time.perf_counter() - t0) * 1000)
            say(f"request {n + 1}: {samples[-1]:.0f} ms")
        report(
            "time-to-revoke",
            samples,
            {
                "other_keysets": args.others,
                "target_algorithm": args.algorithm,
                "target_key_size": args.key_size,
            },
        )


if __name__ == "__main__":
    main()
