"""Time to revoke while something around the keyset is broken (the robust-core promise).

For each fault, `--per-fault` keysets are created and made Ready, the fault is injected through the
public API, and once the keyset shows it an emergency is patched into status. Measured: from the
patch until the JWKS ConfigMap no longer holds the kid and the Secret's JWT_KID names another key.

    .venv/bin/python bench/revoke_under_faults.py [--per-fault 5] [--faults none,invalid-spec,...]
"""

from __future__ import annotations

import argparse
import base64
import functools
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from kubernetes import client

from common import environment, percentile, say, wait
from keyturn import GROUP, PLURAL, VERSION

NS = "bench"
SLOW = {"interval": "30d", "publishAhead": "1h", "gracePeriod": "7d", "retention": "14d"}
Api = tuple[client.CustomObjectsApi, client.CoreV1Api, client.AppsV1Api]


def _patch_spec(changes: dict[str, Any]) -> Callable[[Api, str], None]:
    def inject(apis: Api, name: str) -> None:
        apis[0].patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name, {"spec": changes})

    return inject


def _foreign_jwks(apis: Api, name: str) -> None:
    cm = apis[1].read_namespaced_config_map(f"{name}-jwks", NS)
    assert cm.metadata is not None
    cm.metadata.labels = None
    cm.data = {"jwks.json": '{"keys": []}'}
    apis[1].replace_namespaced_config_map(f"{name}-jwks", NS, cm)


def _binary_item(apis: Api, name: str) -> None:
    secret = apis[1].read_namespaced_secret(name, NS)
    secret.data = {**(secret.data or {}), "blob": base64.b64encode(b"\xff\xfe\x00").decode()}
    apis[1].replace_namespaced_secret(name, NS, secret)


def _bad_targets(apis: Api, name: str) -> None:
    bad = {
        "stamped": {f"keyturn.dev/stamped-{name}": "yesterday"},
        "role": {"keyturn.dev/role": "printer"},
        "health": {"keyturn.dev/health-url": "http://" + "a" * 70 + ".example/health"},
    }
    for suffix, extra in bad.items():
        labels = {"app": f"{name}-{suffix}"}
        apis[2].create_namespaced_deployment(
            NS,
            client.V1Deployment(
                metadata=client.V1ObjectMeta(
                    name=f"{name}-{suffix}", annotations={"keyturn.dev/keyset": name, **extra}
                ),
                spec=client.V1DeploymentSpec(
                    replicas=1,
                    selector=client.V1LabelSelector(match_labels=labels),
                    template=client.V1PodTemplateSpec(
                        metadata=client.V1ObjectMeta(labels=labels),
                        spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="x")]),
                    ),
                ),
            ),
        )


# fault -> (injection, the condition (type, reason) that shows it; None: nothing to wait for)
FAULTS: dict[str, tuple[Callable[[Api, str], None] | None, tuple[str, str] | None]] = {
    "none": (None, None),
    "invalid-spec": (_patch_spec({"rotation": {"timeZone": "America"}}), ("Stalled", "InvalidSpec")),
    "timing-rule": (_patch_spec({"tokens": {"maxLifetime": "30d"}}), ("Stalled", "GracePeriodTooShort")),
    "foreign-jwks": (_foreign_jwks, ("Stalled", "JwksConflict")),
    "binary-secret-item": (_binary_item, ("Stalled", "SecretConflict")),
    "bad-targets": (_bad_targets, ("Degraded", "BadTarget")),
}


def status_of(custom: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)
    assert isinstance(obj, dict)
    status: dict[str, Any] = obj.get("status") or {}
    return status


def shows(
    custom: client.CustomObjectsApi, name: str, condition: tuple[str, str] | None
) -> dict[str, Any] | None:
    status = status_of(custom, name)
    conditions = {c["type"]: c for c in status.get("conditions") or ()}
    if condition is None:
        ok = conditions.get("Ready", {}).get("status") == "True"
    else:
        found = conditions.get(condition[0], {})
        ok = found.get("status") == "True" and found.get("reason") == condition[1]
    return status if ok and status.get("nextKid") else None


def kid_gone(core: client.CoreV1Api, name: str, old: str) -> bool:
    cm = core.read_namespaced_config_map(f"{name}-jwks", NS)
    try:
        listed = [k["kid"] for k in json.loads((cm.data or {})["jwks.json"])["keys"]]
    except (KeyError, ValueError):
        listed = []
    if old in listed:
        return False
    secret = core.read_namespaced_secret(name, NS)
    signing = base64.b64decode((secret.data or {})["JWT_KID"]).decode()
    return signing != old


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per-fault", type=int, default=5)
    parser.add_argument("--faults", default=",".join(FAULTS), help=f"comma-separated, of {', '.join(FAULTS)}")
    args = parser.parse_args()
    chosen = [f.strip() for f in args.faults.split(",") if f.strip()]
    with environment(NS) as (_cluster, api):
        apis: Api = (client.CustomObjectsApi(api), client.CoreV1Api(api), client.AppsV1Api(api))
        custom, core = apis[0], apis[1]
        names = {fault: [f"{fault}-{i}" for i in range(args.per_fault)] for fault in chosen}
        for fault_names in names.values():
            for name in fault_names:
                body = {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "JwtKeySet",
                    "metadata": {"name": name},
                    "spec": {"algorithm": "ES256", "rotation": SLOW},
                }
                custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, body)
        for fault, fault_names in names.items():
            inject, condition = FAULTS[fault]
            for name in fault_names:
                wait(functools.partial(shows, custom, name, None), 120, f"{name} Ready", interval=0.05)
                if inject is not None:
                    inject(apis, name)
        results: dict[str, Any] = {}
        for fault, fault_names in names.items():
            condition = FAULTS[fault][1]
            samples: list[float] = []
            for n, name in enumerate(fault_names):
                status = wait(
                    functools.partial(shows, custom, name, condition),
                    60,
                    f"{name} shows {condition}",
                    interval=0.05,
                )
                old = status["currentKid"]
                patch = [
                    {"op": "add", "path": "/status/emergency", "value": {"requestId": f"bench-{fault}-{n}"}}
                ]
                t0 = time.perf_counter()
                custom.patch_namespaced_custom_object_status(
                    GROUP, VERSION, NS, PLURAL, name, patch, _content_type="application/json-patch+json"
                )
                wait(functools.partial(kid_gone, core, name, old), 10, f"{name}: revocation")
                samples.append((time.perf_counter() - t0) * 1000)
            say(f"{fault}: " + ", ".join(f"{s:.0f} ms" for s in samples))
            results[fault] = {
                "n": len(samples),
                "p50_ms": round(statistics.median(samples), 1),
                "p99_ms": round(percentile(samples, 99), 1),
                "max_ms": round(max(samples), 1),
            }
        print(json.dumps({"benchmark": "time-to-revoke-under-faults", "faults": results}, indent=2))


if __name__ == "__main__":
    main()
