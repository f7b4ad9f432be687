"""Overhead Keyturn adds to a rolling reload of N targets: total time minus the targets' own rollouts.

A manual rotation restarts every target (role both) one at a time, pauseBetween 0s. Each target's
own rollout time is measured from the first watch event showing Keyturn's new pod-template
revision to the first event showing the Deployment complete; the total runs from the rotate
annotation to the last target complete. Overhead per target = (total - sum of own times) / N.

    .venv/bin/python bench/rollout_overhead.py [--targets 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import threading
import time
from typing import Any

from kubernetes import client, watch

from common import environment, report, say, wait
from keyturn import GROUP, PLURAL, VERSION

NS = "bench"
REV = "keyturn.dev/rev-keys"


def deployment(name: str) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, annotations={"keyturn.dev/keyset": "keys"}),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(
                    containers=[client.V1Container(name="app", image="registry.example/app:1")]
                ),
            ),
        ),
    )


def complete(dep: Any) -> bool:
    status, spec = dep.status, dep.spec
    return bool(
        (status.observed_generation or 0) >= (dep.metadata.generation or 0)
        and (status.updated_replicas or 0) == spec.replicas
        and (status.available_replicas or 0) == spec.replicas
        and (status.replicas or 0) == spec.replicas
    )


def revision(dep: Any) -> str | None:
    annotations = dep.spec.template.metadata.annotations or {}
    value: str | None = annotations.get(REV)
    return value


def observe(
    apps: client.AppsV1Api,
    names: list[str],
    old: dict[str, str | None],
    out: dict[str, list[float]],
    stop: threading.Event,
) -> None:
    """Records, per Deployment, when its new revision appeared and when it completed."""
    stream = watch.Watch()
    for event in stream.stream(apps.list_namespaced_deployment, NS, timeout_seconds=300):
        dep = event["object"]
        name = dep.metadata.name
        if name not in names:
            continue
        now = time.perf_counter()
        marks = out.setdefault(name, [])
        if not marks and revision(dep) != old[name]:
            marks.append(now)
        if len(marks) == 1 and revision(dep) != old[name] and complete(dep):
            marks.append(now)
        if stop.is_set() or all(len(out.get(n, [])) == 2 for n in names):
            stream.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--targets", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with environment(NS) as (_cluster, api):
        custom, apps = client.CustomObjectsApi(api), client.AppsV1Api(api)
        names = [f"target-{i:02d}" for i in range(args.targets)]
        spec = {
            "rotation": {"interval": "30d", "publishAhead": "0s", "gracePeriod": "7d", "retention": "14d"},
            "rollout": {"timeout": "2m", "pauseBetween": "0s"},
        }
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            NS,
            PLURAL,
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "JwtKeySet",
                "metadata": {"name": "keys"},
                "spec": spec,
            },
        )
        for name in names:
            apps.create_namespaced_deployment(NS, deployment(name))

        def settled() -> bool:
            obj: Any = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "keys")
            status = obj.get("status") or {}
            targets = (status.get("rollout") or {}).get("targets") or []
            return len(targets) == len(names) and all(t["state"] == "Ready" for t in targets)

        wait(settled, 300, "first rollout", interval=0.2)
        per_target_overhead: list[float] = []
        for n in range(args.rounds):
            deps = {d.metadata.name: d for d in apps.list_namespaced_deployment(NS).items if d.metadata}
            old = {name: revision(deps[name]) for name in names}
            marks: dict[str, list[float]] = {}
            stop = threading.Event()
            watcher = threading.Thread(target=observe, args=(apps, names, old, marks, stop), daemon=True)
            watcher.start()
            time.sleep(0.5)  # let the watch establish before the clock starts (not a synchronisation)
            t0 = time.perf_counter()
            custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                NS,
                PLURAL,
                "keys",
                {"metadata": {"annotations": {"keyturn.dev/rotate": f"b{n}"}}},
            )
            watcher.join(timeout=300)
            stop.set()
            if any(len(marks.get(name, [])) != 2 for name in names):
                raise SystemExit(f"round {n}: not every target rolled: {marks}")
            total = max(m[1] for m in marks.values()) - t0
            own = sum(m[1] - m[0] for m in marks.values())
            overhead = (total - own) / len(names)
            per_target_overhead.append(overhead * 1000)
            say(
                f"round {n + 1}: total {total:.2f}s, targets' own rollouts {own:.2f}s, "
                f"overhead {overhead * 1000:.0f} ms per target"
            )
            wait(settled, 120, "settled", interval=0.2)
        report("rollout-overhead-per-target", per_target_overhead, {"targets": args.targets})


if __name__ == "__main__":
    main()
